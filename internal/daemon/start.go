package daemon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/supervisor"
)

// newID allocates an instance id. Caller holds mu.
func (d *Daemon) newID() int {
	d.nextID++
	return d.nextID - 1
}

// start registers and launches the apps of req. Every spec is checked
// before anything starts: a bad one starts none. Stored specs (a dump, the
// apps --force was replacing) were checked by the tend that stored them,
// maybe less strictly: what this one refuses in them goes back to its
// default, said in a note, rather than losing the app.
func (d *Daemon) start(ctx context.Context, req tend.StartRequest, stored bool) (notes []string, err error) {
	if stored {
		for i := range req.Apps {
			notes = append(notes, req.Apps[i].Repair()...)
		}
	}
	res, more, err := d.prepare(req.Apps, stored)
	notes = append(notes, more...)
	if err == nil {
		err = d.checkOrder(req.Apps)
	}
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.isQuitting() {
		d.mu.Unlock()
		return nil, errQuitting
	}
	d.starting.Add(1)
	defer d.starting.Done()
	replaced, held, err := d.claim(req)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// The replaced apps stop first: the new ones may need their port.
	var previous []tend.AppSpec
	for _, a := range replaced {
		previous = append(previous, a.Spec())
	}
	closeAll(replaced)
	inOrder := ordered(req.Apps)
	started, err := d.launch(ctx, req, res, held, inOrder)
	if err != nil {
		return nil, d.unclaim(ctx, req, started, held, previous, err)
	}
	d.announce(started, inOrder)
	if inOrder {
		// The apps are listed (held back as waiting) while their
		// dependencies start: a failure leaves them there, blocked, for
		// ls and describe to explain.
		ctx := context.WithoutCancel(ctx)
		// Restoring, a dependency saved stopped stays so, and does not
		// hold its dependents back.
		skip := func(dep string) bool { return len(req.Stopped[dep]) > 0 }
		more, err := d.follow(ctx, started, skip, func(a *supervisor.App) error {
			stopped, restoring := req.Stopped[a.Name()]
			err := a.Start(ctx, toStart(a, a.Spec(), stopped, restoring))
			a.Unhold() // those not started are stopped, not waiting
			return err
		})
		return append(notes, more...), err
	}
	return notes, nil
}

// announce logs the start of apps (inOrder: their creation, follow
// starts them) and publishes their state.
func (d *Daemon) announce(started []*supervisor.App, inOrder bool) {
	now := time.Now()
	for _, a := range started {
		what := map[bool]string{false: "app started", true: "app added, to start in the order of depends_on"}[inOrder]
		d.log.Info(what, "name", a.Name(), "instances", len(a.Instances()))
		if d.hub.Wanted() {
			// A reader that subscribed while the app started got neither
			// its first events (its actor published before anyone could
			// find it) nor the app in its snapshot: its state now.
			for _, in := range a.Instances() {
				d.hub.Publish(tend.EventOf(in, tend.EventInstance, now))
			}
		}
	}
}

// prepare checks the specs of a start (tend.AppSpec.Validate), finds what
// each runs and decides how its instances share its port. notes are what
// the user should know of those decisions.
func (d *Daemon) prepare(specs []tend.AppSpec, stored bool) (res []supervisor.Resolved, notes []string, err error) {
	if len(specs) == 0 {
		return nil, nil, tend.Errorf(tend.EINVALID, "nothing to start")
	}
	res = make([]supervisor.Resolved, len(specs))
	seen := map[string]bool{}
	for i := range specs {
		spec := &specs[i]
		if err := normalize(spec); err != nil {
			return nil, nil, err
		}
		if seen[spec.Name] {
			return nil, nil, tend.Errorf(tend.EINVALID, "two apps are named %q: names must be unique", spec.Name)
		}
		seen[spec.Name] = true
		r, err := d.resolveApp(spec)
		if err != nil {
			return nil, nil, err
		}
		if r.FileEnv, err = envFiles(spec, r.Cred); err != nil {
			if !stored {
				return nil, nil, err
			}
			// A saved app comes back without its variables rather than
			// not at all; the note says why.
			notes = append(notes, fmt.Sprintf("%v: it starts without them", err))
		}
		if err := chooseMode(spec, &r); err != nil {
			return nil, nil, err
		}
		if spec.HasHooks() {
			d.hooks.watch(d)
		}
		note, err := d.checkNodeCluster(spec, &r)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range []string{note, readyURLWarning(spec, r.Mode), livenessWarning(spec, r.Mode), d.reusePortNote(spec, r.Sched)} {
			if n != "" {
				notes = append(notes, n)
			}
		}
		res[i] = r
	}
	return res, notes, nil
}

