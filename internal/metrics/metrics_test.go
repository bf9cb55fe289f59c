package metrics

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tendhq/tend"
)

// fakeSource returns a fixed snapshot.
type fakeSource struct {
	instances []InstanceStats
	apps      []AppStats
}

func (f fakeSource) Snapshot() ([]InstanceStats, []AppStats) { return f.instances, f.apps }

// twoApps is api with two instances (one crashed and waiting) and worker
// with one instance that has never exited.
var twoApps = fakeSource{
	instances: []InstanceStats{
		{Instance: tend.Instance{ID: 0, Name: "api", Instance: 0, PID: 100, Status: tend.StatusOnline,
			Restarts: 2, UptimeMS: 61500, Memory: 50 << 20, Ready: true, Connections: 40,
			LastExit: &tend.Exit{Code: -1, Signal: "SIGKILL", Cause: "memory"}},
			CPUSeconds: 12.5},
		{Instance: tend.Instance{ID: 1, Name: "api", Instance: 1, Status: tend.StatusWaiting,
			Restarts: 5, Connections: 2,
			LastExit: &tend.Exit{Code: 3, Cause: "crash"}},
			CPUSeconds: 0},
		{Instance: tend.Instance{ID: 7, Name: "worker", Instance: 0, PID: 300, Status: tend.StatusLaunching,
			UptimeMS: 250, Memory: 1 << 20},
			CPUSeconds: 0.75},
	},
	apps: []AppStats{
		{Name: "api", Desired: 2, Online: 1, Reloads: map[string]int{"ok": 3, "failed": 1}, Connections: 42},
		{Name: "worker", Desired: 1, Online: 0},
	},
}

// serve serves src on a fresh loopback listener until the test ends and
// returns the base URL.
func serve(t *testing.T, src Source) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ln, src) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape fetches /metrics and parses the text format.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

// series returns the value of the series of family name whose labels are
// exactly labels, and whether there is one.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	var found []float64
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			found = append(found, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			found = append(found, m.GetGauge().GetValue())
		default:
			found = append(found, m.GetUntyped().GetValue())
		}
	}
	if len(found) > 1 {
		t.Fatalf("%s%v: %d series, want one", name, labels, len(found))
	}
	if len(found) == 0 {
		return 0, false
	}
	return found[0], true
}

// lbl builds a label set from name, value pairs.
func lbl(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func inst(app string, index, id int, kv ...string) map[string]string {
	return lbl(append([]string{"app", app, "index", strconv.Itoa(index), "id", strconv.Itoa(id)}, kv...)...)
}

func TestFamilies(t *testing.T) {
	fams := scrape(t, serve(t, twoApps))
	want := map[string]dto.MetricType{
		"tend_instance_cpu_seconds_total":     dto.MetricType_COUNTER,
		"tend_instance_resident_memory_bytes": dto.MetricType_GAUGE,
		"tend_instance_restarts_total":        dto.MetricType_COUNTER,
		"tend_instance_uptime_seconds":        dto.MetricType_GAUGE,
		"tend_instance_status":                dto.MetricType_GAUGE,
		"tend_instance_ready":                 dto.MetricType_GAUGE,
		"tend_instance_last_exit_code":        dto.MetricType_GAUGE,
		"tend_instance_connections_total":     dto.MetricType_COUNTER,
		"tend_app_desired_instances":          dto.MetricType_GAUGE,
		"tend_app_online_instances":           dto.MetricType_GAUGE,
		"tend_app_reloads_total":              dto.MetricType_COUNTER,
		"tend_app_connections_total":          dto.MetricType_COUNTER,
		"tend_build_info":                     dto.MetricType_GAUGE,
		// The daemon's own runtime and process.
		"go_goroutines":                 dto.MetricType_GAUGE,
		"process_resident_memory_bytes": dto.MetricType_GAUGE,
	}
	for name, typ := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("family %s missing", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no HELP", name)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "tend_") {
			if _, ok := want[name]; !ok {
				t.Errorf("unexpected family %s", name)
			}
		}
	}
}

