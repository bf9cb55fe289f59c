package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/deps"
	"github.com/tendhq/tend/internal/private"
)

// dumpVersion is the format of the dump file; a reader refuses others.
const dumpVersion = 1

// dump is the file tend save writes. It holds each app's whole spec,
// environment included, so it is written 0600 inside the 0700 home.
type dump struct {
	Version int         `json:"version"`
	SavedAt time.Time   `json:"saved_at"`
	Tend    string      `json:"tend"` // the version that wrote it
	Apps    []dumpedApp `json:"apps"`
}

type dumpedApp struct {
	Spec    tend.AppSpec `json:"spec"`
	Stopped []int        `json:"stopped,omitempty"` // positions of the instances stopped when saved
}

// save writes every app, in the order of tend ls, with the instances that
// are stopped, to the dump file. An empty list is written only with force:
// it would make resurrect restore nothing.
func (d *Daemon) save(force bool) (tend.SaveResult, error) {
	d.saveMu.Lock() // saves one at a time: they share the .tmp and .bak files
	defer d.saveMu.Unlock()
	out := dump{Version: dumpVersion, SavedAt: time.Now().UTC(), Tend: tend.Version, Apps: []dumpedApp{}}
	res := tend.SaveResult{Path: tend.Home(d.home).Dump(), Apps: []string{}}
	for _, a := range d.snapshotApps() {
		da := dumpedApp{Spec: a.Spec()}
		// By position in index order, not by index: after tend delete
		// <id> the indexes have gaps, and the restored app numbers its
		// instances 0..N-1.
		insts := a.Instances()
		slices.SortFunc(insts, func(x, y tend.Instance) int { return x.Instance - y.Instance })
		for i, in := range insts {
			if in.Status == tend.StatusStopped {
				da.Stopped = append(da.Stopped, i)
			}
		}
		out.Apps = append(out.Apps, da)
		res.Apps = append(res.Apps, da.Spec.Name)
	}
	if len(out.Apps) == 0 && !force {
		return res, tend.Errorf(tend.EINVALID, "no app runs, so there is nothing to save; --force saves the empty list (tend resurrect would then restore nothing)")
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return res, err
	}
	if err := private.WriteFile(res.Path, append(b, '\n'), private.WriteOptions{Sync: true, Backup: true}); err != nil {
		return res, tend.Errorf(tend.EFAILED, "writing %s: %v", res.Path, err)
	}
	d.log.Info("app list saved", "path", res.Path, "apps", len(out.Apps))
	return res, nil
}

// readDump reads the dump file, or its .bak when the file is missing or
// damaged (with a note saying so).
func readDump(path string) (dump, string, []string, error) {
	dm, err := parseDump(path)
	if err == nil {
		return dm, path, nil, nil
	}
	bak, berr := parseDump(path + ".bak")
	if berr == nil {
		return bak, path + ".bak", []string{fmt.Sprintf("%v; restored from %s.bak, saved %s", err, path, bak.SavedAt.Local().Format(time.DateTime))}, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return dm, path, nil, tend.Errorf(tend.ENOTFOUND, "nothing was saved: %s does not exist (tend save writes it)", path)
	}
	return dm, path, nil, tend.Errorf(tend.EINVALID, "%v, and there is no usable %s.bak", err, path)
}

func parseDump(path string) (dump, error) {
	var dm dump
	// Never one another user could have written: its apps would run as
	// this one.
	b, err := private.ReadFile(path)
	if err != nil {
		return dm, err
	}
	if err := json.Unmarshal(b, &dm); err != nil {
		return dm, fmt.Errorf("%s is damaged: %v", path, err)
	}
	if dm.Version != dumpVersion {
		return dm, fmt.Errorf("%s has format version %d; this tend (%s) reads version %d", path, dm.Version, tend.Version, dumpVersion)
	}
	return dm, nil
}

// resurrect starts the apps of the dump file that are not running, each
// on its own (one that fails does not keep the others down), with the
// instances that were stopped when saved left stopped.
func (d *Daemon) resurrect(ctx context.Context) (tend.ResurrectResult, error) {
	dm, path, notes, err := readDump(tend.Home(d.home).Dump())
	res := tend.ResurrectResult{Path: path, SavedAt: dm.SavedAt, Started: []string{}, Skipped: []string{}, Failed: []string{}, Notes: notes}
	if err != nil {
		return res, err
	}
	for _, da := range dependenciesFirst(dm.Apps) {
		name := da.Spec.Name
		d.mu.Lock()
		_, exists := d.apps[name]
		exists = exists || d.pending[name]
		d.mu.Unlock()
		if exists {
			res.Skipped = append(res.Skipped, name)
			continue
		}
		// Stopped is given even when empty: the saved state wins over
		// autostart.
		req := tend.StartRequest{Apps: []tend.AppSpec{da.Spec}, Stopped: map[string][]int{name: da.Stopped}}
		n, err := d.start(ctx, req, true)
		if err != nil {
			res.Failed = append(res.Failed, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		res.Started = append(res.Started, name)
		res.Notes = append(res.Notes, n...)
	}
	d.log.Info("apps restored", "path", path, "started", len(res.Started), "skipped", len(res.Skipped), "failed", len(res.Failed))
	return res, nil
}

// dependenciesFirst orders the apps of a dump so that each comes after
// those it depends on: each starts on its own, once they meet their
// conditions. A dump with a cycle keeps its order (those apps fail).
func dependenciesFirst(apps []dumpedApp) []dumpedApp {
	specs := make([]tend.AppSpec, len(apps))
	for i := range apps {
		specs[i] = apps[i].Spec
	}
	order, err := deps.Order(deps.OfApps(specs))
	if err != nil {
		return apps
	}
	out := make([]dumpedApp, 0, len(apps))
	for _, name := range order {
		i := slices.IndexFunc(apps, func(a dumpedApp) bool { return a.Spec.Name == name })
		out = append(out, apps[i])
	}
	return out
}
