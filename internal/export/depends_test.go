package export

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// depends_on becomes compose's, each container runs its app alone
// (--no-deps), and the targets that cannot order apps say so.
func TestDependsOnExport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tend.yaml")
	os.WriteFile(file, []byte(`apps:
  - name: db
    script: ./db
    ready_url: tcp://127.0.0.1:5432
  - name: cache
    script: ./cache
  - name: migrate
    type: task
    script: ./migrate
    depends_on: {db: ready}
  - name: web
    script: ./web
    depends_on: {migrate: completed, db: ready, cache: ready}
`), 0o644)
	out, warnings := exportFile(t, "compose", file, testOptions(file))
	p := composeLoad(t, out, nil)
	web := p.Services["web"]
	want := types.DependsOnConfig{
		"migrate": {Condition: "service_completed_successfully", Required: true},
		"db":      {Condition: "service_healthy", Required: true},
		"cache":   {Condition: "service_started", Required: true}, // no healthcheck to wait for
	}
	for name, w := range want {
		if got, ok := web.DependsOn[name]; !ok || got.Condition != w.Condition {
			t.Errorf("web depends on %s: %+v, want condition %s", name, got, w.Condition)
		}
	}
	if !slices.Equal(web.Command, types.ShellCommand{"tend", "run", "tend.yaml", "--only", "web", "--no-deps"}) {
		t.Errorf("web's command %q: want --no-deps, its dependencies are other services", web.Command)
	}
	if db := p.Services["db"]; slices.Contains(db.Command, "--no-deps") || len(db.DependsOn) != 0 {
		t.Errorf("db: %q, %v", db.Command, db.DependsOn)
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "ready needs a healthcheck of cache") }) {
		t.Errorf("no warning for cache's missing healthcheck: %q", warnings)
	}
	for _, target := range []string{"kubernetes", "systemd"} {
		_, warnings := exportFile(t, target, file, testOptions(file))
		if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, `app "web": depends_on has no`) }) {
			t.Errorf("%s: no warning that depends_on is dropped: %q", target, warnings)
		}
	}
	if _, warnings := exportFile(t, "kubernetes", file, testOptions(file)); !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "run it as a Job") }) {
		t.Errorf("kubernetes: no warning for the task: %q", warnings)
	}
}
