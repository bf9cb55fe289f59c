package metrics

import (
	"maps"
	"slices"
	"strconv"

	"github.com/tendhq/tend"
)

// InstanceStats is one instance at scrape time.
type InstanceStats struct {
	tend.Instance
	// CPUSeconds is the cumulative user+system CPU time of the instance's
	// process tree since its current process started. It starts again from
	// zero after a restart, which Prometheus's rate() reads as a counter
	// reset.
	CPUSeconds float64
}

// AppStats is one app at scrape time.
type AppStats struct {
	Name    string
	Desired int // instances configured
	Online  int // instances online
	// Reloads counts finished reloads since the app was created, by
	// outcome ("ok", "failed"). A nil map exports no reload series.
	Reloads map[string]int
	// Probed says the app has a liveness probe or a watchdog; Unhealthy
	// counts the instances replaced for failing them.
	Probed    bool
	Unhealthy int
	// Connections is how many connections tend handed to this app's
	// instances (the sum over instances); 0 in modes where the instances
	// accept by themselves.
	Connections uint64
}

// Source gives the handler the process table at scrape time. Snapshot is
// called once per scrape, possibly from several scrapes at once, and must
// not return slices that the caller keeps changing.
type Source interface {
	Snapshot() ([]InstanceStats, []AppStats)
}

// statuses are the values of tend_instance_status's status label. Every
// instance exports all of them, 1 for its current status and 0 for the
// others, so that a query such as sum by (status) (tend_instance_status)
// sees a status go to zero instead of vanishing.
var statuses = []tend.Status{
	tend.StatusLaunching,
	tend.StatusOnline,
	tend.StatusStopping,
	tend.StatusStopped,
	tend.StatusErrored,
	tend.StatusWaiting,
	tend.StatusCompleted,
}

// writeTend writes tend's own families for one snapshot.
func writeTend(w *textWriter, instances []InstanceStats, apps []AppStats) {
	w.family("tend_build_info",
		"Always 1; the version label is the version of the tend daemon.", gauge)
	w.sample(1, "version", tend.Version)

	// "index", not "instance": Prometheus reserves instance for the scraped target.
	labels := make([][]string, len(instances))
	for i, in := range instances {
		labels[i] = []string{"app", in.Name, "index", strconv.Itoa(in.Instance.Instance), "id", strconv.Itoa(in.ID)}
	}
	perInstance := func(name, help, typ string, value func(InstanceStats) float64) {
		w.family(name, help, typ)
		for i, in := range instances {
			w.sample(value(in), labels[i]...)
		}
	}
	perInstance("tend_instance_cpu_seconds_total",
		"User and system CPU time of the instance's process tree since its process started.", counter,
		func(in InstanceStats) float64 { return in.CPUSeconds })
	perInstance("tend_instance_resident_memory_bytes",
		"Resident memory of the instance's process tree.", gauge,
		func(in InstanceStats) float64 { return float64(in.Memory) })
	perInstance("tend_instance_restarts_total",
		"Times tend restarted the instance.", counter,
		func(in InstanceStats) float64 { return float64(in.Restarts) })
	perInstance("tend_instance_uptime_seconds",
		"Time since the instance's current process started; 0 when it is not running.", gauge,
		func(in InstanceStats) float64 { return float64(in.UptimeMS) / 1000 })

	w.family("tend_instance_status",
		"Lifecycle status of the instance: 1 for the current status, 0 for the others.", gauge)
	for i, in := range instances {
		for _, s := range statuses {
			w.sample(bool01(in.Status == s), slices.Concat(labels[i], []string{"status", string(s)})...)
		}
	}

	perInstance("tend_instance_ready",
		"Whether the instance is ready to serve (1) or not (0).", gauge,
		func(in InstanceStats) float64 { return bool01(in.Ready) })

	w.family("tend_instance_last_exit_code",
		"Exit code of the instance's last run (-1 when killed by a signal), labelled with why it ended and the signal.", gauge)
	for i, in := range instances {
		if e := in.LastExit; e != nil {
			w.sample(float64(e.Code), slices.Concat(labels[i], []string{"cause", e.Cause, "signal", e.Signal})...)
		}
	}

	perInstance("tend_instance_connections_total",
		"Connections tend handed to the instance.", counter,
		func(in InstanceStats) float64 { return float64(in.Connections) })

	perApp := func(name, help, typ string, value func(AppStats) float64) {
		w.family(name, help, typ)
		for _, a := range apps {
			w.sample(value(a), "app", a.Name)
		}
	}
	perApp("tend_app_desired_instances",
		"Instances configured for the app.", gauge,
		func(a AppStats) float64 { return float64(a.Desired) })
	perApp("tend_app_online_instances",
		"Instances of the app that are online.", gauge,
		func(a AppStats) float64 { return float64(a.Online) })

	w.family("tend_app_reloads_total",
		"Reloads of the app since it was created, by outcome.", counter)
	for _, a := range apps {
		for _, outcome := range slices.Sorted(maps.Keys(a.Reloads)) {
			w.sample(float64(a.Reloads[outcome]), "app", a.Name, "outcome", outcome)
		}
	}

	perApp("tend_app_connections_total",
		"Connections tend handed to the app's instances.", counter,
		func(a AppStats) float64 { return float64(a.Connections) })
	writeHealth(w, instances, labels, apps)
}

// writeHealth writes the families of liveness probes and watchdogs, for
// the instances and apps that have one: none otherwise.
func writeHealth(w *textWriter, instances []InstanceStats, labels [][]string, apps []AppStats) {
	var probed []int
	for i, in := range instances {
		if in.Health != "" {
			probed = append(probed, i)
		}
	}
	if len(probed) > 0 {
		w.family("tend_instance_healthy",
			"Whether the instance's liveness probe or watchdog passes (1) or not (0).", gauge)
		for _, i := range probed {
			w.sample(bool01(instances[i].Health == "healthy"), labels[i]...)
		}
		w.family("tend_instance_probe_failures_total",
			"Failed liveness probes of the instance's current process.", counter)
		for _, i := range probed {
			w.sample(float64(instances[i].ProbeFailures), labels[i]...)
		}
	}
	var checked []AppStats
	for _, a := range apps {
		if a.Probed {
			checked = append(checked, a)
		}
	}
	if len(checked) > 0 {
		w.family("tend_app_unhealthy_replacements_total",
			"Instances of the app replaced because their liveness probe or watchdog failed.", counter)
		for _, a := range checked {
			w.sample(float64(a.Unhealthy), "app", a.Name)
		}
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