func TestValues(t *testing.T) {
	fams := scrape(t, serve(t, twoApps))
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tend_instance_cpu_seconds_total", inst("api", 0, 0), 12.5},
		{"tend_instance_cpu_seconds_total", inst("api", 1, 1), 0},
		{"tend_instance_cpu_seconds_total", inst("worker", 0, 7), 0.75},
		{"tend_instance_resident_memory_bytes", inst("api", 0, 0), 50 << 20},
		{"tend_instance_resident_memory_bytes", inst("worker", 0, 7), 1 << 20},
		{"tend_instance_restarts_total", inst("api", 0, 0), 2},
		{"tend_instance_restarts_total", inst("api", 1, 1), 5},
		{"tend_instance_restarts_total", inst("worker", 0, 7), 0},
		{"tend_instance_uptime_seconds", inst("api", 0, 0), 61.5},
		{"tend_instance_uptime_seconds", inst("api", 1, 1), 0},
		{"tend_instance_uptime_seconds", inst("worker", 0, 7), 0.25},
		{"tend_instance_ready", inst("api", 0, 0), 1},
		{"tend_instance_ready", inst("api", 1, 1), 0},
		{"tend_instance_ready", inst("worker", 0, 7), 0},
		{"tend_instance_last_exit_code", inst("api", 0, 0, "cause", "memory", "signal", "SIGKILL"), -1},
		{"tend_instance_last_exit_code", inst("api", 1, 1, "cause", "crash", "signal", ""), 3},
		{"tend_instance_connections_total", inst("api", 0, 0), 40},
		{"tend_instance_connections_total", inst("api", 1, 1), 2},
		{"tend_instance_connections_total", inst("worker", 0, 7), 0},
		{"tend_app_desired_instances", lbl("app", "api"), 2},
		{"tend_app_desired_instances", lbl("app", "worker"), 1},
		{"tend_app_online_instances", lbl("app", "api"), 1},
		{"tend_app_online_instances", lbl("app", "worker"), 0},
		{"tend_app_reloads_total", lbl("app", "api", "outcome", "ok"), 3},
		{"tend_app_reloads_total", lbl("app", "api", "outcome", "failed"), 1},
		{"tend_app_connections_total", lbl("app", "api"), 42},
		{"tend_app_connections_total", lbl("app", "worker"), 0},
		{"tend_build_info", lbl("version", tend.Version), 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s%v", tt.name, tt.labels), func(t *testing.T) {
			got, ok := series(t, fams, tt.name, tt.labels)
			if !ok {
				t.Fatalf("no series")
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if n := len(fams["tend_instance_cpu_seconds_total"].GetMetric()); n != 3 {
		t.Errorf("tend_instance_cpu_seconds_total: %d series, want one per instance (3)", n)
	}
	// worker has no reload history: no series rather than invented zeros.
	for _, m := range fams["tend_app_reloads_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "app" && l.GetValue() == "worker" {
				t.Errorf("tend_app_reloads_total has a series for worker, which has no reloads")
			}
		}
	}
}

func TestStatusOneHot(t *testing.T) {
	fams := scrape(t, serve(t, twoApps))
	all := []tend.Status{tend.StatusLaunching, tend.StatusOnline, tend.StatusStopping,
		tend.StatusStopped, tend.StatusErrored, tend.StatusWaiting}
	for _, in := range twoApps.instances {
		t.Run(fmt.Sprintf("%s[%d]", in.Name, in.Instance.Instance), func(t *testing.T) {
			for _, s := range all {
				got, ok := series(t, fams, "tend_instance_status", inst(in.Name, in.Instance.Instance, in.ID, "status", string(s)))
				if !ok {
					t.Errorf("status %s: no series", s)
					continue
				}
				if want := bool01(s == in.Status); got != want {
					t.Errorf("status %s: %v, want %v", s, got, want)
				}
			}
		})
	}
	if n, want := len(fams["tend_instance_status"].GetMetric()), len(all)*len(twoApps.instances); n != want {
		t.Errorf("tend_instance_status: %d series, want %d", n, want)
	}
}

