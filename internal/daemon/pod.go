package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/deps"
	"github.com/tendhq/tend/internal/podhealth"
	"github.com/tendhq/tend/internal/procexec"
)

// Pod is how a daemon behaves as a pod's PID 1 (tend run in Kubernetes):
// the probes it answers and how it stops on a signal.
type Pod struct {
	// HealthAddr, when set, serves /livez, /readyz and /startupz there
	// (podhealth.Listen). It overrides health_addr in the settings.
	HealthAddr string
	// DrainDelay is how long, after SIGTERM or SIGINT, /readyz fails
	// before the apps stop, so that the pod leaves the Service's endpoints
	// while it still serves. Negative means the settings' drain_delay, or
	// DefaultDrainDelay when health endpoints are served, 0 otherwise.
	DrainDelay time.Duration
	podhealth.Options
}

// DefaultDrainDelay is the drain delay when health endpoints are served
// and none is given. Kubernetes removes a terminating pod from the
// Service's endpoints concurrently with sending it SIGTERM, and the
// kube-proxies and load balancers take a few seconds to follow; 5 s
// covers them in most clusters, and is what the usual preStop "sleep 5"
// gives.
const DefaultDrainDelay = 5 * time.Second

// StopMargin is what the stop bound allows beyond the drain delay and the
// apps' stop time (stopTime): the wait for the apps' last output (up to 1 s),
// the SIGKILL of what remains killGrace before the bound, and the daemon's
// own exit.
const StopMargin = 3 * time.Second

// StopBound is how long after a stop signal tend run may take to end: by
// then it has SIGKILLed what remained (killGrace before) and ended.
// terminationGracePeriodSeconds should be at least this.
func StopBound(drain, stopTime time.Duration) time.Duration {
	return drain + stopTime + StopMargin
}

// killGrace is how long before StopBound what remains is SIGKILLed: the
// time the stop has to see it gone before the daemon ends anyway.
const killGrace = time.Second

// ErrStopOverrun is returned by Run when the apps did not stop within
// StopBound after a signal, and what remained was killed.
var ErrStopOverrun = errors.New("the apps did not stop in time")

// ErrFailing is returned by Run when a signal stopped apps of which some
// instance was errored or crash-looping: the exit code of tend run, and
// so of its container, tells that from a clean stop.
var ErrFailing = errors.New("stopped while apps were failing")

// openHealth serves the probes when the pod options or the settings name
// an address, and settles the drain delay.
func (d *Daemon) openHealth() error {
	addr := cmp.Or(d.pod.HealthAddr, d.settings.HealthAddr)
	if d.pod.DrainDelay < 0 {
		d.pod.DrainDelay = d.settings.drainDelay
		if d.settings.DrainDelay == "" && addr != "" {
			d.pod.DrainDelay = DefaultDrainDelay
		}
		d.pod.DrainDelay = max(d.pod.DrainDelay, 0)
	}
	if addr == "" {
		return nil
	}
	ln, err := podhealth.Listen(addr)
	if err != nil {
		return err
	}
	d.health = podhealth.New(podSource{d}, d.pod.Options)
	d.log.Info("serving health endpoints", "addr", ln.Addr().String(), "drain_delay", d.pod.DrainDelay)
	go func() {
		<-d.quit
		ln.Close()
	}()
	go d.health.Serve(ln)
	return nil
}

// podSource is the daemon as the probes read it.
type podSource struct{ d *Daemon }

// Apps are the apps with the instances meant to run: not those stopped or
// stopping (autostart: false, tend stop, a scale down; a restarted one
// counts again as it starts) nor a task's once it completed, which are
// where they should be; those crashing or waiting for a dependency count,
// and are not ready.
func (s podSource) Apps() []podhealth.App {
	var out []podhealth.App
	for _, a := range s.d.snapshotApps() {
		insts := a.Instances()
		desired := 0
		for _, in := range insts {
			if in.Status != tend.StatusStopped && in.Status != tend.StatusCompleted && in.Status != tend.StatusStopping {
				desired++
			}
		}
		out = append(out, podhealth.App{Name: a.Name(), Desired: desired, Instances: insts})
	}
	return out
}

