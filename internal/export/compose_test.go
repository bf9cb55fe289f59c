package export

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeLoad loads a compose export with compose-go's loader, which
// validates it against the compose specification's schema and
// interpolates $VARIABLES from env.
func composeLoad(t *testing.T, out string, env map[string]string) *types.Project {
	t.Helper()
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  t.TempDir(),
		ConfigFiles: []types.ConfigFile{{Filename: "compose.yaml", Content: []byte(out)}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("tend-test", true) })
	if err != nil {
		t.Fatalf("compose-go refuses the export: %v\n%s", err, out)
	}
	return p
}

// Every export is a valid compose file, and says what the apps of
// testdata/every.yaml ask for; a $ in a value reaches the app as
// written, whatever the environment of compose.
func TestComposeFile(t *testing.T) {
	for _, file := range goldenFiles(t) {
		out, _ := exportFile(t, "compose", file, testOptions(file))
		composeLoad(t, out, nil)
	}
	file := filepath.Join("testdata", "every.yaml")
	out, _ := exportFile(t, "compose", file, testOptions(file))
	p := composeLoad(t, out, map[string]string{"HOME": "/home/compose"})
	if names := p.ServiceNames(); !slices.Equal(sorted(names), []string{"api-v2", "proxied", "worker-eu"}) {
		t.Fatalf("services %q", names)
	}
	api := p.Services["api-v2"]
	if !slices.Equal(api.Command, types.ShellCommand{"tend", "run", "every.yaml", "--only", "API_v2"}) {
		t.Errorf("command %q", api.Command)
	}
	if g := api.Environment["GREETING"]; g == nil || *g != `say "hi" at 100% $HOME $(HOME)` {
		t.Errorf("GREETING %v: compose interpolated the app's value", g)
	}
	if len(api.Ports) != 1 || api.Ports[0].Target != 8080 || api.Ports[0].Published != "8080" {
		t.Errorf("ports %+v", api.Ports)
	}
	if api.StopGracePeriod == nil || time.Duration(*api.StopGracePeriod) != 23*time.Second {
		t.Errorf("stop_grace_period %v, want 23s (kill_timeout and tend run's 3s)", api.StopGracePeriod)
	}
	if api.Restart != "no" {
		t.Errorf("restart %q, want no (autorestart: false)", api.Restart)
	}
	hc := api.HealthCheck
	if hc == nil || !slices.Equal(hc.Test, types.HealthCheckTest{"CMD", "./check", "--port", "8080", "--deep"}) ||
		time.Duration(*hc.Interval) != 1500*time.Millisecond || time.Duration(*hc.Timeout) != time.Second || *hc.Retries != 5 {
		t.Errorf("healthcheck %+v, want liveness_exec's", hc)
	}
	lim := api.Deploy.Resources.Limits
	if lim == nil || lim.NanoCPUs != 3 || int64(lim.MemoryBytes) != 3<<30+64<<20 {
		t.Errorf("limits %+v, want 3 CPUs and 3G+64M", lim)
	}
	proxied := p.Services["proxied"]
	if hc := proxied.HealthCheck; hc == nil || !slices.Equal(hc.Test, types.HealthCheckTest{"CMD", "curl", "-fsS", "-o", "/dev/null", "https://localhost:9100/ready?deep=1"}) {
		t.Errorf("healthcheck %+v, want a curl of ready_url", hc)
	}
	if proxied.Restart != "on-failure" || proxied.Deploy != nil {
		t.Errorf("restart %q, deploy %+v", proxied.Restart, proxied.Deploy)
	}
}

func sorted(l []string) []string {
	l = slices.Clone(l)
	slices.Sort(l)
	return l
}
