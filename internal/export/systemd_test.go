package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// units splits a systemd export into its units, by the comment that
// names each.
func units(t *testing.T, out string) map[string]string {
	t.Helper()
	u := map[string]string{}
	var name string
	for line := range strings.Lines(out) {
		if n, ok := strings.CutPrefix(line, "# "); ok && strings.HasSuffix(n, ".service\n") {
			name = strings.TrimSpace(n)
			continue
		}
		if name == "" {
			t.Fatalf("text before the first unit's name: %q", line)
		}
		u[name] += line
	}
	return u
}

// unitKeys reads a unit's Key=Value lines; a key given more than once
// (Environment=) has its values in order.
func unitKeys(unit string) map[string][]string {
	keys := map[string][]string{}
	for line := range strings.Lines(unit) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

// systemd's own checker finds nothing to say of the units: no unknown
// key, no value it cannot parse.
func TestSystemdVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd); TestSystemdUnits still checks the keys")
	}
	self, err := os.Executable() // a program that exists, as ExecStart= needs
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range goldenFiles(t) {
		o := testOptions(file)
		o.Tend = self
		out, _ := exportFile(t, "systemd", file, o)
		dir := t.TempDir()
		var paths []string
		for name, text := range units(t, out) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...)
		b, err := cmd.CombinedOutput()
		if err != nil || len(b) > 0 {
			t.Errorf("systemd-analyze verify on the units of %s: %v\n%s\n%s", file, err, b, out)
		}
	}
}

// The units run tend run for their app, with what the app asks for, and
// quote what the app wrote so that systemd reads it back as written.
func TestSystemdUnits(t *testing.T) {
	file := filepath.Join("testdata", "every.yaml")
	abs, _ := filepath.Abs(file)
	o := testOptions(file)
	o.User, o.Path = "shop", "/opt/node 20/bin:/usr/bin"
	out, _ := exportFile(t, "systemd", file, o)
	u := units(t, out)
	if len(u) != 3 || u["tend-worker-eu.service"] == "" {
		t.Fatalf("units %v", u)
	}
	api := unitKeys(u["tend-API_v2.service"])
	for k, want := range map[string]string{
		"ExecStart":          DefaultTend + " run " + abs + " --only API_v2",
		"WorkingDirectory":   filepath.Dir(abs),
		"Restart":            "no", // autorestart: false
		"KillMode":           "mixed",
		"TimeoutStopSec":     "23", // kill_timeout and tend run's 3s
		"MemoryMax":          "3136M",
		"StateDirectoryMode": "0700",
		"User":               "shop",
	} {
		if got := strings.Join(api[k], " | "); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	env := map[string]string{}
	for _, v := range api["Environment"] {
		if strings.HasPrefix(v, `"`) {
			s, err := strconv.Unquote(v)
			if err != nil {
				t.Fatalf("Environment=%s: %v", v, err)
			}
			v = s
		}
		k, val, _ := strings.Cut(strings.ReplaceAll(v, "%%", "%"), "=")
		env[k] = val
	}
	if env["GREETING"] != `say "hi" at 100% $HOME $(HOME)` || env["PLAIN"] != "1" || env["TEND_HOME"] != "%S/tend-API_v2" || env["PATH"] != o.Path {
		t.Errorf("environment %q", env)
	}
	if r := unitKeys(u["tend-worker-eu.service"])["Restart"]; len(r) != 1 || r[0] != "on-failure" {
		t.Errorf("worker: Restart=%v, want on-failure", r)
	}
}

// A command line with blanks, quotes, $ and % reaches ExecStart= quoted
// and escaped.
func TestExecLine(t *testing.T) {
	got := execLine([]string{"/bin/tend", "run", "my apps.yaml", `say "x"`, "$HOME", "100%"})
	want := `/bin/tend run "my apps.yaml" "say \"x\"" $$HOME 100%%`
	if got != want {
		t.Errorf("execLine = %s, want %s", got, want)
	}
}
