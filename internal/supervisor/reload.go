package supervisor

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/procexec"
)

// Reload replaces the selected instances (all for nil) one at a time, or
// parallel at a time: start the new process, wait until it is ready, take
// the old one out of rotation, stop it gracefully, go on. If a new process
// crashes or is not ready within listen_timeout, it is killed, the old one
// keeps serving, and the reload stops with an error. spec, when not nil,
// replaces the app's spec first (new env, args, settings) for the new
// processes.
func (a *App) Reload(ctx context.Context, ids []int, spec *tend.AppSpec, res *Resolved, parallel int) (tend.ReloadReport, error) {
	rep := tend.ReloadReport{App: a.Name(), Action: "reload", Time: time.Now()}
	// New cron and watch settings are checked now and take effect once
	// the reload succeeded.
	var w *watcher
	resched := spec != nil && schedulesDiffer(a.Spec(), *spec)
	if resched {
		var err error
		if w, err = checkSchedules(spec); err != nil {
			return rep, err
		}
	}
	defer func() { w.close() }() // unless the new schedules took it
	var slots []*slot
	var conflict error
	var prevSpec tend.AppSpec
	var prevRes Resolved
	if !a.call(func() {
		prevSpec, prevRes = a.spec, a.res
		if a.reloading {
			conflict = tend.Errorf(tend.ECONFLICT, "a reload or scale of %s is already under way", a.spec.Name)
			return
		}
		if spec != nil {
			if err := compatible(&a.spec, spec, a.res, res); err != nil {
				conflict = err
				return
			}
			spec.Instances = len(a.slots)
			a.spec = *spec
		}
		if res != nil {
			a.res = *res
		}
		a.reloading = true
		slots = slices.Clone(a.selected(ids))
	}) {
		return rep, errClosed(rep.App)
	}
	if conflict != nil {
		return rep, conflict
	}
	var failed error
	rep.Steps, failed = a.replaceAll(ctx, slots, max(parallel, 1), "reload", false)
	if failed != nil && (spec != nil || res != nil) {
		// The old settings stay: an old instance that crashes later must
		// come back as it was, not with the settings that just failed.
		a.call(func() { a.spec, a.res = prevSpec, prevRes })
	}
	if failed == nil && resched {
		a.stopSchedules()
		a.startSchedules(w)
		w = nil
	}
	if failed == nil && spec != nil && a.share.px != nil {
		a.share.px.SetSlowAfter(spec.EjectSlowAfter.D())
	}
	return a.finish(ctx, rep, failed)
}

// finish records a reload or scale report and passes it to
// Options.Reported with ctx. failed, if any, becomes the error.
func (a *App) finish(ctx context.Context, rep tend.ReloadReport, failed error) (tend.ReloadReport, error) {
	rep.DurationMS = time.Since(rep.Time).Milliseconds()
	rep.OK = failed == nil
	if failed != nil {
		rep.Error = failed.Error()
		kept := "the old instances keep serving"
		if slices.ContainsFunc(rep.Steps, func(st tend.ReloadStep) bool { return st.Error != "" && len(st.OwnPorts) > 0 }) {
			kept = "its old process had stopped first (it listens on its port itself), so the instance runs on as its restart policy says"
		}
		failed = tend.Errorf(tend.EFAILED, "%s of %s stopped: %v; %s", rep.Action, rep.App, failed, kept)
	}
	a.call(func() {
		a.reloading = false
		r := rep
		a.lastReload = &r
		if a.reloads == nil {
			a.reloads = map[string]int{}
		}
		a.reloads[map[bool]string{true: "ok", false: "failed"}[rep.OK]]++
	})
	if a.opt.Reported != nil {
		a.opt.Reported(ctx, rep)
	}
	return rep, failed
}

