package daemon

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/supervisor"
)

// selection is what a list of targets picked: per app, the instance ids
// (nil for the whole app).
type selection struct {
	app *supervisor.App
	ids []int
}

// resolve maps targets (ids, names, "all") to apps and instance ids. A
// target that matches nothing is an error.
func (d *Daemon) resolve(targets []string) ([]selection, error) {
	if len(targets) == 0 {
		return nil, tend.Errorf(tend.EINVALID, "no target given: name an app, an instance id, or all")
	}
	apps := d.snapshotApps()
	var out []selection
	add := func(a *supervisor.App, ids []int) {
		for i := range out {
			if out[i].app == a {
				if out[i].ids == nil || ids == nil {
					out[i].ids = nil
				} else {
					out[i].ids = append(out[i].ids, ids...)
				}
				return
			}
		}
		out = append(out, selection{a, ids})
	}
	for _, t := range targets {
		if strings.TrimSpace(t) == "" {
			return nil, tend.Errorf(tend.EINVALID, "an empty target: name an app, an instance id, a namespace, or all")
		}
		if t == "all" {
			if len(apps) == 0 {
				return nil, tend.Errorf(tend.ENOTFOUND, "no app is running: all matches nothing")
			}
			for _, a := range apps {
				add(a, nil)
			}
			continue
		}
		found := false
		for _, a := range apps {
			if a.Name() == t {
				add(a, nil)
				found = true
			}
		}
		if id, err := strconv.Atoi(t); err == nil && !found {
			for _, a := range apps {
				for _, in := range a.Instances() {
					if in.ID == id {
						add(a, []int{id})
						found = true
					}
				}
			}
		}
		if !found {
			// A namespace: every app in it.
			for _, a := range apps {
				if ns := a.Spec().Namespace; ns != "" && ns == t {
					add(a, nil)
					found = true
				}
			}
		}
		if !found {
			return nil, tend.Errorf(tend.ENOTFOUND, "no app, instance id or namespace matches %q (see tend ls)", t)
		}
	}
	return out, nil
}

// act runs a stop, restart or delete on targets.
func (d *Daemon) act(ctx context.Context, action string, targets []string) (tend.ActionResult, error) {
	sels, err := d.resolve(targets)
	if err != nil {
		return tend.ActionResult{}, err
	}
	var affected []int
	for _, s := range sels {
		for _, in := range s.app.Instances() {
			if s.ids == nil || slices.Contains(s.ids, in.ID) {
				affected = append(affected, in.ID)
			}
		}
	}
	errs := make([]error, len(sels))
	do := func(i int, s selection) {
		switch action {
		case "stop":
			errs[i] = s.app.Stop(ctx, s.ids)
		case "restart":
			errs[i] = s.app.Restart(ctx, s.ids)
		case "delete":
			errs[i] = d.delete(ctx, s)
		case "reset":
			s.app.Reset(s.ids)
		case "flush":
			for _, k := range s.app.Sinks(s.ids) {
				if err := k.Sink.Flush(); err != nil {
					errs[i] = err
				}
			}
		}
	}
	if action == "restart" && orderedApps(sels) {
		return tend.ActionResult{Affected: affected, Instances: d.instances()}, d.restartInOrder(ctx, sels)
	}
	if action == "stop" || action == "delete" {
		// Dependents stop before what they depend on (depends_on).
		apps := make([]*supervisor.App, len(sels))
		for i, s := range sels {
			apps[i] = s.app
		}
		inReverse(apps, func(a *supervisor.App) {
			i := slices.IndexFunc(sels, func(s selection) bool { return s.app == a })
			do(i, sels[i])
		})
	} else {
		var wg sync.WaitGroup
		for i, s := range sels {
			wg.Go(func() { do(i, s) })
		}
		wg.Wait()
	}
	return tend.ActionResult{Affected: affected, Instances: d.instances()}, errors.Join(errs...)
}

// delete removes a whole app, or stops and deletes single instances.
// Deleting every instance of an app deletes the app.
func (d *Daemon) delete(ctx context.Context, s selection) error {
	if s.ids != nil && len(s.ids) < len(s.app.Instances()) {
		return s.app.Remove(ctx, s.ids)
	}
	d.mu.Lock()
	if d.apps[s.app.Name()] == s.app {
		delete(d.apps, s.app.Name())
		d.order = slices.DeleteFunc(d.order, func(n string) bool { return n == s.app.Name() })
	}
	d.mu.Unlock()
	d.log.Info("app deleted", "name", s.app.Name())
	return s.app.Close(ctx)
}
