package cli_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tendhq/tend/internal/testport"
)

func TestMetricsEndpoint(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	h.env = append(h.env, "TEND_METRICS_ADDR=:"+strconv.Itoa(port)) // no host: loopback
	h.ok("start", h.self, "--name", "web", "-i", "2", "--", "serve")
	h.poll("sampled", func() bool { in := h.ls(); return len(in) == 2 && in[0].Memory > 0 })
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tend_instance_cpu_seconds_total", "tend_instance_resident_memory_bytes", "tend_instance_restarts_total",
		"tend_instance_uptime_seconds", "tend_instance_status", "tend_instance_ready", "tend_app_desired_instances",
		"tend_app_online_instances", "go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if f := fams["tend_app_online_instances"]; f != nil && f.Metric[0].GetGauge().GetValue() != 2 {
		t.Errorf("online instances = %v, want 2", f.Metric[0].GetGauge().GetValue())
	}
	if f := fams["tend_instance_resident_memory_bytes"]; f != nil && f.Metric[0].GetGauge().GetValue() <= 0 {
		t.Error("resident memory is 0")
	}
}
