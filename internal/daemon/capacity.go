package daemon

import (
	"context"
	"slices"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/supervisor"
)

// limitHint says where the instance limit comes from.
const limitHint = "max_instances in $TEND_HOME/config.yaml; by default it follows the open file limit, ulimit -n, at 6 descriptors an instance"

// room is how many more instances the daemon's limit allows: the limit
// less the instances of every app but except (one being scaled counts as
// the count it goes to) and those held for starts in flight. Caller holds
// mu.
func (d *Daemon) room(except ...*supervisor.App) int {
	used := d.reserved
	for _, a := range d.allApps() {
		if !slices.Contains(except, a) {
			used += max(len(a.Instances()), d.scaling[a])
		}
	}
	return d.settings.MaxInstances - used
}

// reserveStart holds room for the instances of specs (the replaced apps'
// instances go) or refuses them, up front, before a slot is made. It
// returns what to give back to d.reserved once the apps count by
// themselves. Caller holds mu.
func (d *Daemon) reserveStart(specs []tend.AppSpec, replaced []*supervisor.App) (int, error) {
	room, held := d.room(replaced...), 0
	for _, spec := range specs {
		if spec.Instances > room-held {
			return 0, tend.Errorf(tend.EINVALID, "starting %s (%d instances) would pass this daemon's limit of %d instances in all: %d more fit (%s)",
				spec.Name, spec.Instances, d.settings.MaxInstances, max(room-held, 0), limitHint)
		}
		held += spec.Instances
	}
	d.reserved += held
	return held, nil
}

// scale sets an app's instance count.
func (d *Daemon) scale(ctx context.Context, req tend.ScaleRequest) (tend.ReloadResult, error) {
	out := tend.ReloadResult{Reports: []tend.ReloadReport{}}
	d.mu.Lock()
	a := d.apps[req.App]
	d.mu.Unlock()
	if a == nil {
		return out, tend.Errorf(tend.ENOTFOUND, "no app named %q (see tend ls)", req.App)
	}
	d.mu.Lock()
	room, now := d.room(a), len(a.Instances()) // room: how many a may have
	if _, busy := d.scaling[a]; busy {
		d.mu.Unlock()
		return out, tend.Errorf(tend.ECONFLICT, "a reload or scale of %s is already under way", req.App)
	}
	target := req.Count
	// Growing past the limit is refused (compared before any sum: no
	// overflow); shrinking is always allowed, also when the daemon is over
	// a limit that was lowered.
	tooMany := !req.Relative && target > now && target > room || req.Relative && req.Count > 0 && req.Count > room-now
	if tooMany {
		d.mu.Unlock()
		return out, tend.Errorf(tend.EINVALID, "scaling %s would pass this daemon's limit of %d instances in all: %s can have %d (%s)",
			req.App, d.settings.MaxInstances, req.App, max(room, 0), limitHint)
	}
	if req.Relative {
		target = now + req.Count
	}
	d.scaling[a] = target // counted as that many until it is done
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.scaling, a)
		d.mu.Unlock()
	}()
	rep, err := a.Scale(ctx, target)
	out.Reports = append(out.Reports, rep)
	out.Instances = d.instances()
	return out, err
}