// claim reserves the names and ports of req's apps and room for their
// instances, replacing existing apps only with force: it returns those,
// and the instances held. Caller holds mu.
func (d *Daemon) claim(req tend.StartRequest) (replaced []*supervisor.App, held int, err error) {
	for _, spec := range req.Apps {
		a, exists := d.apps[spec.Name]
		if !exists && !d.pending[spec.Name] {
			continue
		}
		if !exists || !req.Force {
			return nil, 0, tend.Errorf(tend.ECONFLICT, "an app named %q already exists: pick another --name, use `tend restart %s`, or --force to replace it", spec.Name, spec.Name)
		}
		replaced = append(replaced, a)
	}
	for _, spec := range req.Apps {
		if spec.Port == 0 {
			continue
		}
		for _, a := range d.apps {
			if a.Spec().Port == spec.Port && !slices.Contains(replaced, a) {
				return nil, 0, tend.Errorf(tend.ECONFLICT, "port %d is already used by the tend app %s (it keeps its port while stopped): tend delete %s, or choose another --port", spec.Port, a.Name(), a.Name())
			}
		}
	}
	if held, err = d.reserveStart(req.Apps, replaced); err != nil {
		return nil, 0, err
	}
	if len(d.apps) == 0 && len(d.pending) == 0 {
		d.nextID = 0
	}
	for _, spec := range req.Apps {
		if _, exists := d.apps[spec.Name]; !exists {
			d.order = append(d.order, spec.Name)
		}
		delete(d.apps, spec.Name) // a replaced app stops next
		d.pending[spec.Name] = true
	}
	return replaced, held, nil
}

// launch creates and starts req's apps and registers them in place of
// the held room. inOrder, it starts none: those with dependencies are
// held back as waiting, and follow starts them all in order. On an
// error, started are the apps it had created, for unclaim.
func (d *Daemon) launch(ctx context.Context, req tend.StartRequest, res []supervisor.Resolved, held int, inOrder bool) (started []*supervisor.App, err error) {
	for i, spec := range req.Apps {
		a, err := supervisor.New(spec, res[i], d.appOptions(spec.Name))
		if err != nil {
			return started, err
		}
		started = append(started, a)
		d.mu.Lock()
		d.creating[a.Name()] = a
		d.mu.Unlock()
		if inOrder {
			if len(spec.DependsOn) > 0 {
				a.Hold(waitingFor(spec))
			}
			continue
		}
		stopped, restoring := req.Stopped[spec.Name]
		if err := a.Start(ctx, toStart(a, spec, stopped, restoring)); err != nil {
			return started, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.isQuitting() {
		// A signal or kill came while these started: shutdown did not
		// see them, so they stop here, before the daemon ends.
		return started, errQuitting
	}
	d.reserved -= held
	for _, a := range started {
		d.apps[a.Name()] = a
		delete(d.pending, a.Name())
		delete(d.creating, a.Name())
	}
	return started, nil
}

// unclaim undoes a start that failed with err: the apps it started stop,
// the names and room it held are free again, and what --force was
// replacing (previous) comes back as it was, so nothing the user started
// is lost.
func (d *Daemon) unclaim(ctx context.Context, req tend.StartRequest, started []*supervisor.App, held int, previous []tend.AppSpec, err error) error {
	closeAll(started)
	d.mu.Lock()
	d.reserved -= held
	for _, spec := range req.Apps {
		delete(d.apps, spec.Name)
		delete(d.pending, spec.Name)
		delete(d.creating, spec.Name)
		d.order = slices.DeleteFunc(d.order, func(n string) bool { return n == spec.Name })
	}
	quitting := d.isQuitting()
	d.mu.Unlock()
	if len(previous) == 0 || quitting {
		return err
	}
	notes, rerr := d.start(context.WithoutCancel(ctx), tend.StartRequest{Apps: previous}, true)
	for _, n := range notes {
		d.log.Warn("restoring the apps --force was replacing", "note", n)
	}
	if rerr != nil {
		d.log.Error("restoring the apps --force was replacing", "err", rerr)
		return tend.Errorf(tend.ErrorCode(err), "%v; additionally, restoring the previous app failed: %v", err, rerr)
	}
	return tend.Errorf(tend.ErrorCode(err), "%v; the previous app was restored", err)
}

// toStart returns the ids of a's instances that start now: all (nil) but
// the indexes in stopped. Restoring a saved state (resurrect) follows it;
// otherwise autostart off starts none.
func toStart(a *supervisor.App, spec tend.AppSpec, stopped []int, restoring bool) []int {
	if !restoring && !spec.AutostartOn() {
		return []int{}
	}
	if len(stopped) == 0 {
		return nil
	}
	ids := []int{}
	for _, in := range a.Instances() {
		if !slices.Contains(stopped, in.Instance) {
			ids = append(ids, in.ID)
		}
	}
	return ids
}
