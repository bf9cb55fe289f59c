package cli_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tendhq/tend"
)

func TestRunInForeground(t *testing.T) {
	h := newHarness(t)
	r := h.start("run", h.self, "--name", "web", "-i", "2", "--", "serve")
	// Each instance's stdout on stdout and its stderr on stderr, from its
	// first line.
	r.awaitAll(r.lines, "web[0] | env app=web instance=0", "web[1] | env app=web instance=1")
	r.awaitAll(r.errLines, "tend: started web (2 instances)", "web[0] ! ready on stderr", "web[1] ! ready on stderr")

	// The other commands reach the daemon inside tend run.
	h.await("2 online", allStatus(2, tend.StatusOnline))
	if out := h.ok("ping"); !strings.Contains(out, "pid "+strconv.Itoa(r.cmd.Process.Pid)+",") {
		t.Fatalf("tend ping answered %q; want the daemon in tend run (pid %d)", out, r.cmd.Process.Pid)
	}
	// A restart passes through "stopped" but is no reason to exit.
	h.ok("restart", "web")
	insts := h.await("restarted", func(in []tend.Instance) bool {
		return allStatus(2, tend.StatusOnline)(in) && in[0].Restarts == 1 && in[1].Restarts == 1
	})
	// Lines of instances that start later arrive too.
	h.ok("scale", "web", "3")
	r.await(r.lines, "web[2] | env app=web instance=2")

	// SIGTERM stops every app gracefully, prints their last words, exits 0.
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.awaitAll(r.lines, "web[0] | stopping", "web[1] | stopping", "web[2] | stopping")
	if code := r.wait(); code != 0 {
		t.Fatalf("tend run exited %d after SIGTERM, want 0", code)
	}
	for l := range r.errLines {
		if strings.Contains(l, "no instance runs") {
			t.Errorf("tend run ended on its own (%q) before SIGTERM", l)
		}
	}
	for _, in := range insts {
		awaitGone(t, in.PID)
	}
	if _, err := os.Stat(filepath.Join(h.home, "tend.sock")); !os.IsNotExist(err) {
		t.Errorf("the control socket is still there after tend run ended: %v", err)
	}
}

func TestRunExitsWhenNothingRuns(t *testing.T) {
	for _, c := range []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"done", []string{"--no-autorestart", "--", "hello"}, 0, "app[0] | hello from", "tend: no instance runs any more"},
		{"crashed", []string{"--no-autorestart", "--", "crash"}, 1, "", "failed: app[0] exited with code 3"},
		{"errored", []string{"--max-restarts", "2", "--", "crash"}, 1, "", "failed: app[0] errored"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.start(append([]string{"run", h.self, "--name", "app"}, c.args...)...)
			if c.out != "" {
				r.await(r.lines, c.out)
			}
			r.await(r.errLines, c.err)
			if code := r.wait(); code != c.code {
				t.Fatalf("tend run exited %d, want %d", code, c.code)
			}
		})
	}

	t.Run("stopped from outside", func(t *testing.T) {
		h := newHarness(t)
		r := h.start("run", h.self, "--name", "web", "--", "serve")
		r.await(r.errLines, "tend: started web")
		h.await("online", allStatus(1, tend.StatusOnline))
		h.ok("stop", "web")
		r.await(r.errLines, "tend: no instance runs any more")
		if code := r.wait(); code != 0 {
			t.Fatalf("tend run exited %d, want 0", code)
		}
	})

	t.Run("no-auto-exit", func(t *testing.T) {
		h := newHarness(t)
		r := h.start("run", h.self, "--name", "web", "--no-auto-exit", "--", "serve")
		r.await(r.errLines, "tend: started web")
		h.await("online", allStatus(1, tend.StatusOnline))
		h.ok("stop", "web")
		h.ok("start", "web")
		h.await("online again", allStatus(1, tend.StatusOnline))
		r.cmd.Process.Signal(syscall.SIGINT)
		if code := r.wait(); code != 0 {
			t.Fatalf("tend run exited %d, want 0", code)
		}
		for l := range r.errLines {
			if strings.Contains(l, "no instance runs") {
				t.Errorf("tend run --no-auto-exit ended on its own: %q", l)
			}
		}
	})
}

