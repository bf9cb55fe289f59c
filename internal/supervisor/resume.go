package supervisor

import (
	"cmp"
	"encoding/json"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/nodeipc"
	"github.com/tendhq/tend/internal/notify"
	"github.com/tendhq/tend/internal/procexec"
	"github.com/tendhq/tend/internal/proxy"
)

// Adopted is a process of an app that outlived the daemon that ran it:
// tend's keeper kept it, with the descriptors it depends on.
type Adopted struct {
	Proc  Proc
	Label string
	Start uint64 // its start time, to tell it from a process with a reused pid
	// Files are the descriptors the keeper held for it, by name; Resume
	// takes them over.
	Files map[string]*os.File
}

// Resume takes an app back from its State and the processes the keeper
// kept for it, after the daemon that ran it went away: the instances keep
// their processes, pids, counters and connections, and what happened
// meanwhile (a process that ended) is handled as if it happened now.
// stored are the app's sockets from the Store, by the names the app gave
// them. A process the State does not name (started just before the daemon
// went) takes its slot if the slot is empty, and is stopped otherwise; a
// reload that was under way is abandoned, its new process stopped.
func Resume(st State, adopted []Adopted, stored map[string][]*os.File, opt Options) (*App, error) {
	opt = opt.withDefaults()
	spec := st.Spec
	w, err := checkSchedules(&spec)
	if err != nil {
		opt.Logf("%s: %v; going on without it", spec.Name, err)
		w = nil
	}
	if st.Res.Mode == "" {
		// Saved by a tend that kept its choice in the spec.
		st.Res.Mode, st.Res.Sched = cmp.Or(spec.ExecMode, tend.ModeFork), spec.Sched
	}
	sh, err := resumeShare(&spec, st.Res, stored, st.Cluster, opt)
	if err != nil {
		w.close()
		return nil, err
	}
	a := newApp(spec, st.Res, opt, sh)
	a.created, a.exits, a.lastReload, a.reloads = st.Created, st.Exits, st.LastReload, st.Reloads
	a.nextWID, a.closing = st.NextWID, st.Closing
	procs := map[int]*Adopted{}
	for i := range adopted {
		procs[adopted[i].Proc.PID()] = &adopted[i]
	}
	for _, ss := range st.Slots {
		s, err := a.newSlot(ss.ID, ss.Index)
		if err != nil {
			a.closeSinks()
			sh.close()
			w.close()
			return nil, err
		}
		s.status, s.restarts, s.unstable, s.backoff = ss.Status, ss.Restarts, ss.Unstable, ss.Backoff.D()
		s.problem, s.lastExit, s.handedBefore = ss.Problem, ss.LastExit, ss.HandedBefore
		a.slots = append(a.slots, s)
		for _, rs := range ss.Runs {
			ad := procs[rs.PID]
			if ad != nil && ad.Start == rs.Start && labelOf(ad.Label).Slot == ss.ID {
				delete(procs, rs.PID)
			} else {
				ad = nil // not the process the state names: a reused pid, or gone
			}
			r := a.adopt(s, rs, ad)
			switch rs.Role {
			case roleCur:
				s.cur = r
			case roleNext:
				s.next = r
			default:
				s.old = append(s.old, r)
			}
		}
		// Waiting without a time: held back by its dependencies, which
		// only a start of its file releases.
		if ss.Status == tend.StatusWaiting && s.cur == nil && !ss.RestartAt.IsZero() {
			a.armRestart(s, time.Until(ss.RestartAt))
		}
	}
	a.spec.Instances = len(a.slots)
	a.unnamed(procs, st.NextWID)
	for _, s := range a.slots {
		a.rearm(s)
	}
	a.begin(w)
	return a, nil
}