// replaceAll replaces slots, parallel at a time, and stops at the first
// batch with a failure. It returns the steps in instance order. With
// keepStopped, a slot stopped meanwhile is left stopped.
func (a *App) replaceAll(ctx context.Context, slots []*slot, parallel int, cause string, keepStopped bool) ([]tend.ReloadStep, error) {
	var steps []tend.ReloadStep
	var failed error
	var mu sync.Mutex
	for i := 0; i < len(slots) && failed == nil; i += parallel {
		var wg sync.WaitGroup
		for _, s := range slots[i:min(i+parallel, len(slots))] {
			wg.Go(func() {
				step, err := a.replace(ctx, s, cause, keepStopped)
				mu.Lock()
				defer mu.Unlock()
				steps = append(steps, step)
				if err != nil && failed == nil {
					failed = err
				}
			})
		}
		wg.Wait()
	}
	slices.SortFunc(steps, func(x, y tend.ReloadStep) int { return x.Instance - y.Instance })
	return steps, failed
}

// compatible checks that next can replace cur in a reload: the port and
// the way instances share it cannot change under running instances.
func compatible(cur, next *tend.AppSpec, curRes Resolved, nextRes *Resolved) error {
	nextMode, nextSched := curRes.Mode, curRes.Sched
	if nextRes != nil {
		nextMode, nextSched = nextRes.Mode, nextRes.Sched
	}
	if curRes.Mode != nextMode || cur.Port != next.Port || curRes.Sched != nextSched || cur.Host != next.Host {
		return tend.Errorf(tend.EINVALID, "app %s: a reload cannot change exec_mode, port, host or sched (%s %d %s -> %s %d %s): use tend delete then tend start",
			cur.Name, curRes.Mode, cur.Port, curRes.Sched, nextMode, next.Port, nextSched)
	}
	return nil
}

// replace starts a new process for s, waits until it is ready, then
// retires the old one gracefully. On failure the new process is killed
// and the old one is left serving. Nothing starts once the app is closing
// or s was removed, nor, with keepStopped, when s has been stopped (or
// is stopping).
func (a *App) replace(ctx context.Context, s *slot, cause string, keepStopped bool) (tend.ReloadStep, error) {
	var step tend.ReloadStep
	a.stopFirst(s, cause, &step)
	var r *run
	var ready chan error
	var err error
	skip := false
	if !a.call(func() {
		step.ID, step.Instance = s.id, s.index
		if a.closing || !slices.Contains(a.slots, s) || s.removing {
			err = errClosed(a.Name())
			return
		}
		if keepStopped && (s.cur == nil && s.status == tend.StatusStopped || s.cur != nil && s.cur.stopping) {
			skip = true
			return
		}
		if s.cur != nil {
			step.OldPID = s.cur.proc.PID()
		}
		if r, err = a.launch(s); err != nil {
			return
		}
		if s.cur == nil {
			// Nothing is serving (stopped, errored, waiting): the new
			// process takes the slot at once.
			a.cancelRestart(s)
			s.unstable, s.backoff, s.problem = 0, 0, ""
			a.takeOver(s, r)
		} else {
			if s.next != nil {
				// Two replacements of one slot never run at once (reloading
				// says so); were they to, the older one goes rather than
				// run on untracked.
				s.old = append(s.old, s.next)
				a.stopRun(s.next, cause)
			}
			s.next = r
		}
		step.NewPID = r.proc.PID()
		ready = r.readyWait()
	}) {
		// The app was deleted meanwhile: nothing started, nothing to
		// wait for.
		err = errClosed(a.Name())
	}
	if skip {
		step.Error = "stopped meanwhile: left stopped"
		return step, nil
	}
	if err != nil {
		step.Error = fmt.Sprintf("starting the new process: %v", err)
		return step, fmt.Errorf("%s[%d]: %s", a.Name(), s.index, step.Error)
	}
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		step.Error = fmt.Sprintf("new process %d %v", step.NewPID, err)
		a.call(func() {
			if !r.exited && len(step.OwnPorts) == 0 {
				// Stopped, not crashed: the restart policy leaves it be.
				// (After a stop first it is all the instance has: it
				// stays, and the restart policy sees to it.)
				r.stopping, r.stopCause, r.stopBegan = true, "reload aborted", time.Now()
				r.tree = r.proc.Tree()
				a.share.drain(r.wid)
				r.proc.Signal(syscall.SIGKILL)
			}
		})
		return step, fmt.Errorf("%s[%d]: %s", a.Name(), s.index, step.Error)
	}
	var old *run
	var gone chan struct{}
	a.call(func() {
		step.ReadyMS = r.readyAt.Sub(r.started).Milliseconds()
		step.ReadyBy = r.readyBy
		if s.next != r {
			return // it took the slot directly
		}
		old, s.next = s.cur, nil
		s.cur = r
		s.restarts++
		s.status = tend.StatusOnline
		if old != nil {
			s.old = append(s.old, old)
			gone = a.stopRun(old, cause)
		}
	})
	if gone != nil {
		begin := time.Now()
		<-gone
		step.StoppedMS = time.Since(begin).Milliseconds()
	}
	return step, nil
}

