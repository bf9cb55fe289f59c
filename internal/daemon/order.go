package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/deps"
	"github.com/tendhq/tend/internal/supervisor"
)

// The order of the apps of a file (depends_on): a start waits for each
// app's dependencies before it starts the app, a stop goes through the
// apps in reverse. The graph is the deps package's; what a condition
// means for running instances is here.

// ordered reports whether some app of specs depends on another.
func ordered(specs []tend.AppSpec) bool {
	return slices.ContainsFunc(specs, func(s tend.AppSpec) bool { return len(s.DependsOn) > 0 })
}

// checkOrder checks the dependencies of specs: each names an app of specs
// or one the daemon runs, with a condition that fits it, and there is no
// cycle.
func (d *Daemon) checkOrder(specs []tend.AppSpec) error {
	lookup := func(name string) (tend.AppSpec, bool) {
		if i := slices.IndexFunc(specs, func(s tend.AppSpec) bool { return s.Name == name }); i >= 0 {
			return specs[i], true
		}
		d.mu.Lock()
		a := d.apps[name]
		d.mu.Unlock()
		if a == nil {
			return tend.AppSpec{}, false
		}
		return a.Spec(), true
	}
	for i := range specs {
		for _, dep := range specs[i].DependsOn {
			if _, ok := lookup(dep.App); !ok {
				return tend.Errorf(tend.EINVALID, "%s depends on %s, which is neither started with it nor an app tend has", specs[i].Name, dep.App)
			}
		}
		if err := tend.CheckDependencies(&specs[i], lookup, nil); err != nil {
			return tend.Errorf(tend.EINVALID, "%v", err)
		}
	}
	if _, err := deps.Order(deps.OfApps(specs)); err != nil {
		return tend.Errorf(tend.EINVALID, "%v", err)
	}
	return nil
}

// waitingFor is the problem an app held back shows.
func waitingFor(spec tend.AppSpec) string {
	items := make([]string, len(spec.DependsOn))
	for i, dep := range spec.DependsOn {
		items[i] = dep.String()
	}
	return waitingPrefix + strings.Join(items, ", ")
}

// follow starts apps (held, in the order of the file) with start, in
// the order of their dependencies, each once its dependencies meet their
// conditions. An app whose dependency fails is not started: it is held
// as blocked, with the reason, and so are the apps that need it. The
// error names what failed and what it blocked. A dependency that skip
// names (restoring a saved state: one saved as stopped) does not hold
// its dependents back.
func (d *Daemon) follow(ctx context.Context, apps []*supervisor.App, skip func(dep string) bool, start func(a *supervisor.App) error) (notes []string, err error) {
	byName := map[string]*supervisor.App{}
	specs := make([]tend.AppSpec, len(apps))
	for i, a := range apps {
		byName[a.Name()], specs[i] = a, a.Spec()
	}
	order, err := deps.Order(deps.OfApps(specs))
	if err != nil {
		return nil, tend.Errorf(tend.EINVALID, "%v", err) // checked in start; kept for safety
	}
	blocked := map[string]string{} // app -> why it did not start
	var failures []string
	for _, name := range order {
		a := byName[name]
		spec := a.Spec()
		why := ""
		for _, dep := range spec.DependsOn {
			if b, ok := blocked[dep.App]; ok {
				why = fmt.Sprintf("blocked: %s did not start (%s)", dep.App, b)
				break
			}
			if skip(dep.App) {
				continue
			}
			if fail := d.await(ctx, dep); fail != "" {
				why = fmt.Sprintf("blocked: %s %s", dep.App, fail)
				if f := fmt.Sprintf("%s %s", dep.App, fail); !slices.Contains(failures, f) {
					failures = append(failures, f) // once, however many it blocks
				}
				break
			}
		}
		if why != "" {
			blocked[name] = why
			a.Hold(why)
			d.log.Warn("app blocked by its dependencies", "name", name, "why", why)
			continue
		}
		if err := start(a); err != nil {
			blocked[name] = err.Error()
			failures = append(failures, err.Error())
			continue
		}
		// (autostart: false starts nothing: no note then)
		started := slices.ContainsFunc(a.Instances(), func(in tend.Instance) bool { return in.PID != 0 || in.Status != tend.StatusStopped })
		if len(spec.DependsOn) > 0 && started {
			notes = append(notes, fmt.Sprintf("%s started after %s", name, strings.TrimPrefix(waitingFor(spec), waitingPrefix)))
		}
	}
	if len(blocked) == 0 {
		return notes, nil
	}
	var held []string
	for _, name := range order {
		if _, ok := blocked[name]; ok {
			held = append(held, name)
		}
	}
	verb := "is"
	if len(held) > 1 {
		verb = "are"
	}
	return notes, tend.Errorf(tend.EFAILED, "%s; %s %s blocked and did not start (tend ls says why); once fixed, start the file again with --force",
		strings.Join(failures, "; "), strings.Join(held, ", "), verb)
}

