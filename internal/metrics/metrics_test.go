package metrics

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
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

// scrape fetches /metrics and parses the text format.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	if ct, want := resp.Header.Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8"; ct != want {
		t.Errorf("Content-Type %q, want %q", ct, want)
	}
	return parse(t, string(body))
}

// parse parses the text format with Prometheus's own parser, and checks
// what that parser lets pass: each family's lines come together.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, text)
	}
	seen := map[string]bool{}
	last := ""
	for line := range strings.Lines(text) {
		var name string
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			f := strings.Fields(rest)
			name = f[1]
		} else {
			name, _, _ = strings.Cut(line, " ")
			name, _, _ = strings.Cut(name, "{")
		}
		if name != last && seen[name] {
			t.Errorf("family %s is split:\n%s", name, text)
		}
		seen[name], last = true, name
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
		// The daemon's own runtime and process, as listed in doc.go.
		"go_gc_cycles_total":                   dto.MetricType_COUNTER,
		"go_gc_gogc_percent":                   dto.MetricType_GAUGE,
		"go_goroutines":                        dto.MetricType_GAUGE,
		"go_memstats_alloc_bytes_total":        dto.MetricType_COUNTER,
		"go_memstats_heap_alloc_bytes":         dto.MetricType_GAUGE,
		"go_memstats_heap_inuse_bytes":         dto.MetricType_GAUGE,
		"go_memstats_next_gc_bytes":            dto.MetricType_GAUGE,
		"go_memstats_sys_bytes":                dto.MetricType_GAUGE,
		"go_threads":                           dto.MetricType_GAUGE,
		"go_info":                              dto.MetricType_GAUGE,
		"process_cpu_seconds_total":            dto.MetricType_COUNTER,
		"process_resident_memory_bytes":        dto.MetricType_GAUGE,
		"process_virtual_memory_bytes":         dto.MetricType_GAUGE,
		"process_start_time_seconds":           dto.MetricType_GAUGE,
		"process_open_fds":                     dto.MetricType_GAUGE,
		"process_max_fds":                      dto.MetricType_GAUGE,
		"promhttp_metric_handler_errors_total": dto.MetricType_COUNTER,
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
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected family %s", name)
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
		tend.StatusStopped, tend.StatusErrored, tend.StatusWaiting, tend.StatusCompleted}
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
	// Every series of the bad instance is counted, in the scrape that
	// dropped it and from then on.
	first, _ := series(t, fams, "promhttp_metric_handler_errors_total", lbl("cause", "gathering"))
	if first == 0 {
		t.Errorf("promhttp_metric_handler_errors_total{cause=\"gathering\"} = 0; the bad series were not counted")
	}
	fams = scrape(t, base)
	if v, _ := series(t, fams, "promhttp_metric_handler_errors_total", lbl("cause", "gathering")); v != 2*first {
		t.Errorf("second scrape: promhttp_metric_handler_errors_total{cause=\"gathering\"} = %v, want %v", v, 2*first)
	}
}

// Label values with the characters the format escapes come back intact
// through Prometheus's parser.
func TestLabelEscaping(t *testing.T) {
	name := "say \"hi\"\\back\nslash"
	src := fakeSource{
		instances: []InstanceStats{{Instance: tend.Instance{ID: 1, Name: name, Status: tend.StatusOnline, Restarts: 4}}},
		apps:      []AppStats{{Name: name, Desired: 1, Reloads: map[string]int{"ok": 1}}},
	}
	fams := scrape(t, serve(t, src))
	if v, ok := series(t, fams, "tend_instance_restarts_total", inst(name, 0, 1)); !ok || v != 4 {
		t.Errorf("tend_instance_restarts_total for %q: %v, %v; want 4", name, v, ok)
	}
	if v, ok := series(t, fams, "tend_app_reloads_total", lbl("app", name, "outcome", "ok")); !ok || v != 1 {
		t.Errorf("tend_app_reloads_total for %q: %v, %v; want 1", name, v, ok)
	}
}

