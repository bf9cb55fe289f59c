package daemon

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/supervisor"
)

// reload replaces the instances targets select, app by app. specs, when
// given, are the new settings of the apps of those names.
func (d *Daemon) reload(ctx context.Context, req tend.ReloadRequest) (tend.ReloadResult, error) {
	out := tend.ReloadResult{Reports: []tend.ReloadReport{}}
	sels, err := d.resolve(req.Targets)
	if err != nil {
		return out, err
	}
	updates, err := d.reloadUpdates(req)
	if err != nil {
		return out, err
	}
	var errs []error
	failed := map[string]string{} // tasks that failed, and what they blocked
	for _, s := range reloadOrder(sels, req.Apps) {
		u, fromFile := updates[s.app.Name()]
		var changes []string
		if fromFile || req.ShellEnv != nil || len(req.Env) > 0 || len(req.UnsetEnv) > 0 {
			cur := s.app.Spec()
			next := cur
			if fromFile {
				next = *u.spec
			}
			changes = updateEnv(cur, &next, req)
			u.spec = &next
		}
		spec := s.app.Spec()
		if u.spec != nil {
			spec = *u.spec // with the environment it goes on with, for ${VAR} in the files
		}
		if len(spec.EnvFile) > 0 {
			// A changed env_file reaches the new instances.
			res := s.app.Resolved()
			if u.res != nil {
				res = *u.res
			}
			fileEnv, err := envFiles(&spec, res.Cred)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			res.FileEnv = fileEnv
			u.res = &res
		}
		if why := blockedBy(spec, failed); why != "" {
			failed[spec.Name] = why
			errs = append(errs, tend.Errorf(tend.EFAILED, "reload of %s not done: %s", spec.Name, why))
			continue
		}
		// The report reaches d.reported before it returns here: it takes
		// the changes from its context.
		rep, err := d.reloadApp(context.WithValue(ctx, envChangesKey{}, changes), s, u.spec, u.res, req.Parallel)
		if err != nil && spec.IsTask() {
			failed[spec.Name] = err.Error()
		}
		rep.EnvChanges = changes
		out.Reports = append(out.Reports, rep)
		if err != nil {
			errs = append(errs, err)
			d.log.Warn("reload failed", "app", s.app.Name(), "err", err)
		} else {
			d.log.Info("app reloaded", "app", s.app.Name(), "ms", rep.DurationMS)
		}
	}
	out.Instances = d.instances()
	out.Affected = affected(out.Reports)
	return out, errors.Join(errs...)
}

// update is the new settings of one app a reload applies.
type update struct {
	spec *tend.AppSpec
	res  *supervisor.Resolved
}

// reloadUpdates checks the new specs of a reload and resolves what each
// runs, by app name.
func (d *Daemon) reloadUpdates(req tend.ReloadRequest) (map[string]update, error) {
	updates := map[string]update{}
	for i := range req.Apps {
		spec := &req.Apps[i]
		if err := normalize(spec); err != nil {
			return nil, err
		}
		r, err := d.resolveApp(spec)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		cur := d.apps[spec.Name]
		d.mu.Unlock()
		if r.FileEnv, err = envFiles(spec, r.Cred); err != nil {
			return nil, err
		}
		if err := chooseMode(spec, &r); err != nil {
			return nil, err
		}
		if cur != nil && cur.Resolved().Mode == tend.ModeFork && spec.ExecMode == "" && spec.Port == 0 && spec.Instances <= 1 {
			// Started in fork mode (by a tend from before `instances: 1`
			// made a Node app a cluster, or after its check of Node's
			// cluster protocol failed): a reload keeps the mode.
			r.Mode, r.Sched = tend.ModeFork, ""
		}
		updates[spec.Name] = update{spec, &r}
		if spec.HasHooks() {
			d.hooks.watch(d)
		}
	}
	return updates, nil
}

// affected returns the ids of the instances reports replaced.
func affected(reports []tend.ReloadReport) []int {
	ids := []int{}
	for _, r := range reports {
		for _, st := range r.Steps {
			if st.Error == "" {
				ids = append(ids, st.ID)
			}
		}
	}
	return ids
}

// updateEnv gives next, the settings of a reload of cur, its environment:
// the one cur was started from, updated by the caller's (req.ShellEnv, or
// the environment a reloaded file comes with), and the app's own variables
// (the file's, or cur's with req.Env set); only req.UnsetEnv removes a
// variable. A reload run from a cron job or a CI runner thus keeps the
// PORT the app was started with. It returns what changed for the app, by
// name: "+KEY", "~KEY", "-KEY".
func updateEnv(cur tend.AppSpec, next *tend.AppSpec, req tend.ReloadRequest) []string {
	base := tend.EnvMap(cur.BaseEnv)
	shell := req.ShellEnv
	if shell == nil && next.BaseEnv != nil {
		shell = next.BaseEnv // from a reloaded file: the CLI's environment
	}
	maps.Copy(base, tend.EnvMap(shell))
	own := maps.Clone(next.Env)
	if own == nil {
		own = map[string]string{}
	}
	maps.Copy(own, req.Env)
	for _, k := range req.UnsetEnv {
		delete(base, k)
		delete(own, k)
	}
	next.BaseEnv = make([]string, 0, len(base))
	for _, k := range slices.Sorted(maps.Keys(base)) {
		next.BaseEnv = append(next.BaseEnv, k+"="+base[k])
	}
	next.Env = own
	before, after := tend.EnvMap(cur.BaseEnv), maps.Clone(base)
	maps.Copy(before, cur.Env)
	maps.Copy(after, own)
	var changes []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if v, ok := before[k]; !ok {
			changes = append(changes, "+"+k)
		} else if v != after[k] {
			changes = append(changes, "~"+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			changes = append(changes, "-"+k)
		}
	}
	return changes
}