func TestRunBadInput(t *testing.T) {
	h := newHarness(t)
	socket := filepath.Join(h.home, "tend.sock")
	if errOut := h.fail(3, "run", "no-such-app.js"); !strings.Contains(errOut, "no-such-app.js") {
		t.Errorf("a missing script: %q", errOut)
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("tend run left its daemon behind after a failed start: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if errOut := h.fail(1, "run", h.self, "--exec-mode", "socket", "--port", port, "--", "activated"); !strings.Contains(errOut, "port "+port+" is already in use") {
		t.Errorf("a port in use: %q", errOut)
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("tend run left its daemon behind after a failed start: %v", err)
	}
	if errOut := h.fail(2, "run", h.self, "--raw", "--json", "--", "serve"); !strings.Contains(errOut, "--raw and --json") {
		t.Errorf("--raw with --json: %q", errOut)
	}
	if errOut := h.fail(2, "run", h.self, "--instancez", "2"); !strings.Contains(errOut, "--instancez") {
		t.Errorf("an unknown flag: %q", errOut)
	}

	// A home another daemon serves: that daemon and its apps are left alone.
	h.ok("start", h.self, "--name", "web", "--", "serve")
	errOut := h.fail(1, "run", h.self, "--name", "other", "--", "serve")
	if !strings.Contains(errOut, "TEND_HOME") || !strings.Contains(errOut, h.home) {
		t.Errorf("tend run beside a daemon: %q", errOut)
	}
	h.await("web still online", allStatus(1, tend.StatusOnline))
}

// tend kill from another shell: tend run ends only once every app has
// stopped, and prints their last lines.
func TestRunKilledFromOutside(t *testing.T) {
	h := newHarness(t)
	r := h.start("run", h.self, "--name", "web", "--", "serve")
	r.await(r.errLines, "tend: started web")
	h.ok("start", h.self, "--name", "stub", "--kill-timeout", "1s", "--", "stubborn")
	insts := h.await("2 online", allStatus(2, tend.StatusOnline))
	if _, errOut, code := h.run("kill"); code != 0 {
		t.Errorf("tend kill from another shell exited %d: %q", code, errOut)
	}
	r.await(r.lines, "web[0] | stopping")
	r.wait()
	for _, in := range insts {
		if alive(in.PID) {
			t.Errorf("%s (pid %d) still runs after tend run ended", in.Name, in.PID)
			syscall.Kill(in.PID, syscall.SIGKILL)
		}
	}
}

// SIGTERM while tend run starts its apps: none survives it.
func TestRunSignaledWhileStarting(t *testing.T) {
	for range 3 {
		h := newHarness(t)
		r := h.start("run", h.self, "--name", "web", "-i", "40", "--", "serve")
		h.poll("the daemon listens", func() bool {
			_, err := os.Stat(filepath.Join(h.home, "tend.sock"))
			return err == nil
		})
		r.cmd.Process.Signal(syscall.SIGTERM)
		if code := r.wait(); code != 0 {
			var said []string
			for len(r.errLines) > 0 {
				said = append(said, <-r.errLines)
			}
			t.Errorf("tend run exited %d after SIGTERM; it said:\n%s", code, strings.Join(said, "\n"))
		}
		// Once it has exited, no process of this home may be left.
		for _, pid := range processesWith("TEND_HOME=" + h.home) {
			t.Errorf("pid %d survived tend run", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// processesWith lists the live processes whose environment holds kv.
func processesWith(kv string) []int {
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		b, _ := os.ReadFile("/proc/" + d.Name() + "/environ")
		if slices.Contains(strings.Split(string(b), "\x00"), kv) {
			out = append(out, pid)
		}
	}
	return out
}

// A reader of tend run's output that goes away (tend run | head -1) does
// not take the daemon and its apps down.
func TestRunOutlivesItsReader(t *testing.T) {
	h := newHarness(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tendBin, "run", h.self, "--name", "tick", "--", "ticker")
	cmd.Env, cmd.Stdout = h.env, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.Close() // like head -1
	// Lines keep coming (every 20 ms) and fail to be written; the daemon
	// goes on, and the same process keeps ticking.
	first := h.ls()[0].PID
	h.awaitLog("tick", "tick 5 ")
	if insts := h.ls(); len(insts) != 1 || insts[0].PID != first || insts[0].Status != tend.StatusOnline {
		t.Fatalf("after the reader left: %+v", insts)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Errorf("tend run ended with %v after SIGTERM, want exit 0", err)
	}
}
