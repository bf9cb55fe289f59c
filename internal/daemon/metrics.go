package daemon

import (
	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/metrics"
)

// Snapshot implements metrics.Source: every instance with its cumulative
// CPU time, and per app its desired and online counts, reload outcomes and
// connections.
func (d *Daemon) Snapshot() ([]metrics.InstanceStats, []metrics.AppStats) {
	var insts []metrics.InstanceStats
	var apps []metrics.AppStats
	for _, a := range d.snapshotApps() {
		spec := a.Spec()
		as := metrics.AppStats{Name: a.Name(), Desired: spec.Instances, Reloads: a.Reloads(),
			Probed: spec.HasLiveness() || spec.Watchdog > 0, Unhealthy: a.Unhealthy()}
		for _, in := range d.withStats(a.Instances()) {
			is := metrics.InstanceStats{Instance: in}
			d.statsMu.Lock()
			if u, ok := d.stats[in.PID]; ok && in.PID != 0 {
				is.CPUSeconds = u.CPUSeconds
			}
			d.statsMu.Unlock()
			if in.Status == tend.StatusOnline {
				as.Online++
			}
			as.Connections += in.Connections
			insts = append(insts, is)
		}
		apps = append(apps, as)
	}
	return insts, apps
}

// serveMetrics serves Prometheus metrics on addr when the settings ask for
// it (TEND_METRICS_ADDR or metrics_addr); an address without a host binds
// loopback only.
func (d *Daemon) serveMetrics(addr string) error {
	ln, err := metrics.Listen(addr)
	if err != nil {
		return err
	}
	d.log.Info("serving metrics", "addr", ln.Addr().String())
	go func() {
		<-d.quit
		ln.Close()
	}()
	go metrics.Serve(ln, d)
	return nil
}