// conditionPoll bounds how long a missed event can delay a dependent: the
// events wake the wait, this catches one dropped for a slow reader.
const conditionPoll = 250 * time.Millisecond

// await waits until dep meets its condition; it returns why it never
// will ("" once met): its task failed, it was stopped or deleted, or it
// errored.
func (d *Daemon) await(ctx context.Context, dep tend.Dependency) (fail string) {
	sub, unsubscribe := d.hub.subscribe()
	defer unsubscribe()
	tick := time.NewTicker(conditionPoll)
	defer tick.Stop()
	for {
		d.mu.Lock()
		a := d.apps[dep.App]
		d.mu.Unlock()
		if a == nil {
			return "was deleted"
		}
		met, fail := meets(a.Instances(), dep.Condition)
		if met || fail != "" {
			return fail
		}
		select {
		case <-sub.ch:
		case <-tick.C:
		case <-d.quitting:
			return "did not get there: the daemon is stopping"
		case <-ctx.Done():
			return "was not waited for: " + ctx.Err().Error()
		}
	}
}

// meets reports whether insts meet cond, or why they never will.
func meets(insts []tend.Instance, cond tend.Condition) (met bool, fail string) {
	met = true
	for _, in := range insts {
		switch in.Status {
		case tend.StatusErrored:
			return false, "failed: " + cmp.Or(in.Problem, "errored")
		case tend.StatusStopped, tend.StatusStopping:
			if in.PID == 0 || in.Status == tend.StatusStopping {
				return false, "was stopped"
			}
		}
		switch cond {
		case tend.CondStarted:
			met = met && (in.PID != 0 || in.Status == tend.StatusCompleted)
		case tend.CondReady:
			met = met && in.PID != 0 && in.Ready
		case tend.CondCompleted:
			met = met && in.Status == tend.StatusCompleted
		}
	}
	return met, ""
}

// inReverse runs f on apps, dependents before their dependencies: layer
// by layer, the apps of a layer together. Apps without dependencies
// among apps all go at once.
func inReverse(apps []*supervisor.App, f func(a *supervisor.App)) {
	for _, layer := range stopLayers(apps) {
		var wg sync.WaitGroup
		for _, a := range layer {
			wg.Go(func() { f(a) })
		}
		wg.Wait()
	}
}

// stopLayers are apps in the order they stop: dependents first, each
// layer's apps together.
func stopLayers(apps []*supervisor.App) [][]*supervisor.App {
	specs := make([]tend.AppSpec, len(apps))
	byName := map[string]*supervisor.App{}
	for i, a := range apps {
		specs[i], byName[a.Name()] = a.Spec(), a
	}
	layers, err := deps.Layers(deps.OfApps(specs))
	if err != nil {
		// A cycle cannot be started; stop everything at once rather
		// than not at all.
		layers = [][]string{slices.Collect(maps.Keys(byName))}
	}
	out := make([][]*supervisor.App, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		var layer []*supervisor.App
		for _, name := range layers[i] {
			layer = append(layer, byName[name])
		}
		out = append(out, layer)
	}
	return out
}

// reloadOrder sorts the selections of a reload in the order of their
// dependencies (next: the new specs, for the apps a file reloads), so
// that a task runs again before the apps that need it reload.
func reloadOrder(sels []selection, next []tend.AppSpec) []selection {
	specs := make([]tend.AppSpec, len(sels))
	for i, s := range sels {
		specs[i] = s.app.Spec()
		if j := slices.IndexFunc(next, func(n tend.AppSpec) bool { return n.Name == s.app.Name() }); j >= 0 {
			specs[i] = next[j]
		}
	}
	order, err := deps.Order(deps.OfApps(specs))
	if err != nil {
		return sels // a file with a cycle is refused when loaded; an API caller gets its order
	}
	out := make([]selection, 0, len(sels))
	for _, name := range order {
		i := slices.IndexFunc(sels, func(s selection) bool { return s.app.Name() == name })
		out = append(out, sels[i])
	}
	return out
}

