package daemon

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/procstat"
	"github.com/tendhq/tend/internal/supervisor"
)

// instances returns every instance with its latest CPU and memory.
func (d *Daemon) instances() []tend.Instance {
	out := []tend.Instance{}
	for _, a := range d.snapshotApps() {
		out = append(out, a.Instances()...)
	}
	return d.withStats(out)
}

// withStats fills in the latest CPU and memory of instances, and the
// user of those that run as the daemon's.
func (d *Daemon) withStats(out []tend.Instance) []tend.Instance {
	d.statsMu.Lock()
	for i := range out {
		if out[i].User == "" { // the app's own user, else the daemon's
			out[i].User = d.user
		}
		if u, ok := d.stats[out[i].PID]; ok && out[i].PID != 0 {
			out[i].CPU, out[i].Memory = u.CPU, u.Memory
		}
	}
	d.statsMu.Unlock()
	return out
}

func (d *Daemon) sampleLoop() {
	s := procstat.NewSampler()
	problems := map[string]string{}
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		var pids []int
		of := map[int]*supervisor.App{}
		for _, a := range d.snapshotApps() {
			for _, in := range a.Instances() {
				if in.PID != 0 {
					pids = append(pids, in.PID)
					of[in.PID] = a
				}
			}
		}
		var u map[int]procstat.Usage
		if len(pids) > 0 {
			u = s.Sample(pids, func(pid int) (time.Duration, []int, bool) { return of[pid].CgroupUsage(pid) })
		}
		d.statsMu.Lock()
		d.stats = u
		d.statsMu.Unlock()
		d.web.history.Record(time.Now(), d.instances())
		d.enforceMemory(u)
		problems = d.checkLogs(problems)
		if d.followLog != nil {
			d.followLog()
		}
		select {
		case <-t.C:
		case <-d.quit:
			return
		}
	}
}

// reopenLogs reopens every log file (after an external rotation).
func (d *Daemon) reopenLogs() {
	n := 0
	for _, a := range d.snapshotApps() {
		for _, k := range a.Sinks(nil) {
			if err := k.Sink.Reopen(); err != nil {
				d.log.Warn("reopening logs", "app", a.Name(), "instance", k.Index, "err", err)
			}
			n++
		}
	}
	d.log.Info("log files reopened", "instances", n)
}

// enforceMemory replaces instances over their app's max_memory_restart,
// or over the one tend chooses for apps that set none (tend.MemoryShare).
// PM2 checks every 30 s; this runs on every sample (1 s), so a leak is
// caught before the machine runs out.
func (d *Daemon) enforceMemory(usage map[int]procstat.Usage) {
	apps := d.snapshotApps()
	chosen := tend.MemoryShare(tend.MemoryLimit(), instancesOf(apps))
	for _, a := range apps {
		restart := cmp.Or(a.Spec().MaxMemoryRestart, chosen)
		if restart <= 0 {
			continue
		}
		for _, in := range a.Instances() {
			if u, ok := usage[in.PID]; ok && in.PID != 0 && in.Status == tend.StatusOnline && u.Memory > uint64(restart) {
				go a.RestartForMemory(context.Background(), in.ID, u.Memory, uint64(restart))
			}
		}
	}
}

// instancesOf counts the instances of apps: those that share the
// cgroup's memory limit.
func instancesOf(apps []*supervisor.App) int {
	n := 0
	for _, a := range apps {
		n += a.Spec().Instances
	}
	return n
}

// checkLogs reports in the daemon's log when an instance's log stops or
// starts being written again (full disk, unwritable directory); describe
// shows the current problem. It returns the problems now.
func (d *Daemon) checkLogs(before map[string]string) map[string]string {
	now := map[string]string{}
	for _, a := range d.snapshotApps() {
		for _, k := range a.Sinks(nil) {
			key := fmt.Sprintf("%s[%d]", a.Name(), k.Index)
			p := k.Sink.Problem()
			if p != "" {
				now[key] = p
			}
			switch {
			case p != "" && before[key] == "":
				d.log.Warn("logs cannot be written; the app keeps running", "instance", key, "problem", p)
			case p == "" && before[key] != "":
				d.log.Info("logs are written again", "instance", key)
			}
		}
	}
	return now
}
