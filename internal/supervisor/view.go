package supervisor

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/logfile"
)

// What readers see of an app without waiting for its actor.

// publish stores a snapshot of the slots for Instances. Runs in the actor.
func (a *App) publish() {
	spec, res := a.spec, a.res
	a.specView.Store(&spec)
	a.resView.Store(&res)
	v := make([]instView, len(a.slots))
	for i, s := range a.slots {
		in := tend.Instance{
			ID: s.id, Name: a.spec.Name, Instance: s.index, Status: s.status,
			Restarts: s.restarts, Mode: a.mode(), Port: a.spec.Port, Sched: a.res.Sched, Namespace: a.spec.Namespace,
			LastExit: s.lastExit, Problem: s.problem, User: a.userName(),
		}
		iv := instView{restartAt: s.restartAt, before: s.handedBefore}
		if r := s.cur; r != nil {
			in.PID, in.Ready = r.proc.PID(), r.ready
			in.Health, in.ProbeFailures = r.health.state, r.health.total
			in.Port = cmp.Or(a.spec.Port, r.listenPort)
			iv.started = r.started
			if r.cgroup {
				iv.cgroup = cgroupKey(r)
			}
		}
		for _, r := range append([]*run{s.cur, s.next}, s.old...) {
			if r != nil {
				iv.wids = append(iv.wids, r.wid)
			}
		}
		iv.Instance = in
		v[i] = iv
	}
	// Store first: a reader that subscribes now and reads the view gets
	// this state, and one that read the old view gets the changes.
	old := a.view.Swap(&v)
	if a.opt.Events != nil && a.opt.Events.Wanted() {
		a.emitChanges(old, v)
	}
}

// emitChanges reports the instances whose state differs between two
// views, and those that left. Runs in the actor.
func (a *App) emitChanges(old *[]instView, cur []instView) {
	now := time.Now()
	var prev []instView
	if old != nil {
		prev = *old
	}
	changed := func(o, in tend.Instance) bool {
		return o.PID != in.PID || o.Status != in.Status || o.Ready != in.Ready ||
			o.Restarts != in.Restarts || o.Problem != in.Problem || o.Port != in.Port || o.Health != in.Health ||
			o.LastExit != in.LastExit // a new *Exit on every exit, also of a retired process
	}
	if len(prev) == len(cur) && slices.EqualFunc(prev, cur, func(o, c instView) bool { return o.ID == c.ID }) {
		// The same slots (nearly every change): compare in place.
		for i := range cur {
			if changed(prev[i].Instance, cur[i].Instance) {
				a.opt.Events.Publish(tend.EventOf(cur[i].Instance, tend.EventInstance, now))
			}
		}
		return
	}
	before := make(map[int]tend.Instance, len(prev))
	for _, iv := range prev {
		before[iv.ID] = iv.Instance
	}
	for _, iv := range cur {
		o, ok := before[iv.ID]
		delete(before, iv.ID)
		if !ok || changed(o, iv.Instance) {
			a.opt.Events.Publish(tend.EventOf(iv.Instance, tend.EventInstance, now))
		}
	}
	for _, o := range before {
		a.opt.Events.Publish(tend.EventOf(o, tend.EventRemoved, now))
	}
}

func (a *App) mode() tend.Mode { return cmp.Or(a.res.Mode, tend.ModeFork) }

// Instances returns the app's instances as of the last change, with uptime
// and backoff computed now. It never waits for the actor.
func (a *App) Instances() []tend.Instance {
	v := *a.view.Load()
	now := time.Now()
	conns := a.share.connections()
	out := make([]tend.Instance, len(v))
	for i, iv := range v {
		in := iv.Instance
		in.Connections = iv.before
		for _, w := range iv.wids {
			in.Connections += conns[w]
		}
		if in.PID != 0 {
			in.UptimeMS = now.Sub(iv.started).Milliseconds()
		}
		if in.Status == tend.StatusWaiting {
			in.NextRestartMS = max(0, iv.restartAt.Sub(now).Milliseconds())
		}
		out[i] = in
	}
	return out
}

// Describe returns the full picture of the app; env values only with withEnv.
func (a *App) Describe(withEnv bool) tend.App {
	out := tend.App{CreatedAt: a.created}
	a.read(func() {
		out.Spec = a.spec
		out.Resolved = tend.Resolved{Mode: a.mode(), Sched: a.res.Sched, ScriptPath: a.res.ScriptPath, Command: a.res.Argv}
		for _, s := range a.slots {
			out.OutLog = append(out.OutLog, s.outPath)
			out.ErrLog = append(out.ErrLog, s.errPath)
			if p := s.sink.Problem(); p != "" {
				out.LogProblems = append(out.LogProblems, fmt.Sprintf("%s[%d]: %s", a.spec.Name, s.index, p))
			}
		}
		out.Exits = slices.Clone(a.exits)
		out.LastReload = a.lastReload
	})
	out.Spec.BaseEnv = nil
	out.Instances = a.Instances()
	var fileEnv map[string]string
	a.read(func() { fileEnv = a.res.FileEnv })
	env := maps.Clone(fileEnv)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, out.Spec.Env)
	for k, v := range env {
		out.EnvKeys = append(out.EnvKeys, k)
		if withEnv {
			out.EnvValues = append(out.EnvValues, k+"="+v)
		}
	}
	slices.Sort(out.EnvKeys)
	slices.Sort(out.EnvValues)
	if !withEnv {
		out.Spec.Env = nil
	}
	return out
}

// SlotSink is the log sink of one instance slot.
type SlotSink struct {
	ID, Index int
	Sink      *logfile.Sink
}

// Sinks returns the log sinks of the selected slots (all for nil), in
// slot order. Sinks live as long as their slot, across restarts.
func (a *App) Sinks(ids []int) []SlotSink {
	var out []SlotSink
	a.read(func() {
		for _, s := range a.selected(ids) {
			out = append(out, SlotSink{s.id, s.index, s.sink})
		}
	})
	return out
}
