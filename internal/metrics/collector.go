package metrics

import (
	"maps"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
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
	// Connections is how many connections tend handed to this app's
	// instances (the sum over instances); 0 in modes where the instances
	// accept by themselves.
	Connections uint64
}

// Source gives the collector the process table at scrape time. Snapshot is
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
}

// "index", not "instance": Prometheus reserves instance for the scraped target.
var instanceLabels = []string{"app", "index", "id"}

func instanceDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(slices.Clip(instanceLabels), extra...), nil)
}

var (
	descCPU = instanceDesc("tend_instance_cpu_seconds_total",
		"User and system CPU time of the instance's process tree since its process started.")
	descMemory = instanceDesc("tend_instance_resident_memory_bytes",
		"Resident memory of the instance's process tree.")
	descRestarts = instanceDesc("tend_instance_restarts_total",
		"Times tend restarted the instance.")
	descUptime = instanceDesc("tend_instance_uptime_seconds",
		"Time since the instance's current process started; 0 when it is not running.")
	descStatus = instanceDesc("tend_instance_status",
		"Lifecycle status of the instance: 1 for the current status, 0 for the others.", "status")
	descReady = instanceDesc("tend_instance_ready",
		"Whether the instance is ready to serve (1) or not (0).")
	descLastExit = instanceDesc("tend_instance_last_exit_code",
		"Exit code of the instance's last run (-1 when killed by a signal), labelled with why it ended and the signal.",
		"cause", "signal")
	descInstanceConns = instanceDesc("tend_instance_connections_total",
		"Connections tend handed to the instance.")

	descDesired = prometheus.NewDesc("tend_app_desired_instances",
		"Instances configured for the app.", []string{"app"}, nil)
	descOnline = prometheus.NewDesc("tend_app_online_instances",
		"Instances of the app that are online.", []string{"app"}, nil)
	descReloads = prometheus.NewDesc("tend_app_reloads_total",
		"Reloads of the app since it was created, by outcome.", []string{"app", "outcome"}, nil)
	descAppConns = prometheus.NewDesc("tend_app_connections_total",
		"Connections tend handed to the app's instances.", []string{"app"}, nil)

	descBuildInfo = prometheus.NewDesc("tend_build_info",
		"Always 1; the version label is the version of the tend daemon.", []string{"version"}, nil)
)

// collector is a prometheus.Collector that reads a Source at scrape time.
type collector struct {
	src Source
}

// Describe sends every descriptor, which makes collector a checked collector:
// the registry rejects a metric whose labels do not match its descriptor.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descCPU, descMemory, descRestarts, descUptime, descStatus, descReady,
		descLastExit, descInstanceConns,
		descDesired, descOnline, descReloads, descAppConns,
		descBuildInfo,
	} {
		ch <- d
	}
}

// Collect sends the metrics of one snapshot.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	send(ch, descBuildInfo, prometheus.GaugeValue, 1, tend.Version)

	instances, apps := c.src.Snapshot()
	for _, in := range instances {
		labels := []string{in.Name, strconv.Itoa(in.Instance.Instance), strconv.Itoa(in.ID)}
		metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, extra ...string) {
			send(ch, d, t, v, append(slices.Clip(labels), extra...)...)
		}
		metric(descCPU, prometheus.CounterValue, in.CPUSeconds)
		metric(descMemory, prometheus.GaugeValue, float64(in.Memory))
		metric(descRestarts, prometheus.CounterValue, float64(in.Restarts))
		metric(descUptime, prometheus.GaugeValue, float64(in.UptimeMS)/1000)
		for _, s := range statuses {
			metric(descStatus, prometheus.GaugeValue, bool01(in.Status == s), string(s))
		}
		metric(descReady, prometheus.GaugeValue, bool01(in.Ready))
		if e := in.LastExit; e != nil {
			metric(descLastExit, prometheus.GaugeValue, float64(e.Code), e.Cause, e.Signal)
		}
		metric(descInstanceConns, prometheus.CounterValue, float64(in.Connections))
	}

	for _, a := range apps {
		send(ch, descDesired, prometheus.GaugeValue, float64(a.Desired), a.Name)
		send(ch, descOnline, prometheus.GaugeValue, float64(a.Online), a.Name)
		for _, outcome := range slices.Sorted(maps.Keys(a.Reloads)) {
			send(ch, descReloads, prometheus.CounterValue, float64(a.Reloads[outcome]), a.Name, outcome)
		}
		send(ch, descAppConns, prometheus.CounterValue, float64(a.Connections), a.Name)
	}
}

// send sends one constant metric. It does not use MustNewConstMetric: a
// label value that is not valid UTF-8 (an app name, say) would panic in the
// registry's collecting goroutine and take the daemon down; as an invalid
// metric it only costs that series, and the handler reports it.
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
