package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendhq/tend"
)

func TestEcosystemFile(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "tend.yaml")
	os.WriteFile(file, []byte(`apps:
  - name: api
    script: `+h.self+`
    args: [serve]
    instances: 2
    env:
      FROM_FLAG: dev
    env_production:
      FROM_FLAG: prod
    kill_timeout: 2s
  - name: worker
    script: `+h.self+`
    args: serve
    increment_var: PORT
    env:
      PORT: "7000"
`), 0o644)
	h.ok("start", file, "--env", "production")
	insts := h.await("3 online", allStatus(3, tend.StatusOnline))
	if insts[0].Name != "api" || insts[2].Name != "worker" {
		t.Errorf("apps: %+v", insts)
	}
	h.awaitLog("api", "flag=prod")
	h.awaitLog("worker", "port=7000")
	if !strings.Contains(h.ok("describe", "api"), "2s") {
		t.Error("describe api does not show kill_timeout 2s")
	}
	h.ok("stop", file)
	h.await("stopped", allStatus(3, tend.StatusStopped))
	h.ok("delete", file)
	if insts := h.ls(); len(insts) != 0 {
		t.Errorf("delete file left %+v", insts)
	}
}

func TestBadConfigStartsNothing(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file, body, want string
	}{
		{"syntax error", "tend.yaml", "apps:\n  - name: a\n    script: [x\n", "tend.yaml:4:1: syntax error"},
		{"unknown key", "tend.yaml", "apps:\n  - name: a\n    script: x.js\n    instancez: 2\n", `tend.yaml:4:5: unknown key "instancez" in app "a" (did you mean "instances"?)`},
		{"wrong type", "tend.yaml", "apps:\n  - name: a\n    script: x.js\n    instances: lots\n", `tend.yaml:4:16: instances: "lots" is not a number`},
		{"negative timeout", "app.json", "{\"apps\": [{\"name\": \"a\", \"script\": \"x.js\", \"kill_timeout\": -5}]}", "app.json:1:"},
		{"second app bad", "tend.yaml", "apps:\n  - name: good\n    script: " + h.self + "\n  - name: bad\n    script: ./missing.js\n", "script ./missing.js not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			path := filepath.Join(dir, tc.file)
			os.WriteFile(path, []byte(tc.body), 0o644)
			_, errOut, code := h.run("start", path)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want non-zero and %q", code, errOut, tc.want)
			}
			if strings.Contains(tc.name, "negative") && !strings.Contains(errOut, "kill_timeout") {
				t.Errorf("stderr %q does not name the key", errOut)
			}
			if insts := h.ls(); len(insts) != 0 {
				t.Errorf("a bad config started %+v", insts)
			}
		})
	}
}