func (s podSource) Answer(ctx context.Context) error {
	for _, a := range s.d.snapshotApps() {
		if err := a.Answer(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stopOnSignal is the daemon's stop after SIGINT or SIGTERM: readiness
// fails first, the drain delay passes (skip, closed by a second signal,
// cuts it short), then every app stops as tend stop does. Without a
// keeper (tend run, whose end is the container's), past StopBound what
// remains is killed and the daemon ends with ErrStopOverrun; a keeper's
// daemon waits for its apps as it always did, since the keeper would
// take an early end for a crash.
func (d *Daemon) stopOnSignal(skip <-chan struct{}) {
	began := time.Now()
	d.noteFailing()
	if d.health != nil {
		d.health.Drain()
	}
	if d.pod.DrainDelay > 0 {
		d.log.Info("readiness withdrawn; waiting before stopping the apps", "drain_delay", d.pod.DrainDelay)
		t := time.NewTimer(d.pod.DrainDelay)
		select {
		case <-t.C:
		case <-skip:
			t.Stop()
		}
	}
	kill, insts := d.stopTime(), d.instancePIDs()
	bound := StopBound(d.pod.DrainDelay, kill)
	stopped := make(chan struct{})
	go func() {
		d.shutdown()
		close(stopped)
	}()
	var overrun <-chan time.Time
	if d.keeper == nil {
		overrun = time.After(bound - killGrace - time.Since(began))
	}
	select {
	case <-stopped:
	case <-overrun:
		d.overrun(bound, kill, insts, stopped)
	}
	d.end()
}

// stopTime is how long the apps that run may take to stop (StopTime).
func (d *Daemon) stopTime() time.Duration {
	apps := d.snapshotApps()
	specs := make([]tend.AppSpec, len(apps))
	for i, a := range apps {
		specs[i] = a.Spec()
	}
	return StopTime(specs)
}

// StopTime is how long apps may take to stop when tend run stops them:
// they stop in reverse order of their dependencies, a layer at a time,
// each layer within its largest kill_timeout. A dependency that is not
// among apps (tend run --only web --no-deps) adds nothing. With
// StopBound, it gives tend export the grace period of what it exports.
func StopTime(apps []tend.AppSpec) time.Duration {
	return deps.LayeredTime(apps, func(a *tend.AppSpec) time.Duration {
		return cmp.Or(max(a.KillTimeout.D(), 0), tend.DefaultKillTimeout.D())
	})
}

// instancePIDs are the pids of every instance that runs.
func (d *Daemon) instancePIDs() []int {
	var pids []int
	for _, a := range d.snapshotApps() {
		for _, in := range a.Instances() {
			if in.PID != 0 {
				pids = append(pids, in.PID)
			}
		}
	}
	return pids
}

// overrun SIGKILLs every process below the daemon (tend run is their
// subreaper: orphans are below it too) and the instances, insts as the
// stop began, with their process groups, then gives the stop killGrace to
// see them gone. The tree below the daemon is left out when /proc shows
// another pid namespace than the daemon's (a pid namespace without its own
// /proc mounted): there, the tree below our pid is not ours.
func (d *Daemon) overrun(bound, kill time.Duration, insts []int, stopped <-chan struct{}) {
	pids := insts
	if self, err := os.Readlink("/proc/self"); err == nil && self == strconv.Itoa(os.Getpid()) {
		pids = append(pids, procexec.Descendants(os.Getpid())...)
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
		syscall.Kill(-pid, syscall.SIGKILL) // its group, if it leads one
	}
	d.mu.Lock()
	d.overran = fmt.Errorf("%w: not every app stopped within the bound of %s (the drain delay %s + the largest kill_timeout of each layer of depends_on %s + %s); killed %d processes",
		ErrStopOverrun, bound, d.pod.DrainDelay, kill, StopMargin, len(pids))
	d.mu.Unlock()
	d.log.Error("stop overran its bound", "bound", bound, "killed", len(pids))
	select {
	case <-stopped:
	case <-time.After(killGrace):
	}
}

// noteFailing records, for Run's result, the instances that are errored
// or wait to restart after a crash as a stop on a signal begins; the
// instances that the stop itself ends do not count.
func (d *Daemon) noteFailing() {
	var failing []string
	for _, in := range d.instances() {
		// An instance held until its dependencies are met waits too, with
		// no restart armed: it is not failing (one blocked by a failure
		// is).
		if in.Status == tend.StatusErrored || in.Status == tend.StatusWaiting && !heldForDeps(in) {
			failing = append(failing, fmt.Sprintf("%s[%d] %s", in.Name, in.Instance, in.Status))
		}
	}
	if len(failing) > 0 {
		d.mu.Lock()
		d.failing = fmt.Errorf("%w: %s", ErrFailing, strings.Join(failing, ", "))
		d.mu.Unlock()
	}
}
