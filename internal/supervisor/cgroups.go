package supervisor

import (
	"fmt"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/cgroup"
	"github.com/tendhq/tend/internal/procexec"
)

// Limits are spec's cgroup limits, per instance.
func Limits(spec *tend.AppSpec) cgroup.Limits {
	return cgroup.Limits{Memory: spec.MaxMemory, CPUPercent: spec.CPUQuota, Pids: spec.MaxPids}
}

// CheckCgroups refuses an app with limits where tend has no cgroups (t is
// nil, for the reason why).
func CheckCgroups(spec *tend.AppSpec, t *cgroup.Tree, why error) error {
	if t != nil || Limits(spec) == (cgroup.Limits{}) {
		return nil
	}
	return tend.Errorf(tend.EINVALID, "app %s: max_memory, cpu_quota and max_pids need cgroups, and tend has none here: %v", spec.Name, why)
}

// cgroupKey names r's cgroup under its app's: by its slot, worker id and
// marker, so that no other run, of this daemon or one before, has it (an
// app deleted and started again reuses slot ids while the old cgroups are
// still being removed).
func cgroupKey(r *run) string { return fmt.Sprintf("%d-%d-%.8s", r.slot.id, r.wid, r.marker) }

// joinCgroup makes r's cgroup, with the app's limits, for c to join.
// Without cgroups an app that has limits does not start; one without
// starts all the same, measured from /proc.
func (a *App) joinCgroup(r *run, c *procexec.Cmd) error {
	t, limits := a.opt.Cgroups, Limits(&a.spec)
	if t == nil {
		return CheckCgroups(&a.spec, t, a.opt.CgroupErr)
	}
	dirs, err := t.Make(a.spec.Name, cgroupKey(r), limits)
	if err != nil {
		if limits != (cgroup.Limits{}) {
			return err
		}
		a.opt.Logf("%s[%d]: no cgroup of its own (%v): its CPU and memory are counted from /proc", a.spec.Name, r.slot.index, err)
		return nil
	}
	c.Cgroups, r.cgroup = dirs, true
	return nil
}

// leaveCgroup removes r's cgroup once r has exited with st, and reports
// whether the kernel's OOM killer ended it.
func (a *App) leaveCgroup(r *run, st procexec.Status) (oom bool) {
	t := a.opt.Cgroups
	if t == nil || !r.cgroup {
		return false
	}
	r.cgroup = false
	name, key := a.spec.Name, cgroupKey(r)
	oom = st.Signal == syscall.SIGKILL && t.OOMKills(name, key) > 0
	go func() {
		// What it left behind was just signalled: the cgroup empties
		// within moments, and until then the kernel refuses to remove it.
		for range 50 {
			if t.Remove(name, key) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return oom
}

// CgroupUsage is the CPU time of the cgroup of the instance of pid, and
// the pids in it (itself and every process it started, wherever they
// went); false when it has none.
func (a *App) CgroupUsage(pid int) (cpu time.Duration, pids []int, ok bool) {
	if a.opt.Cgroups == nil || pid == 0 {
		return 0, nil, false
	}
	for _, iv := range *a.view.Load() {
		if iv.PID == pid && iv.cgroup != "" {
			return a.opt.Cgroups.Usage(a.spec.Name, iv.cgroup)
		}
	}
	return 0, nil, false
}
