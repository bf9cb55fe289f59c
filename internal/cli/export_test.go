package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exportFile writes an ecosystem file of two apps for the export tests.
func exportFile(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "shop.yaml")
	err := os.WriteFile(file, []byte(`apps:
  - name: api
    script: ./server.js
    instances: 2
    port: 3000
    cron_restart: "0 3 * * *"
    env: {MODE: dev}
    env_production: {MODE: prod}
  - name: jobs
    script: ./jobs.sh
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// tend export writes each target on stdout and its warnings on stderr,
// picks apps and env blocks as tend run does, and starts no daemon.
func TestExport(t *testing.T) {
	h := newHarness(t)
	file := exportFile(t)

	out, errOut, code := h.run("export", "kubernetes", file, "--image", "shop:1", "--env", "production", "--only", "api")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"kind: Deployment", "kind: Service", "- --env\n        - production\n        - --only\n        - api\n", "value: prod", "cpu: '2'"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "jobs") {
		t.Errorf("--only api exported jobs too:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("warnings for an app that tend runs in full: %s", errOut)
	}

	// Settings only tend applies are named when --command does not run tend.
	_, errOut, code = h.run("export", "compose", file, "--image", "shop:1", "--command", "node server.js")
	if code != 0 || !strings.Contains(errOut, `tend export: app "api": cron_restart is applied by tend, and --command does not run tend; dropped`) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}

	out = h.ok("export", "systemd", file, "--tend", "/opt/tend/bin/tend", "--user", "shop")
	for _, want := range []string{"# tend-jobs.service\n", "ExecStart=/opt/tend/bin/tend run " + file + " --only jobs\n", "User=shop\n",
		`Environment="PATH=` + os.Getenv("PATH") + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the systemd units:\n%s", want, out)
		}
	}
	if out = h.ok("export", "systemd", file); !strings.Contains(out, "ExecStart="+tendBin+" run ") {
		t.Errorf("the units run another tend than this one (%s):\n%s", tendBin, out)
	}
	out = h.ok("export", "kubernetes", file, "--image", "shop:1", "--drain-delay", "0", "--health-port", "9700")
	for _, want := range []string{"terminationGracePeriodSeconds: 8\n", "- --health-addr\n        - '[::]:9700'\n        - --drain-delay\n        - 0s\n", "containerPort: 9700\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("--drain-delay 0 --health-port 9700: no %q (tend run's bound is kill_timeout's 5s + 3s) in:\n%s", want, out)
		}
	}
	// instances: max counts the container's CPUs, as --cpus says.
	maxFile := filepath.Join(t.TempDir(), "max.yaml")
	if err := os.WriteFile(maxFile, []byte("apps:\n  - name: api\n    script: ./server.js\n    instances: max\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = h.ok("export", "compose", maxFile, "--image", "shop:1", "--cpus", "6")
	if !strings.Contains(out, "cpus: '6'") {
		t.Errorf("--cpus 6 with instances: max:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(h.home, "tend.sock")); err == nil {
		t.Error("tend export started a daemon")
	}
}

// Bad input is an error that names the fix, with nothing on stdout.
func TestExportBadInput(t *testing.T) {
	h := newHarness(t)
	file := exportFile(t)
	for _, c := range []struct {
		name string
		code int
		args []string
		want string
	}{
		{"no image", 2, []string{"kubernetes", file}, "--image is required: the image that holds tend and shop.yaml"},
		{"unknown target", 2, []string{"nomad", file}, `unknown target "nomad": kubernetes, compose, systemd`},
		{"no target", 2, nil, "name a target"},
		{"no file", 2, []string{"compose"}, "name one ecosystem file; usage: tend export compose <config file>"},
		{"a script", 2, []string{"compose", "server.js", "--image", "x"}, "server.js is not an ecosystem file"},
		{"missing file", 3, []string{"compose", filepath.Join(t.TempDir(), "none.yaml"), "--image", "x"}, "does not exist"},
		{"unknown app", 3, []string{"systemd", file, "--only", "web"}, "--only web: the file has no app of that name"},
		{"bad drain", 2, []string{"kubernetes", file, "--image", "x", "--drain-delay", "soon"}, "--drain-delay"},
		{"empty command", 2, []string{"kubernetes", file, "--image", "x", "--command", ""}, "--command is empty"},
		{"app on the health port", 2, []string{"kubernetes", file, "--image", "x", "--health-port", "3000"}, `app "api" has port 3000, where tend run serves the pod's probes`},
		{"health port 0", 2, []string{"kubernetes", file, "--image", "x", "--health-port", "0"}, "--health-port 0 is not a port"},
		{"negative cpus", 2, []string{"kubernetes", file, "--image", "x", "--cpus", "-1"}, "--cpus -1 must not be negative"},
		{"image flag for systemd", 2, []string{"systemd", file, "--image", "x"}, "unknown flag: --image"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := h.run(append([]string{"export"}, c.args...)...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, want %d; stderr %q, want %q", code, c.code, errOut, c.want)
			}
			if out != "" {
				t.Errorf("stdout %q on a failure", out)
			}
		})
	}
}
