package daemon

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/keeper"
	"github.com/tendhq/tend/internal/notify"
	"github.com/tendhq/tend/internal/procexec"
	"github.com/tendhq/tend/internal/sockets"
	"github.com/tendhq/tend/internal/supervisor"
)

// How the daemon uses its keeper: every app process is started through it
// (so the keeper is its parent), every descriptor an app depends on is
// kept there too, and each app writes its State to StateDir after every
// change. A daemon that starts under a keeper that already holds things
// takes them back (resume); one whose keeper is new finds in StateDir
// what a lost keeper left behind, and stops it (recoverOrphans).

// controlName is the store entry of the control socket: a CLI that
// connects while no daemon runs waits in its backlog for the next one.
const controlName = "control"

// appPrefix is the start of the store names of app name's sockets.
func appPrefix(name string) string { return "app/" + url.PathEscape(name) + "/" }

// appStore is an app's view of the keeper's store.
type appStore struct {
	k      *keeper.Conn
	prefix string
}

func (s appStore) Put(name string, fds ...int) error { return s.k.Put(s.prefix+name, fds...) }
func (s appStore) Drop(name string) error            { return s.k.Drop(s.prefix + name) }

// connectKeeper takes the keeper connection the daemon was started with,
// if any, and its inventory.
func (d *Daemon) connectKeeper() (*keeper.Inventory, error) {
	s := os.Getenv(keeper.FDEnv)
	if s == "" {
		return nil, nil
	}
	os.Unsetenv(keeper.FDEnv)
	fd, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", keeper.FDEnv, s, err)
	}
	k, inv, err := keeper.Connect(fd)
	if err != nil {
		return nil, err
	}
	d.keeper, d.keeperAt = k, os.Getppid()
	go func() {
		<-k.Gone()
		select {
		case <-d.quitting:
		default:
			d.log.Error("tend's keeper is gone: the apps run on and this daemon keeps them, but their exit codes will be unknown and a crash of the daemon now would leave them on their own; run tend update to start a new keeper")
		}
	}()
	return inv, nil
}

// sdNotify sends a notification to systemd (READY=1): through the keeper,
// which systemd knows as the service's main process, when there is one.
func (d *Daemon) sdNotify(state string) error {
	if d.hasKeeper() {
		return d.keeper.Notify(state)
	}
	return notify.Notify(state)
}

// keeperPID is the keeper's pid (its parent), 0 without one.
func (d *Daemon) keeperPID() int {
	// A parent other than the keeper's pid: the keeper died and the
	// daemon was given to init before the connection said so.
	if !d.hasKeeper() || os.Getppid() != d.keeperAt {
		return 0
	}
	return d.keeperAt
}

// hasKeeper reports whether a keeper keeps the apps' processes.
func (d *Daemon) hasKeeper() bool {
	if d.keeper == nil {
		return false
	}
	select {
	case <-d.keeper.Gone():
		return false
	default:
		return true
	}
}

