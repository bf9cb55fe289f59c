package supervisor

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/human"
	"github.com/tendhq/tend/internal/nodepreload"
	"github.com/tendhq/tend/internal/procexec"
)

// One process in a slot: launched, watched, and after its exit
// restarted or not by the app's policy.

// start launches s unless it is running. Runs in the actor.
func (a *App) start(s *slot) error {
	if s.cur != nil && !s.cur.stopping || s.removing || a.closing {
		return nil
	}
	if s.cur != nil {
		// Still stopping: it is retired like a reload's old process, so
		// that its end is handled (and whoever waits for it released).
		s.old = append(s.old, s.cur)
		s.cur = nil
	}
	a.cancelRestart(s)
	s.unstable, s.backoff, s.problem = 0, 0, ""
	r, err := a.launch(s)
	if err != nil {
		s.status, s.problem = tend.StatusErrored, err.Error()
		return fmt.Errorf("starting %s[%d]: %w", a.spec.Name, s.index, err)
	}
	a.takeOver(s, r)
	return nil
}

// takeOver makes r the serving process of s.
func (a *App) takeOver(s *slot, r *run) {
	s.cur = r
	s.status = tend.StatusOnline
	if a.readySignal() != "" && !r.ready {
		s.status = tend.StatusLaunching
	}
}

// launch spawns a process for s, wiring its output to the slot's sink, its
// readiness signals and the shared port. Runs in the actor.
func (a *App) launch(s *slot) (*run, error) {
	pipes, err := a.newPipes(s)
	if err != nil {
		return nil, err
	}
	a.nextWID++
	r := &run{slot: s, wid: a.nextWID, marker: newMarker()}
	env := append(instanceEnv(a.envSpec(), s.index, s.id, r.wid, nil), procexec.MarkerEnv+"="+r.marker)
	cmd := procexec.Cmd{Path: a.res.Path, Args: a.res.Argv, Env: env, Dir: a.spec.Cwd, Stdout: pipes.out, Stderr: pipes.err,
		Label: label{App: a.spec.Name, Slot: s.id, WID: r.wid}.String(),
		Hold:  []procexec.Held{{Name: heldOut, FD: pipes.readOut}, {Name: heldErr, FD: pipes.readErr}},
		Cred:  a.res.Cred}
	after, probe, err := a.share.launch(&cmd, &a.spec, a.opt.Shim, r.wid, s.index, a.opt.Store != nil)
	if err != nil {
		pipes.abort()
		return nil, err
	}
	if preload := a.nodePreload(); preload != "" {
		cmd.Env = append(cmd.Env, "NODE_OPTIONS="+nodepreload.Options(envValue(cmd.Env, "NODE_OPTIONS"), preload))
	}
	if err := a.joinCgroup(r, &cmd); err != nil {
		after(false)
		pipes.abort()
		return nil, err
	}
	notifyDup := a.listenNotify(r, &cmd)
	if a.res.Expand {
		cmd.Args = expandArgs(cmd.Args, cmd.Env)
	}
	p, err := a.opt.Start(cmd)
	after(err == nil)
	if notifyDup != nil {
		notifyDup.Close()
	}
	if err != nil {
		pipes.abort()
		r.closeNotify()
		a.leaveCgroup(r, procexec.Status{})
		if a.res.Cred != nil && errors.Is(err, syscall.EACCES) {
			err = fmt.Errorf("%w: user %s cannot enter %s or run %s; make them readable by it", err, cmp.Or(a.spec.User, "of group "+a.spec.Group), a.spec.Cwd, a.res.Path)
		}
		return nil, err
	}
	r.out = pipes.started()
	s.output = append(slices.DeleteFunc(s.output, isClosed), r.out)
	r.proc, r.started, r.probe = p, time.Now(), probe
	a.watchReady(r, cmd.Env)
	a.watchHealth(r, cmd.Env)
	a.watchExit(r)
	return r, nil
}

// envSpec is the spec whose Env has, under the app's own variables,
// those of its env_file, and under both those of its user (HOME...).
func (a *App) envSpec() *tend.AppSpec {
	if len(a.res.FileEnv) == 0 && len(a.res.UserEnv) == 0 {
		return &a.spec
	}
	s := a.spec
	s.Env = make(map[string]string, len(a.res.UserEnv)+len(a.res.FileEnv)+len(a.spec.Env))
	maps.Copy(s.Env, a.res.UserEnv)
	maps.Copy(s.Env, a.res.FileEnv)
	maps.Copy(s.Env, a.spec.Env)
	return &s
}

// newMarker returns a value for procexec.MarkerEnv: random, so that no
// other run, of this tend or another, has it.
func newMarker() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// watchExit handles r's end in the actor once its process is gone.
func (a *App) watchExit(r *run) {
	pid := r.proc.PID()
	select {
	case <-r.proc.Done(): // found gone (on a resume): its pid is nobody's
		go a.post(func() { a.exited(r, time.Now()) })
		return
	default:
	}
	addInstance(pid)
	go func() {
		<-r.proc.Done()
		removeInstance(pid)
		gone := time.Now()
		a.post(func() { a.exited(r, gone) })
	}()
}

// nodePreload is the preload the app's processes load, if any.
func (a *App) nodePreload() string {
	paths := a.opt.NodePreloads
	if a.res.Cred != nil && a.res.Node {
		var err error
		if paths, err = nodepreload.Public(); err != nil {
			a.opt.Logf("%s: %v", a.spec.Name, err)
		}
	}
	switch {
	case !a.res.Node:
		return ""
	case a.res.Mode == tend.ModeSocket:
		return paths.Listen
	case a.res.Mode == tend.ModeCluster:
		return paths.Drain
	}
	return ""
}

