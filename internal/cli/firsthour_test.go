package cli_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
)

// What a PM2 user meets in the first hour.

// TestScaleDown: tend scale api -1 is a count, not a flag.
func TestScaleDown(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "api", "-i", "3", "--", "serve")
	h.ok("scale", "api", "-2")
	if n := len(h.ls()); n != 1 {
		t.Errorf("%d instances after scale api -2, want 1", n)
	}
}

// TestUnknownCommands: PM2's verbs point at tend's way; a typo gets the
// nearest commands on one line.
func TestUnknownCommands(t *testing.T) {
	h := newHarness(t)
	for cmd, want := range map[string]string{
		"jlist":   `"jlist" is PM2's: with tend, tend ls --json`,
		"env":     "tend describe <app|id> --env",
		"monitor": "tend monit",
		"dump":    "tend save",
		"sart":    `unknown command "sart"; did you mean save or start? (tend --help lists the commands)`,
	} {
		errOut := h.fail(2, cmd)
		if !strings.Contains(errOut, want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("tend %s: %q, want one line with %q", cmd, errOut, want)
		}
	}
}

// TestLsTargets: tend ls <app> lists that app; a target that matches
// nothing is an error.
func TestLsTargets(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "api", "-i", "2", "--", "serve")
	h.ok("start", h.self, "--name", "worker", "--", "serve")
	out := h.ok("ls", "api")
	if strings.Contains(out, "worker") || strings.Count(out, "api") != 2 {
		t.Errorf("tend ls api:\n%s", out)
	}
	h.fail(3, "ls", "nope")
}

// TestReloadAffected: a reload, as the dashboard's key runs it, says which
// instances it replaced.
func TestReloadAffected(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "api", "-i", "2", "--listen-timeout", "100ms", "--", "serve")
	res, err := client.New(h.home).Act(context.Background(), "reload", []string{"api"})
	if err != nil || len(res.Affected) != 2 {
		t.Errorf("reload as an action: %+v, %v; want 2 instances affected", res.Affected, err)
	}
}

// TestWatchIgnoresEditorFiles: an editor's temporary files do not count as
// changes, and the log names the file saved.
func TestWatchIgnoresEditorFiles(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "app.conf")
	os.WriteFile(app, []byte("a"), 0o644)
	h.ok("start", h.self, "--name", "w", "--cwd", dir, "--watch", "--watch-delay", "100ms", "--listen-timeout", "100ms", "--", "serve")
	h.await("online", allStatus(1, tend.StatusOnline))
	// The save, and around it what editors write: the last change of the
	// burst must not be what names it.
	os.WriteFile(app, []byte("b"), 0o644)
	for _, f := range []string{".app.conf.swp", "app.conf~", "#app.conf#", "4913"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	log := filepath.Join(h.home, "tend.log")
	h.poll("the watch reload in tend.log", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), "changed: replacing")
	})
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), "w: app.conf changed: replacing") {
		t.Errorf("the watch log does not name app.conf:\n%s", b)
	}
}

// TestPortInUseHint: a port the app asked for itself is not fixed by
// --port; the hint says what is.
func TestPortInUseHint(t *testing.T) {
	h := newHarness(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	h.env = append(h.env, "PORT="+port)
	h.ok("start", bootApp(t), "--name", "b", "-i", "2")
	insts := h.await("the listen failure", func(in []tend.Instance) bool {
		return len(in) == 2 && strings.Contains(in[0].Problem, "in use")
	})
	if p := insts[0].Problem; strings.Contains(p, "--port "+port) || !strings.Contains(p, "have the app listen on another port") {
		t.Errorf("problem %q", p)
	}
}
