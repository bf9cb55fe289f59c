package cli_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/procexec"
	"github.com/tendhq/tend/internal/testport"
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
		"pid":     `"pid" is PM2's: with tend, tend ls --json`,
		"stopall": "tend stop all",
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

// TestOwnPortReload: an app that listens on its port itself (fork mode:
// tend holds no port for it) gets its new process on reload and on a
// watched change, Node or Python: the old process stops first, with a
// warning that names --port. A Node app given -i 1 runs as a cluster and
// reloads without downtime, so without the warning.
func TestOwnPortReload(t *testing.T) {
	h := newHarness(t)
	script := filepath.Join(repoRoot(t), "internal", "cli", "testdata", "ownport.js")
	serves := func(port int, want func(pid int) bool) {
		t.Helper()
		h.poll(fmt.Sprintf("port %d served by the instance", port), func() bool {
			pid, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			return err == nil && want(pid)
		})
	}
	pidOf := func(app string) int {
		for _, in := range h.ls() {
			if in.Name == app {
				return in.PID
			}
		}
		t.Fatalf("no app %s", app)
		return 0
	}
	reload := func(app string, port int, warned bool, hint string) {
		t.Helper()
		old := pidOf(app)
		_, errOut, code := h.run("reload", app)
		warning := strings.Contains(errOut, "warning: "+app+" listens on port "+strconv.Itoa(port)+" itself") &&
			strings.Contains(errOut, hint) && strings.Contains(errOut, "stopped first")
		if code != 0 || warning != warned {
			t.Errorf("tend reload %s: exit %d, warning %v (want %v):\n%s", app, code, warning, warned, errOut)
		}
		if pidOf(app) == old {
			t.Errorf("tend reload %s: still pid %d", app, old)
		}
	}

	port := testport.Free(t)
	h.ok("start", script, "--name", "node", "--env", "OWN_PORT="+strconv.Itoa(port))
	serves(port, func(pid int) bool { return pid == pidOf("node") })
	reload("node", port, true, "start it with -i 1 or --port "+strconv.Itoa(port))
	serves(port, func(pid int) bool { return pid == pidOf("node") })

	// Python's own server, as Debian ships it.
	pyPort := testport.Free(t)
	h.ok("start", "/usr/bin/python3", "--name", "py", "--", "-m", "http.server", "--bind", "127.0.0.1", strconv.Itoa(pyPort))
	h.poll("python's server", func() bool { return listenPort(pidOf("py")) == pyPort })
	reload("py", pyPort, true, "--port "+strconv.Itoa(pyPort)+" --exec-mode proxy with the app listening on $PORT")
	h.poll("python's new server", func() bool { return listenPort(pidOf("py")) == pyPort })

	// A watched change goes the same way, and says so in tend.log.
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	os.WriteFile(conf, []byte("a"), 0o644)
	wPort := testport.Free(t)
	h.ok("start", script, "--name", "w", "--cwd", dir, "--watch", "--watch-delay", "100ms", "--env", "OWN_PORT="+strconv.Itoa(wPort))
	serves(wPort, func(pid int) bool { return pid == pidOf("w") })
	first := pidOf("w")
	os.WriteFile(conf, []byte("b"), 0o644)
	serves(wPort, func(pid int) bool { return pid != first && pid == pidOf("w") })
	if b, _ := os.ReadFile(filepath.Join(h.home, "tend.log")); !strings.Contains(string(b), "listens on port "+strconv.Itoa(wPort)+" itself") {
		t.Errorf("tend.log does not say why the watched app was down:\n%s", b)
	}

	// -i 1: a Node app is a one-worker cluster, tend holds its port.
	cPort := testport.Free(t)
	h.ok("start", script, "--name", "c", "-i", "1", "--env", "OWN_PORT="+strconv.Itoa(cPort))
	for _, in := range h.ls() {
		if in.Name == "c" && in.Mode != tend.ModeCluster {
			t.Errorf("-i 1 runs the Node app in %s mode, want cluster", in.Mode)
		}
	}
	serves(cPort, func(pid int) bool { return pid == pidOf("c") })
	reload("c", cPort, false, "")
	serves(cPort, func(pid int) bool { return pid == pidOf("c") })
}

// listenPort is the TCP port pid listens on itself, 0 for none.
func listenPort(pid int) int {
	if ports := procexec.ListenPorts([]int{pid}); len(ports) > 0 {
		return ports[0]
	}
	return 0
}
