package supervisor

import (
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/procexec"
	"golang.org/x/sys/unix"
)

// How a process is stopped: the stop signal or message, the grace for
// a Node worker to leave, then SIGKILL.

// stop begins stopping every process of s and returns channels closed once
// each is gone. Runs in the actor.
func (a *App) stop(s *slot, cause string) []chan struct{} {
	a.cancelRestart(s)
	var waits []chan struct{}
	for _, r := range append([]*run{s.cur, s.next}, s.old...) {
		if r != nil {
			waits = append(waits, a.stopRun(r, cause))
		}
	}
	s.status = tend.StatusStopped
	if s.cur != nil {
		s.status = tend.StatusStopping
	}
	return waits
}

// stopRun stops one process gracefully: it leaves the rotation, gets the
// app's stop signal (after a Node worker's disconnect), and SIGKILL after
// kill_timeout. Runs in the actor.
func (a *App) stopRun(r *run, cause string) chan struct{} {
	w := make(chan struct{})
	if r.exited {
		close(w)
		return w
	}
	r.waiters = append(r.waiters, w)
	if r.stopping {
		return w
	}
	r.stopping, r.stopCause, r.stopBegan = true, cause, time.Now()
	r.health.paused.Store(true) // no more probes of what is going
	r.failReady(fmt.Errorf("stopped (%s) before it was ready", cause))
	r.tree = r.proc.Tree()
	// What it spawned that left its tree (a double-forked daemon) stops
	// with it: the stop signal now, SIGKILL when the instance is gone.
	// A look at most procsTTL old: what leaves the tree since is caught
	// when the instance exits.
	escaped := procexec.Escaped(r.marker, procexec.Reapers(), isInstance, time.Time{})
	for _, pid := range escaped {
		unix.Kill(pid, a.killSignal())
	}
	r.tree = append(r.tree, procexec.Refs(escaped)...)
	a.share.drain(r.wid)
	switch {
	case a.spec.ShutdownWithMessage:
		// PM2's shutdown_with_message: the app stops itself on 'shutdown'.
		if a.share.primary.Send(r.wid, json.RawMessage(`"shutdown"`)) != nil {
			r.proc.Signal(a.killSignal())
		}
	case a.res.Mode == tend.ModeCluster:
		// A Node worker is disconnected first, as Node's primary does: it
		// takes no new connection, closes its servers, finishes what it
		// serves and leaves by itself, running its 'disconnect' handlers.
		// One that does not leave (an open websocket keeps its server
		// open) gets its stop signal after a while, so that its signal
		// handler runs before SIGKILL.
		if a.share.primary.Disconnect(r.wid) != nil {
			r.proc.Signal(a.killSignal())
		} else {
			a.armLeave(r, a.leaveGrace())
		}
	default:
		r.proc.Signal(a.killSignal())
	}
	a.armKill(r, a.killTimeout())
	return w
}

// leaveGrace is how long a disconnected Node worker has to leave by
// itself before its stop signal: half of kill_timeout, so that its
// signal handler has the other half before SIGKILL.
func (a *App) leaveGrace() time.Duration { return a.killTimeout() / 2 }

// armLeave sends r its stop signal if it is still there after timeout.
// Runs in the actor (or before it starts).
func (a *App) armLeave(r *run, timeout time.Duration) {
	time.AfterFunc(max(timeout, 0), func() {
		a.post(func() {
			if !r.exited {
				r.proc.Signal(a.killSignal())
			}
		})
	})
}

// killTimeout is the app's kill_timeout.
func (a *App) killTimeout() time.Duration {
	if d := a.spec.KillTimeout.D(); d > 0 {
		return d
	}
	return tend.DefaultKillTimeout.D()
}

// armKill SIGKILLs r, which is stopping, if it is still there after
// timeout. Runs in the actor (or before it starts).
func (a *App) armKill(r *run, timeout time.Duration) {
	full := a.killTimeout()
	r.killTimer = time.AfterFunc(max(timeout, 0), func() {
		a.post(func() {
			if r.exited {
				return
			}
			s := r.slot
			s.problem = fmt.Sprintf("did not stop within kill_timeout (%s); killed with SIGKILL", full)
			a.opt.Logf("%s[%d] pid %d: %s", a.spec.Name, s.index, r.proc.PID(), s.problem)
			r.proc.Signal(syscall.SIGKILL)
			r.proc.KillRest(r.tree)
		})
	})
}

func (a *App) killSignal() syscall.Signal {
	if a.spec.KillSignal != "" {
		if sig := unix.SignalNum(a.spec.KillSignal); sig != 0 {
			return sig
		}
	}
	return unix.SignalNum(tend.DefaultKillSignal)
}