func TestLastExitOnlyWhenSet(t *testing.T) {
	fams := scrape(t, serve(t, twoApps))
	for _, m := range fams["tend_instance_last_exit_code"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "app" && l.GetValue() == "worker" {
				t.Errorf("worker never exited but has a last exit series: %v", m)
			}
		}
	}
	if n := len(fams["tend_instance_last_exit_code"].GetMetric()); n != 2 {
		t.Errorf("tend_instance_last_exit_code: %d series, want 2", n)
	}

	// With no exit at all, the family is absent.
	fams = scrape(t, serve(t, fakeSource{instances: twoApps.instances[2:]}))
	if _, ok := fams["tend_instance_last_exit_code"]; ok {
		t.Errorf("tend_instance_last_exit_code present with no exits")
	}
}

// A label value that is not valid UTF-8 costs its own series, not the
// scrape, and does not panic.
func TestInvalidLabelValue(t *testing.T) {
	src := fakeSource{
		instances: append([]InstanceStats{{Instance: tend.Instance{ID: 9, Name: "bad\xff", Status: tend.StatusOnline}}},
			twoApps.instances...),
		apps: twoApps.apps,
	}
	base := serve(t, src)
	fams := scrape(t, base)
	if _, ok := series(t, fams, "tend_instance_restarts_total", inst("api", 1, 1)); !ok {
		t.Errorf("good series lost along with the bad one")
	}
	if n := len(fams["tend_instance_restarts_total"].GetMetric()); n != 3 {
		t.Errorf("tend_instance_restarts_total: %d series, want the 3 good ones", n)
	}
	// The handler counts an error after it gathered, so the next scrape
	// shows the first one's.
	fams = scrape(t, base)
	if v, _ := series(t, fams, "promhttp_metric_handler_errors_total", lbl("cause", "gathering")); v == 0 {
		t.Errorf("promhttp_metric_handler_errors_total{cause=\"gathering\"} = 0; the bad series was not counted")
	}
}

func TestPaths(t *testing.T) {
	base := serve(t, twoApps)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/", http.StatusNotFound},
		{"GET", "/metrics/", http.StatusNotFound},
		{"GET", "/debug/pprof/", http.StatusNotFound},
		{"GET", "/metrics", http.StatusOK},
		{"HEAD", "/metrics", http.StatusOK},
		{"POST", "/metrics", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestListenAddress(t *testing.T) {
	tests := []struct {
		addr string
		want net.IP
	}{
		{":0", net.IPv4(127, 0, 0, 1)}, // no host: loopback, never every interface
		{"127.0.0.1:0", net.IPv4(127, 0, 0, 1)},
		{"0.0.0.0:0", net.IPv4zero}, // the user asked for every interface (Go binds [::], dual-stack)
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ln, err := Listen(tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := ln.Addr().(*net.TCPAddr)
			if !got.IP.Equal(tt.want) && !(tt.want.IsUnspecified() && got.IP.IsUnspecified()) {
				t.Errorf("Listen(%q) bound %v, want %v", tt.addr, got, tt.want)
			}
			if got.Port == 0 {
				t.Errorf("Listen(%q) bound port 0", tt.addr)
			}
		})
	}
}

func TestListenPortInUse(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	for _, addr := range []string{ln.Addr().String(), ":" + strconv.Itoa(port)} {
		ln2, err := Listen(addr)
		if err == nil {
			ln2.Close()
			t.Fatalf("Listen(%q) succeeded while %v holds the port", addr, ln.Addr())
		}
		if want := fmt.Sprintf("port %d is already in use", port); !strings.Contains(err.Error(), want) {
			t.Errorf("Listen(%q): %q does not say %q", addr, err, want)
		}
		var te *tend.Error
		if !errors.As(err, &te) || te.Code != tend.ECONFLICT {
			t.Errorf("Listen(%q): %v is not a tend.ECONFLICT", addr, err)
		}
	}
}

func TestListenInvalid(t *testing.T) {
	for _, addr := range []string{"9615", "127.0.0.1:http", ":70000", ":-1", ""} {
		t.Run(addr, func(t *testing.T) {
			ln, err := Listen(addr)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) succeeded", addr)
			}
			var te *tend.Error
			if !errors.As(err, &te) || te.Code != tend.EINVALID {
				t.Errorf("Listen(%q): %v is not a tend.EINVALID", addr, err)
			}
		})
	}
}

// Serve returns nil once its listener is closed, even with a scraper's
// kept-alive connection still open.
func TestServeReturnsOnClose(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ln, twoApps) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v, want nil after Close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its listener was closed")
	}
}