// blockedBy says which failed task (in failed) spec needs, "" if none.
func blockedBy(spec tend.AppSpec, failed map[string]string) string {
	for _, dep := range spec.DependsOn {
		if why, ok := failed[dep.App]; ok {
			return fmt.Sprintf("blocked: %s failed (%s)", dep.App, why)
		}
	}
	return ""
}

// reloadApp reloads the app of s, or runs it again to completion if it
// is a task: the apps reloaded after it may need what it does.
func (d *Daemon) reloadApp(ctx context.Context, s selection, spec *tend.AppSpec, res *supervisor.Resolved, parallel int) (tend.ReloadReport, error) {
	cur := s.app.Spec()
	task := cur.IsTask()
	if spec != nil {
		task = spec.IsTask()
	}
	if !task {
		return s.app.Reload(ctx, s.ids, spec, res, parallel)
	}
	rep := tend.ReloadReport{App: s.app.Name(), Action: "rerun", Time: time.Now(), Steps: []tend.ReloadStep{}}
	err := s.app.Rerun(ctx, spec, res)
	if err == nil {
		if fail := d.await(ctx, tend.Dependency{App: s.app.Name(), Condition: tend.CondCompleted}); fail != "" {
			err = tend.Errorf(tend.EFAILED, "task %s %s", s.app.Name(), fail)
		}
	}
	rep.DurationMS, rep.OK = time.Since(rep.Time).Milliseconds(), err == nil
	if err != nil {
		rep.Error = err.Error()
	}
	d.reported(ctx, rep)
	return rep, err
}

// orderedApps reports whether an app of sels depends on another of them.
func orderedApps(sels []selection) bool {
	for _, s := range sels {
		for _, dep := range s.app.Spec().DependsOn {
			if slices.ContainsFunc(sels, func(o selection) bool { return o.app.Name() == dep.App }) {
				return true
			}
		}
	}
	return false
}

// restartInOrder restarts sels, apps that depend on each other: they
// stop dependents first, then start as a start of their file does, each
// once its dependencies meet their conditions (a task runs again).
func (d *Daemon) restartInOrder(ctx context.Context, sels []selection) error {
	apps := make([]*supervisor.App, len(sels))
	ids := map[*supervisor.App][]int{}
	for i, s := range sels {
		apps[i], ids[s.app] = s.app, s.ids
	}
	var mu sync.Mutex
	var errs []error
	inReverse(apps, func(a *supervisor.App) {
		if err := a.Stop(ctx, ids[a]); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, a := range apps {
		if spec := a.Spec(); len(spec.DependsOn) > 0 {
			a.Hold(waitingFor(spec))
		}
	}
	ctx = context.WithoutCancel(ctx)
	_, err := d.follow(ctx, apps, func(string) bool { return false }, func(a *supervisor.App) error {
		return a.Restart(ctx, ids[a])
	})
	return err
}

// resumeOrder carries on the start in order that the daemon before this
// one left under way: the apps still waiting for their dependencies (not
// those blocked by a failure) start once those meet their conditions.
func (d *Daemon) resumeOrder() {
	var held []*supervisor.App
	for _, a := range d.snapshotApps() {
		insts := a.Instances()
		if len(insts) > 0 && !slices.ContainsFunc(insts, func(in tend.Instance) bool {
			return !heldForDeps(in)
		}) {
			held = append(held, a)
		}
	}
	if len(held) == 0 {
		return
	}
	go func() {
		ctx := context.Background()
		notes, err := d.follow(ctx, held, func(string) bool { return false }, func(a *supervisor.App) error { return a.Start(ctx, nil) })
		for _, n := range notes {
			d.log.Info("start in order carried on", "note", n)
		}
		if err != nil {
			d.log.Warn("start in order carried on", "err", err)
		}
	}()
}

// waitingPrefix begins the problem of an instance held until its
// dependencies are met (waitingFor).
const waitingPrefix = "waiting for "

// heldForDeps reports whether in is held until its app's dependencies
// are met: waiting, with no process and no restart armed, for them.
func heldForDeps(in tend.Instance) bool {
	return in.PID == 0 && in.Status == tend.StatusWaiting && in.NextRestartMS == 0 && strings.HasPrefix(in.Problem, waitingPrefix)
}