// stopFirst stops the process of s before its replacement starts when it
// listens on a port of its own (an app in fork mode, which tend holds no
// port for): the new process could not bind it while the old one runs.
// The instance is down in between, so it says so, in the step and in the
// app's log, with the way to a reload without downtime.
func (a *App) stopFirst(s *slot, cause string, step *tend.ReloadStep) {
	var old *run
	a.call(func() {
		if a.res.Mode == tend.ModeFork && s.cur != nil && !s.cur.stopping && s.next == nil {
			old = s.cur
		}
	})
	if old == nil {
		return
	}
	pid := old.proc.PID()
	ports := procexec.ListenPorts(append([]int{pid}, procexec.Descendants(pid)...))
	if len(ports) == 0 {
		return
	}
	var gone chan struct{}
	a.call(func() {
		if s.cur != old || old.stopping || s.next != nil {
			return
		}
		s.cur, s.status = nil, tend.StatusStopping
		s.old = append(s.old, old)
		s.restarts++
		gone = a.stopRun(old, cause)
	})
	if gone == nil {
		return
	}
	step.OldPID, step.OwnPorts, step.Hint = pid, ports, ownPortHint(a.res.Node, ports[0])
	a.opt.Logf("%s[%d] pid %d listens on port %s itself: stopped before its replacement starts, so the instance is down in between; "+
		"for a %s without downtime, %s", a.Name(), s.index, pid, joinInts(ports), cause, step.Hint)
	// Not cut short by ctx: the slot is empty until this returns, and
	// stopRun ends it within kill_timeout.
	begin := time.Now()
	<-gone
	step.StoppedMS = time.Since(begin).Milliseconds()
}