// spawn starts an app process: through the keeper while there is one.
// A keeper that went away during a spawn may have started the process:
// that spawn fails rather than risk a second copy (the restart policy
// tries again, here).
func (d *Daemon) spawn(c procexec.Cmd) (supervisor.Proc, error) {
	if d.hasKeeper() {
		p, err := d.keeper.Spawn(c)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return procexec.Start(c)
}

// appOptions are the supervisor options of app name.
func (d *Daemon) appOptions(name string) supervisor.Options {
	opt := supervisor.Options{
		LogDir: realHome(d.home).Logs(),
		RunDir: tend.Home(d.home).Run(),
		NewID: func() int {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.newID()
		},
		Logf:         d.appLogf(name),
		Start:        d.spawn,
		Shim:         d.exe,
		NodePreloads: d.preloads,
		Cgroups:      d.cgroups,
		CgroupErr:    d.cgroupErr,
		Events:       &d.hub,
		Reported:     d.reported,
		Poller:       d.poller,
		LogDefaults: supervisor.LogDefaults{
			MaxSize: d.settings.logMaxSize, Retain: d.settings.Logs.Retain, Compress: d.settings.Logs.Compress,
			RotateInterval: d.settings.Logs.RotateInterval,
		},
	}
	if d.keeper != nil {
		opt.StateDir = tend.Home(d.home).State()
		opt.Store = appStore{d.keeper, appPrefix(name)}
	}
	return opt
}

// controlListener returns the control socket: the one the keeper kept for
// a daemon that went, or a new one, given to the keeper.
func (d *Daemon) controlListener(inv *keeper.Inventory) (net.Listener, error) {
	if inv != nil {
		for _, f := range inv.Files[controlName] {
			l, err := net.FileListener(f)
			f.Close()
			if err == nil {
				return &peerListener{Listener: l, uid: os.Getuid()}, nil
			}
		}
	}
	l, err := listenSocket(d.home)
	if err != nil {
		return nil, err
	}
	if d.keeper != nil {
		// Not (*net.UnixListener).File: its Fd would make the socket
		// blocking, for this daemon's accept too (see sockets.DupFD).
		if f, err := sockets.DupFD(l.(*peerListener).Listener.(*net.UnixListener)); err == nil {
			d.keeper.Put(controlName, int(f.Fd()))
			f.Close()
		}
	}
	return l, nil
}

// resume takes back what the keeper kept: every app of StateDir with its
// processes and sockets. A keeper that holds no control socket is new: the
// states are what a keeper that died left, and recoverOrphans deals with
// them instead.
func (d *Daemon) resume(inv *keeper.Inventory) {
	if d.keeper == nil {
		return
	}
	states, errs := supervisor.LoadStates(tend.Home(d.home).State())
	for _, err := range errs {
		d.log.Error("an app's state cannot be read: its processes are stopped if tend's keeper has them", "err", err)
	}
	if _, ok := inv.Files[controlName]; !ok {
		d.recoverOrphans(states, inv)
		return
	}
	slices.SortFunc(states, func(a, b supervisor.State) int { return a.Created.Compare(b.Created) })
	procs := map[string][]supervisor.Adopted{}
	for _, p := range inv.Procs {
		app := supervisor.AppOfLabel(p.Label())
		procs[app] = append(procs[app], supervisor.Adopted{Proc: p, Label: p.Label(), Start: p.StartTime(), Files: p.Held})
	}
	taken := map[string]bool{controlName: true, webName: true} // the dashboard's: resumeWeb's to keep or drop
	for _, st := range states {
		name := st.Spec.Name
		stored := map[string][]*os.File{}
		for _, n := range inv.Names {
			if rest, ok := strings.CutPrefix(n, appPrefix(name)); ok {
				stored[rest] = inv.Files[n]
			}
		}
		a, err := supervisor.Resume(st, procs[name], stored, d.appOptions(name))
		if err != nil {
			// Its processes are stopped below, its sockets closed, and it
			// is forgotten, so that no later daemon tries again.
			d.log.Error("taking an app back failed: its processes are stopped", "app", name, "err", err)
			os.Remove(supervisor.StatePath(tend.Home(d.home).State(), name))
			continue
		}
		for _, n := range inv.Names {
			if strings.HasPrefix(n, appPrefix(name)) {
				taken[n] = true
			}
		}
		delete(procs, name)
		d.mu.Lock()
		d.apps[name] = a
		d.order = append(d.order, name)
		for _, in := range a.Instances() {
			d.nextID = max(d.nextID, in.ID+1)
		}
		d.mu.Unlock()
		d.log.Info("app taken back", "name", name, "instances", len(a.Instances()))
		if spec := a.Spec(); spec.HasHooks() {
			d.hooks.watch(d)
		}
		if st.Closing {
			go d.act(context.Background(), "delete", []string{name})
		}
	}
	for _, n := range inv.Names {
		if !taken[n] {
			for _, f := range inv.Files[n] {
				f.Close()
			}
			d.keeper.Drop(n)
		}
	}
	for app, ps := range procs {
		for _, p := range ps {
			d.log.Warn("stopping a process of no known app", "app", app, "pid", p.Proc.PID())
			stopStray(p)
		}
	}
	d.resumeOrder()
	d.recallReloads()
}

// recoverOrphans handles the states a dead keeper left: their processes
// have lost their pipes, channels and parent, and cannot be taken back. So
// that no second copy of an app ever runs beside a lost one, each process
// a state names that still runs (the same pid and start time: never a
// process that reuses the pid) is stopped, and the states are removed.
// `tend resurrect` brings the saved apps back.
func (d *Daemon) recoverOrphans(states []supervisor.State, inv *keeper.Inventory) {
	for _, p := range inv.Procs {
		stopStray(supervisor.Adopted{Proc: p, Files: p.Held})
	}
	var stops []chan struct{}
	for _, st := range states {
		for _, ss := range st.Slots {
			for _, rs := range ss.Runs {
				if rs.PID <= 0 || rs.Start == 0 || procexec.StartTime(rs.PID) != rs.Start {
					continue
				}
				d.log.Warn("stopping an instance left by a tend keeper that died", "app", st.Spec.Name, "instance", ss.Index, "pid", rs.PID)
				stops = append(stops, stopOrphan(rs.PID, rs.Start, st.Spec))
			}
		}
		os.Remove(supervisor.StatePath(tend.Home(d.home).State(), st.Spec.Name))
	}
	for _, c := range stops {
		<-c
	}
	if len(states) > 0 {
		d.log.Warn("tend's previous keeper died with the apps' pipes and sockets: their leftover processes were stopped; tend resurrect brings back the saved apps", "apps", len(states))
	}
}

// stopOrphan stops process pid (started at start) and its group, as a stop
// of spec's app would: its stop signal, then SIGKILL after kill_timeout.
// It is not our child: its end is seen through a pidfd.
func stopOrphan(pid int, start uint64, spec tend.AppSpec) chan struct{} {
	done := make(chan struct{})
	sig := unix.SignalNum(cmp.Or(spec.KillSignal, tend.DefaultKillSignal))
	if sig == 0 {
		sig = unix.SIGINT
	}
	timeout := cmp.Or(spec.KillTimeout.D(), tend.DefaultKillTimeout.D())
	go func() {
		defer close(done)
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		if procexec.StartTime(pid) != start {
			return // the pid names another process now
		}
		tree := procexec.Refs(procexec.Descendants(pid))
		unix.PidfdSendSignal(fd, sig, nil, 0)
		procexec.SignalTree(pid, sig)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, int(timeout.Milliseconds())); n == 0 {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		procexec.KillRest(pid, tree)
	}()
	return done
}

// stopStray stops an adopted process that belongs to no app.
func stopStray(p supervisor.Adopted) {
	supervisor.StopAdopted(p, unix.SIGTERM, tend.DefaultKillTimeout.D())
}