// exited handles the end of run r, seen at gone. Runs in the actor.
func (a *App) exited(r *run, gone time.Time) {
	s := r.slot
	st := r.proc.Status()
	now := time.Now()
	up := now.Sub(r.started)
	// The instance is its process group: whatever the app left behind in
	// it (or forked out of it, seen when the stop began) goes with it, so
	// no orphan keeps the port or the pipes.
	r.proc.KillRest(append(r.tree, procexec.Refs(procexec.Escaped(r.marker, procexec.Reapers(), isInstance, gone))...))
	a.ended = append(a.ended, r) // released once its end is written down
	s.handedBefore += a.share.connections()[r.wid]
	// Its leave may have been said just before it exited: the primary
	// knows it already, whatever the order the two reach the actor in.
	r.left = r.left || a.share.left(r.wid)
	a.share.exited(r.wid)
	r.closeNotify()
	if r.killTimer != nil {
		r.killTimer.Stop()
	}
	r.exited = true
	if r.health.dog != nil {
		r.health.dog.Stop()
	}
	oom := a.leaveCgroup(r, st)
	ex := tend.Exit{Time: now, Code: st.Code, Signal: st.SignalName(), UptimeMS: up.Milliseconds()}
	r.failReady(fmt.Errorf("exited (%s) after %s, before it was ready", st, up.Round(time.Millisecond)))
	switch {
	case r == s.next:
		s.next = nil
		ex.Cause = cmp.Or(r.stopCause, "reload")
		a.recordExit(s, ex)
		r.done()
		return
	case slices.Contains(s.old, r):
		s.old = slices.DeleteFunc(s.old, func(x *run) bool { return x == r })
		ex.Cause = r.stopCause
		a.recordExit(s, ex)
		r.done()
		return
	case r != s.cur:
		return
	}
	s.cur = nil
	if r.stopping {
		ex.Cause = r.stopCause
		a.recordExit(s, ex)
		s.status = tend.StatusStopped
		r.done()
		return
	}
	switch {
	case oom:
		ex.Cause = "oom-killed" // over max_memory
	case st.Code != 0:
		ex.Cause = "crash" // also after a disconnect: a crash it is
	case r.left:
		ex.Cause = "disconnect" // meant, as Node's exitedAfterDisconnect says
	default:
		ex.Cause = "exit"
	}
	a.recordExit(s, ex)
	how := st.String()
	switch {
	case oom && a.spec.MaxMemory > 0:
		how = fmt.Sprintf("killed by the kernel's OOM killer at its max_memory of %s", human.Bytes(uint64(a.spec.MaxMemory)))
	case oom:
		how = "killed by the kernel's OOM killer"
	}
	a.opt.Logf("%s[%d] pid %d: %s after %s", a.spec.Name, s.index, r.proc.PID(), how, up.Round(time.Millisecond))
	a.afterExit(s, st.Code, st.Signal != 0, up)
}

// afterExit applies the restart policy to an unexpected exit.
func (a *App) afterExit(s *slot, code int, signaled bool, up time.Duration) {
	d := decide(&a.spec, code, signaled, up, s.unstable, s.backoff)
	s.unstable, s.backoff = d.unstable, d.backoff
	switch {
	case d.act == actStop:
		s.status = tend.StatusStopped
	case d.act == actCompleted:
		s.status = tend.StatusCompleted
	case d.act == actErrored && a.spec.IsTask():
		s.status = tend.StatusErrored
		s.problem = taskProblem(a.spec.Name, code, signaled, d.unstable)
		a.opt.Logf("%s[%d]: %s", a.spec.Name, s.index, s.problem)
	case d.act == actErrored:
		s.status = tend.StatusErrored
		s.problem = fmt.Sprintf("exited %d times in a row within min_uptime; not restarting (tend restart %s to try again)", d.unstable, a.spec.Name)
		a.opt.Logf("%s[%d]: %s", a.spec.Name, s.index, s.problem)
	case d.act == actRestart:
		s.status = tend.StatusWaiting
		delay := d.delay
		if d.backoff > 0 {
			delay = jitter(delay) // a fixed restart_delay stays as given
		}
		a.armRestart(s, delay)
	}
}

// armRestart starts a new process in s after delay, unless something
// else fills or stops s first. Runs in the actor (or before it starts).
func (a *App) armRestart(s *slot, delay time.Duration) {
	delay = max(delay, 0)
	s.restartAt = time.Now().Add(delay)
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		a.post(func() {
			if s.restartTimer != t || s.cur != nil || s.removing || a.closing {
				return
			}
			s.restartTimer = nil
			s.restarts++
			r, err := a.launch(s)
			if err != nil {
				s.problem = err.Error()
				a.recordExit(s, tend.Exit{Time: time.Now(), Code: -1, Cause: "spawn failed"})
				a.afterExit(s, -1, false, 0)
				return
			}
			a.takeOver(s, r)
		})
	})
	s.restartTimer = t
}

func (a *App) cancelRestart(s *slot) {
	if s.restartTimer != nil {
		s.restartTimer.Stop()
		s.restartTimer = nil
	}
}

func (a *App) recordExit(s *slot, ex tend.Exit) {
	s.lastExit = &ex
	a.exits = append(a.exits, ex)
	if len(a.exits) > maxExits {
		a.exits = a.exits[len(a.exits)-maxExits:]
	}
}