// ownPortHint says how an app on a port of its own reloads without
// downtime: tend must hold the port. A Node app does nothing for it (tend
// is its cluster primary); any other app must take the socket from tend
// or listen where tend forwards to.
func ownPortHint(node bool, port int) string {
	if node {
		return fmt.Sprintf("start it with -i 1 or --port %d: tend then holds the port as its cluster primary", port)
	}
	return fmt.Sprintf("let tend hold the port: --port %d with the app taking the socket as fd 3 (systemd socket activation: "+
		"gunicorn, uvicorn --fd 3), or --port %d --exec-mode proxy with the app listening on $PORT", port, port)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// Scale sets the number of instances to n: new instances start and must
// be ready; removed ones (highest index first) leave the rotation and stop
// gracefully, like reloaded ones.
func (a *App) Scale(ctx context.Context, n int) (tend.ReloadReport, error) {
	rep := tend.ReloadReport{App: a.Name(), Action: "scale", Time: time.Now()}
	if n < 1 {
		return rep, tend.Errorf(tend.EINVALID, "cannot scale %s to %d: at least 1 instance (tend stop or delete to stop it)", rep.App, n)
	}
	var add, remove []*slot
	var err error
	if !a.call(func() {
		if a.reloading {
			err = tend.Errorf(tend.ECONFLICT, "a reload or scale of %s is already under way", a.spec.Name)
			return
		}
		for len(a.slots)+len(add) < n {
			s, e := a.newSlot(a.opt.NewID(), a.freeIndex(add))
			if e != nil {
				for _, s := range add {
					s.sink.Close()
				}
				err = e
				return
			}
			add = append(add, s)
		}
		a.reloading = true
		a.slots = append(a.slots, add...)
		if len(a.slots) > n {
			byIndex := slices.Clone(a.slots)
			slices.SortFunc(byIndex, func(x, y *slot) int { return y.index - x.index })
			remove = byIndex[:len(a.slots)-n]
		}
		a.spec.Instances = n
	}) {
		return rep, errClosed(rep.App)
	}
	if err != nil {
		return rep, err // reloading is another's, or was never set
	}
	var failed error
	rep.Steps, failed = a.replaceAll(ctx, add, len(add), "scale", false)
	if failed != nil {
		// The new instances that did not come up are removed again.
		ids := []int{}
		for _, s := range add {
			ids = append(ids, s.id)
		}
		a.Remove(context.WithoutCancel(ctx), ids)
		return a.finish(ctx, rep, failed)
	}
	for _, s := range remove {
		begin := time.Now()
		step := tend.ReloadStep{ID: s.id, Instance: s.index}
		a.read(func() {
			if s.cur != nil {
				step.OldPID = s.cur.proc.PID()
			}
		})
		a.Remove(context.WithoutCancel(ctx), []int{s.id})
		step.StoppedMS = time.Since(begin).Milliseconds()
		rep.Steps = append(rep.Steps, step)
	}
	return a.finish(ctx, rep, nil)
}

// freeIndex returns the lowest instance index not in use (PM2 fills gaps,
// so NODE_APP_INSTANCE stays 0..N-1 after scaling down and up).
func (a *App) freeIndex(adding []*slot) int {
	used := map[int]bool{}
	for _, s := range append(slices.Clone(a.slots), adding...) {
		used[s.index] = true
	}
	i := 0
	for used[i] {
		i++
	}
	return i
}

// RestartForMemory replaces instance id, whose process tree uses used
// bytes, more than limit, its max_memory_restart (the app's or the one
// tend chose): like a reload, the new process must be ready before the
// old one stops, so the limit costs no request.
func (a *App) RestartForMemory(ctx context.Context, id int, used, limit uint64) {
	a.recycle(ctx, []int{id}, "memory restart", "memory",
		fmt.Sprintf("instance id %d uses %d MB, over max_memory_restart (%d MB)", id, used>>20, limit>>20))
}

// recycle replaces the running instances among ids (all for nil) one at a
// time, as a reload does, so that it costs no request, and starts those
// that crashed (errored, or waiting to restart); stopped ones stay
// stopped. why goes to the daemon's log; action names the report and
// cause the old processes' exits. It does nothing while a reload or scale
// of the app is under way, and then reports busy.
func (a *App) recycle(ctx context.Context, ids []int, action, cause, why string) (busy bool, err error) {
	var slots []*slot
	a.call(func() {
		if a.reloading {
			busy = true
			return
		}
		for _, s := range a.selected(ids) {
			running := s.cur != nil && !s.cur.stopping
			crashed := s.cur == nil && (s.status == tend.StatusErrored || s.status == tend.StatusWaiting)
			if s.next == nil && (running || crashed) {
				slots = append(slots, s)
			}
		}
		a.reloading = len(slots) > 0
	})
	if len(slots) == 0 {
		return busy, nil
	}
	what := fmt.Sprintf("%d instances one by one", len(slots))
	if len(slots) == 1 {
		what = fmt.Sprintf("%s[%d]", a.Name(), slots[0].index)
	}
	a.opt.Logf("%s: %s: replacing %s", a.Name(), why, what)
	rep := tend.ReloadReport{App: a.Name(), Action: action, Time: time.Now()}
	rep.Steps, err = a.replaceAll(ctx, slots, 1, cause, true)
	a.finish(ctx, rep, err)
	return false, err
}

// Reloads counts the app's reloads, scales and memory restarts by outcome
// ("ok", "failed").
func (a *App) Reloads() map[string]int {
	out := map[string]int{}
	a.read(func() {
		for k, v := range a.reloads {
			out[k] = v
		}
	})
	return out
}