// unnamed places or stops the processes the State does not name. Those
// started after the State was written (a worker id past written) take
// their slot if it is empty; the others are ones whose end the State
// already records (or that it let go): they are released, or stopped if
// they still run.
func (a *App) unnamed(procs map[int]*Adopted, written int) {
	pids := make([]int, 0, len(procs))
	for pid := range procs {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	for _, pid := range pids {
		ad := procs[pid]
		l := labelOf(ad.Label)
		i := slices.IndexFunc(a.slots, func(s *slot) bool { return s.id == l.Slot })
		if l.WID <= written {
			a.stray(ad) // released at once if it has ended
			continue
		}
		if i < 0 || a.slots[i].cur != nil || a.slots[i].status == tend.StatusStopped || a.closing {
			a.opt.Logf("%s: pid %d was started just before the daemon went and has no place: stopping it", a.spec.Name, pid)
			a.stray(ad)
			continue
		}
		s := a.slots[i]
		a.nextWID = max(a.nextWID, l.WID)
		s.cur = a.adopt(s, RunState{Role: roleCur, PID: pid, WID: l.WID, Started: time.Now()}, ad)
		s.status = tend.StatusLaunching
		a.cancelRestart(s)
	}
}

// rearm restarts what the daemon that went was waiting for in s: the
// readiness of a starting process, the end of a stopping one. A reload's
// replacement is stopped: the reload went with the daemon. Runs before
// the actor starts.
func (a *App) rearm(s *slot) {
	if r := s.next; r != nil {
		s.next = nil
		s.old = append(s.old, r)
		if !r.stopping {
			a.stopRun(r, "reload interrupted")
		}
	}
	for _, r := range append([]*run{s.cur}, s.old...) {
		switch {
		case r == nil || r.exited:
		case r.stopping:
			a.armKill(r, a.killTimeout()-time.Since(r.stopBegan))
			// Its stop signal, unless the daemon that went sent it already.
			if left := a.leaveGrace() - time.Since(r.stopBegan); left > 0 && a.res.Mode == tend.ModeCluster && !a.spec.ShutdownWithMessage {
				a.armLeave(r, left)
			}
		case !r.ready:
			a.armReady(r)
		}
	}
	switch {
	case s.cur != nil && s.cur.stopping:
		s.status = tend.StatusStopping
	case s.cur != nil && !s.cur.ready && a.readySignal() != "":
		s.status = tend.StatusLaunching
	}
}

// adopt makes a run of a process the keeper kept (nil: one that is gone,
// whose end is then handled as an exit of unknown status).
func (a *App) adopt(s *slot, rs RunState, ad *Adopted) *run {
	r := &run{slot: s, wid: rs.WID, started: rs.Started, ready: rs.Ready, readyBy: rs.ReadyBy, readyAt: rs.ReadyAt,
		readyURL: rs.ReadyURL, listenPort: rs.ListenPort, probe: rs.Probe, stopping: rs.Stopping,
		stopCause: rs.StopCause, stopBegan: rs.StopBegan, marker: rs.Marker, left: rs.Left}
	r.cgroup = a.opt.Cgroups.Has(a.spec.Name, cgroupKey(r)) // made by the daemon that went
	if ad == nil {
		r.proc, r.out = lostProc{pid: rs.PID}, closedChan()
		a.watchExit(r)
		return r
	}
	r.proc = ad.Proc
	r.out = a.takeOutput(s, ad.Files)
	s.output = append(s.output, r.out)
	if f := ad.Files[heldChan]; f != nil {
		if ch, err := nodeipc.FromFile(f); err == nil {
			a.share.primary.SetSlot(r.wid, s.index)
			a.share.primary.AddWorker(r.wid, ch, a.share.events)
			if r.stopping && a.res.Mode == tend.ModeCluster {
				a.share.primary.Leaving(r.wid)
			}
		}
	}
	if f := ad.Files[heldNotify]; f != nil {
		if srv, err := notify.FromFile(f, a.notifyPath(r), a.notifyPeers()...); err == nil {
			a.serveNotify(r, srv)
		}
	}
	switch {
	case r.stopping:
		a.share.drain(r.wid)
	case r.ready:
		a.share.ready(r.wid, s.index, r.probe)
	}
	if !r.stopping {
		// Its probe and watchdog go on under this daemon.
		a.watchHealth(r, a.adoptedEnv(s, r))
		if r.ready {
			a.startHealth(r)
		}
	}
	a.watchExit(r)
	return r
}

// adoptedEnv is the environment of a process this daemon did not start,
// as far as its probe needs it: the instance's variables, and PORT.
func (a *App) adoptedEnv(s *slot, r *run) []string {
	extra := map[string]string{}
	if _, port, err := net.SplitHostPort(r.probe); err == nil {
		extra["PORT"] = port // proxy mode: its own
	} else if a.spec.Port > 0 {
		extra["PORT"] = strconv.Itoa(a.spec.Port)
	}
	return instanceEnv(a.envSpec(), s.index, s.id, r.wid, extra)
}

// takeOutput reads the process's pipes into s's sink from where the
// daemon that went left them.
func (a *App) takeOutput(s *slot, files map[string]*os.File) chan struct{} {
	out, err := takeFD(files[heldOut]), takeFD(files[heldErr])
	if out < 0 || err < 0 {
		for _, fd := range []int{out, err} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		return closedChan()
	}
	return readOutput(s.sink, a.opt.Poller, out, err)
}

// takeFD returns a descriptor of f's own and closes f; -1 for nil.
func takeFD(f *os.File) int {
	if f == nil {
		return -1
	}
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// stray stops a process that belongs to no slot, as a stop would.
func (a *App) stray(ad *Adopted) { StopAdopted(*ad, a.killSignal(), a.killTimeout()) }

// StopAdopted stops a kept process that has no place any more: sig to
// its group, SIGKILL after timeout; then the keeper may forget it. It
// returns at once.
func StopAdopted(ad Adopted, sig syscall.Signal, timeout time.Duration) {
	for _, f := range ad.Files {
		f.Close()
	}
	p := ad.Proc
	select {
	case <-p.Done():
		// Ended already: its pid may be another process's by now.
		p.Release()
		return
	default:
	}
	tree := p.Tree()
	p.Signal(sig)
	go func() {
		select {
		case <-p.Done():
		case <-time.After(timeout):
			p.Signal(syscall.SIGKILL)
			<-p.Done()
		}
		p.KillRest(tree)
		p.Release()
	}()
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// lostProc is a process the State names that the keeper does not have
// (the keeper went, or the pid names another process now): it counts as
// ended, with an unknown status, and is never signalled.
type lostProc struct{ pid int }

var errLost = errors.New("its end was not seen (exit status unknown)")

func (p lostProc) PID() int                  { return p.pid }
func (lostProc) Done() <-chan struct{}       { return closedChan() }
func (lostProc) Status() procexec.Status     { return procexec.Status{Code: -1, Err: errLost} }
func (lostProc) Signal(syscall.Signal) error { return nil }
func (lostProc) Tree() []procexec.Ref        { return nil }
func (lostProc) KillRest([]procexec.Ref)     {}
func (lostProc) Release()                    {}

// labelOf decodes a keeper label; the zero label if it is not one.
func labelOf(s string) label {
	var l label
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return label{Slot: -1}
	}
	return l
}

// resumeShare takes the app's sockets back from stored, binding anew only
// what is missing.
func resumeShare(spec *tend.AppSpec, res Resolved, stored map[string][]*os.File, cluster []nodecluster.ListenerState, opt Options) (*share, error) {
	sh := &share{mode: res.Mode, sched: res.Sched, node: res.Node, store: opt.Store, dir: spec.Cwd}
	sh.backends = map[int]proxy.Backend{}
	take := func(name string) nodecluster.Socket {
		fs := stored[name]
		delete(stored, name)
		var ln nodecluster.Socket
		for _, f := range fs {
			if ln == nil {
				ln, _ = nodecluster.FileSocket(f)
			}
			f.Close()
		}
		return ln
	}
	takeTCP := func(name string) *net.TCPListener {
		ln, _ := take(name).(*net.TCPListener)
		return ln
	}
	switch res.Mode {
	case tend.ModeCluster:
		sh.pre, sh.preHost, sh.port = takeTCP(storePre), spec.Host, spec.Port
	case tend.ModeSocket, tend.ModeProxy:
		if sh.ln = takeTCP(storePort); sh.ln == nil {
			ln, err := bindPort(spec, res.Sched)
			if err != nil {
				return nil, err
			}
			sh.ln = ln
			sh.put(storePort, ln)
		}
	}
	sh.start(res, spec.EjectSlowAfter.D(), opt.Logf)
	lns := map[string]nodecluster.Socket{}
	for name := range stored {
		if key, ok := strings.CutPrefix(name, storeListen); ok {
			if ln := take(name); ln != nil {
				lns[key] = ln
			}
		}
	}
	for _, fs := range stored {
		for _, f := range fs {
			f.Close()
		}
	}
	if err := sh.primary.Restore(cluster, lns); err != nil {
		sh.close()
		return nil, err
	}
	return sh, nil
}