// The writer on its own: HELP escaping, values as the format spells them,
// and no HELP or TYPE for a family without series.
func TestTextWriter(t *testing.T) {
	var b strings.Builder
	w := &textWriter{w: bufio.NewWriter(&b)}
	w.family("empty", "No series.", gauge)
	w.family("f", "Back\\slash and\nnewline.", gauge)
	for _, v := range []float64{0, 1, -1, 52428800, 0.25, 1795309153.27, 1e21, 1.5e-7, math.Inf(1), math.Inf(-1), math.NaN()} {
		w.sample(v, "v", fmt.Sprint(v))
	}
	w.family("bare", "No labels.", counter)
	w.sample(3)
	w.w.Flush()
	want := `# HELP f Back\\slash and\nnewline.
# TYPE f gauge
f{v="0"} 0
f{v="1"} 1
f{v="-1"} -1
f{v="5.24288e+07"} 52428800
f{v="0.25"} 0.25
f{v="1.79530915327e+09"} 1795309153.27
f{v="1e+21"} 1e+21
f{v="1.5e-07"} 1.5e-07
f{v="+Inf"} +Inf
f{v="-Inf"} -Inf
f{v="NaN"} NaN
# HELP bare No labels.
# TYPE bare counter
bare 3
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	fams := parse(t, b.String())
	if got := fams["f"].GetHelp(); got != "Back\\slash and\nnewline." {
		t.Errorf("HELP parsed back as %q", got)
	}
	for _, m := range fams["f"].GetMetric() {
		want, _ := strconv.ParseFloat(m.GetLabel()[0].GetValue(), 64)
		if got := m.GetGauge().GetValue(); got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("%v parsed back as %v", want, got)
		}
	}
}

// Prometheus asks for gzip; curl and the parser above do not.
func TestGzip(t *testing.T) {
	base := serve(t, twoApps)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	tests := []struct {
		acceptEncoding string
		gzip           bool
	}{
		{"", false},
		{"gzip", true},
		{"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"identity", false},
	}
	for _, tt := range tests {
		ae := tt.acceptEncoding
		t.Run(ae, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+"/metrics", nil)
			if ae != "" {
				req.Header.Set("Accept-Encoding", ae)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body io.Reader = resp.Body
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tt.gzip {
				t.Fatalf("Content-Encoding %q for Accept-Encoding %q", resp.Header.Get("Content-Encoding"), ae)
			}
			if tt.gzip {
				if body, err = gzip.NewReader(resp.Body); err != nil {
					t.Fatal(err)
				}
			}
			text, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := series(t, parse(t, string(text)), "tend_app_connections_total", lbl("app", "api")); v != 42 {
				t.Errorf("tend_app_connections_total{app=\"api\"} = %v, want 42", v)
			}
		})
	}
}

// blockingSource holds every Snapshot until release is closed.
type blockingSource struct {
	entered chan struct{}
	release chan struct{}
}

func (b blockingSource) Snapshot() ([]InstanceStats, []AppStats) {
	b.entered <- struct{}{}
	<-b.release
	return twoApps.instances, twoApps.apps
}

// With maxScrapes scrapes stuck in Snapshot, the next one is turned away
// rather than queued, and the stuck ones finish once Snapshot returns.
func TestScrapeLimit(t *testing.T) {
	src := blockingSource{entered: make(chan struct{}, maxScrapes+1), release: make(chan struct{})}
	base := serve(t, src)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	scrapeStatus := func() (int, error) {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	codes := make(chan int, maxScrapes)
	for range maxScrapes {
		go func() {
			code, err := scrapeStatus()
			if err != nil {
				t.Error(err)
			}
			codes <- code
		}()
	}
	for range maxScrapes {
		<-src.entered
	}
	code, err := scrapeStatus()
	close(src.release) // before any Fatal, so that the stuck scrapes end
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable {
		t.Errorf("scrape %d: status %d, want 503", maxScrapes+1, code)
	}
	for range maxScrapes {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("a held scrape got %d, want 200", code)
		}
	}
	if code, err := scrapeStatus(); err != nil || code != http.StatusOK {
		t.Errorf("scrape after the others finished: %d, %v; want 200", code, err)
	}
}

// The daemon's own runtime and process families have plausible values.
func TestSelfMetrics(t *testing.T) {
	fams := scrape(t, serve(t, fakeSource{}))
	val := func(name string, labels ...string) float64 {
		t.Helper()
		v, ok := series(t, fams, name, lbl(labels...))
		if !ok {
			t.Errorf("no %s%v", name, labels)
		}
		return v
	}
	positive := []string{"go_goroutines", "go_threads", "go_memstats_heap_alloc_bytes",
		"go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes", "go_memstats_sys_bytes",
		"go_memstats_alloc_bytes_total", "go_gc_gogc_percent",
		"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds", "process_max_fds"}
	for _, name := range positive {
		if v := val(name); !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if v := val("go_info", "version", runtime.Version()); v != 1 {
		t.Errorf("go_info = %v, want 1", v)
	}
	if v := val("go_memstats_heap_inuse_bytes"); v < val("go_memstats_heap_alloc_bytes") || v > val("go_memstats_sys_bytes") {
		t.Errorf("heap in use %v is not between heap allocated and sys", v)
	}
	if v := val("process_virtual_memory_bytes"); v < val("process_resident_memory_bytes") {
		t.Errorf("virtual memory %v is below resident memory", v)
	}
	if v := val("process_open_fds"); v > val("process_max_fds") {
		t.Errorf("open fds %v above max", v)
	}
	if v := val("process_cpu_seconds_total"); v < 0 || math.IsNaN(v) {
		t.Errorf("process_cpu_seconds_total = %v", v)
	}
	now := float64(time.Now().Unix())
	if v := val("process_start_time_seconds"); v > now+1 || v < now-3600 {
		t.Errorf("process_start_time_seconds = %v, now is %v", v, now)
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
