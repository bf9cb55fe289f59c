package cli_test

import (
	"debug/elf"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
)

func TestStartListStopRestartDelete(t *testing.T) {
	h := newHarness(t)
	h.env = append(h.env, "FROM_SHELL=shell", "PORT=4000", "FROM_FLAG=shell-loses")
	out := h.ok("start", h.self, "--name", "web", "-i", "2", "--env", "FROM_FLAG=flag", "--increment-var", "PORT", "--", "serve")
	if !strings.Contains(out, "web") || !strings.Contains(out, "online") {
		t.Errorf("start printed no table with web online:\n%s", out)
	}
	insts := h.ls()
	if len(insts) != 2 {
		t.Fatalf("ls: %d instances, want 2", len(insts))
	}
	for i, in := range insts {
		if in.Name != "web" || in.Instance != i || in.Status != tend.StatusOnline || in.PID == 0 || in.ID != i {
			t.Errorf("instance %d = %+v, want web[%d] online with a pid", i, in, i)
		}
	}
	// The shell's environment reaches the app under --env and what tend sets.
	for i := range 2 {
		want := fmt.Sprintf("env app=web instance=%d nai=%d port=%d shell=shell flag=flag", i, i, 4000+i)
		h.awaitLog("web", want)
	}
	logs := h.ok("logs", "web", "--nostream", "--err")
	if !strings.Contains(logs, "web[0] ! ready on stderr") || strings.Contains(logs, "env app") {
		t.Errorf("logs --err should hold only stderr lines, prefixed:\n%s", logs)
	}

	pids := []int{insts[0].PID, insts[1].PID}
	h.ok("stop", "web")
	insts = h.ls()
	if !allStatus(2, tend.StatusStopped)(insts) {
		t.Fatalf("after stop: %+v", insts)
	}
	awaitGone(t, pids...)

	h.ok("restart", "web")
	insts = h.await("restarted", allStatus(2, tend.StatusOnline))
	for _, in := range insts {
		if in.Restarts != 1 {
			t.Errorf("restarts of %d = %d, want 1", in.ID, in.Restarts)
		}
	}
	// One instance by id.
	h.ok("stop", "1")
	insts = h.ls()
	if insts[0].Status != tend.StatusOnline || insts[1].Status != tend.StatusStopped {
		t.Errorf("stop 1 should stop only id 1: %+v", insts)
	}
	desc := h.ok("describe", "web")
	for _, want := range []string{"script path:", "kill timeout:", "web-out-0.log", "FROM_FLAG", "stop "} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}
	if strings.Contains(desc, "FROM_FLAG=flag") {
		t.Errorf("describe shows env values without --env:\n%s", desc)
	}
	if !strings.Contains(h.ok("describe", "web", "--env"), "FROM_FLAG=flag") {
		t.Errorf("describe --env does not show values")
	}
	live := insts[0].PID
	h.ok("delete", "all")
	if insts := h.ls(); len(insts) != 0 {
		t.Errorf("after delete all: %+v", insts)
	}
	awaitGone(t, live)
}

func TestBadInput(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("not a program"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing script", []string{"start", "./nope.js"}, 3, "script ./nope.js not found"},
		{"not executable", []string{"start", plain}, 2, "is not executable"},
		{"interpreter not on PATH", []string{"start", h.self, "--interpreter", "no-such-interp"}, 3, "interpreter no-such-interp is not on PATH"},
		{"bad instances", []string{"start", h.self, "-i", "lots"}, 2, "--instances"},
		{"unknown flag", []string{"start", h.self, "--instancez", "2"}, 2, "unknown flag: --instancez"},
		{"negative timeout", []string{"start", h.self, "--kill-timeout", "-5"}, 2, "negative"},
		{"bad signal", []string{"start", h.self, "--kill-signal", "SIGNOPE"}, 2, "kill-signal"},
		{"unknown target", []string{"stop", "nosuch"}, 3, `no app, instance id or namespace matches "nosuch"`},
		{"unknown id", []string{"restart", "42"}, 3, `matches "42"`},
		{"missing target", []string{"stop"}, 2, "usage: tend stop"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"missing cwd", []string{"start", h.self, "--cwd", "/no/such/dir"}, 3, "working directory /no/such/dir does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			errOut := h.fail(tc.code, tc.args...)
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tc.want)
			}
			if insts := h.ls(); len(insts) != 0 {
				t.Errorf("bad input registered something: %+v", insts)
			}
		})
	}
}

func TestNameInUse(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "api", "--", "serve")
	first := h.ls()[0].PID
	errOut := h.fail(1, "start", h.self, "--name", "api", "--", "serve")
	if !strings.Contains(errOut, `an app named "api" already exists`) || !strings.Contains(errOut, "--force") {
		t.Errorf("conflict message = %q", errOut)
	}
	h.ok("start", h.self, "--name", "api", "-i", "2", "--force", "--", "serve")
	insts := h.ls()
	if len(insts) != 2 || insts[0].PID == first {
		t.Errorf("--force should replace api with 2 new instances: %+v", insts)
	}
	awaitGone(t, first)
}

func TestCrashLoopBacksOffThenErrors(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "bad", "--max-restarts", "5", "--exp-backoff-restart-delay", "200ms", "--", "crash")
	sawWaiting, sawTable := false, false
	insts := h.await("errored", func(insts []tend.Instance) bool {
		if len(insts) == 1 && insts[0].Status == tend.StatusWaiting && insts[0].NextRestartMS > 0 {
			sawWaiting = true
		}
		// The daemon answers while the app crash-loops, and the table
		// shows the time left before the next restart.
		h.ok("ping")
		if regexp.MustCompile(`waiting \d+m?s`).MatchString(h.ok("ls")) {
			sawTable = true
		}
		return len(insts) == 1 && insts[0].Status == tend.StatusErrored
	})
	if !sawWaiting || !sawTable {
		t.Errorf("never saw the instance waiting for its restart (json %v, table %v)", sawWaiting, sawTable)
	}
	if insts[0].Restarts != 4 {
		t.Errorf("restarts = %d, want 4 (5 unstable exits)", insts[0].Restarts)
	}
	if insts[0].LastExit == nil || insts[0].LastExit.Code != 3 || insts[0].LastExit.Cause != "crash" {
		t.Errorf("last exit = %+v, want a crash with code 3", insts[0].LastExit)
	}
	if !strings.Contains(insts[0].Problem, "not restarting") {
		t.Errorf("problem = %q", insts[0].Problem)
	}
	if !strings.Contains(h.ok("logs", "bad", "--nostream"), "crashing") {
		t.Error("the crash's stderr is not in the logs")
	}
	// A restart clears the errored state and tries again.
	h.ok("restart", "bad")
	if got := h.ls()[0]; got.Status == tend.StatusErrored {
		t.Errorf("after restart still errored: %+v", got)
	}
}

func TestStopExitCodesAndNoAutorestart(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "a", "--stop-exit-codes", "3", "--", "crash")
	h.ok("start", h.self, "--name", "b", "--no-autorestart", "--", "crash")
	insts := h.await("both stopped", allStatus(2, tend.StatusStopped))
	for _, in := range insts {
		if in.Restarts != 0 || in.LastExit == nil || in.LastExit.Code != 3 {
			t.Errorf("%s: %+v, want stopped after one exit with code 3", in.Name, in)
		}
	}
}

func TestKillTimeout(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "stubborn", "--kill-timeout", "300ms", "--", "stubborn")
	h.awaitLog("stubborn", "ignoring")
	pid := h.ls()[0].PID
	h.ok("stop", "stubborn")
	if alive(pid) {
		t.Errorf("pid %d survived stop", pid)
	}
	in := h.ls()[0]
	if in.LastExit == nil || in.LastExit.Signal != "SIGKILL" {
		t.Errorf("last exit = %+v, want SIGKILL", in.LastExit)
	}
	if !strings.Contains(in.Problem, "kill_timeout") {
		t.Errorf("problem = %q, want it to mention kill_timeout", in.Problem)
	}
}

func TestNoOrphans(t *testing.T) {
	for _, how := range []string{"stop", "delete", "kill"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t)
			h.ok("start", h.self, "--name", "fam", "--kill-timeout", "2s", "--", "family")
			logs := h.awaitLog("fam", "family ")
			m := regexp.MustCompile(`family (\d+) (\d+)`).FindStringSubmatch(logs)
			child, _ := strconv.Atoi(m[1])
			escaped, _ := strconv.Atoi(m[2])
			app := h.ls()[0].PID
			if how == "kill" {
				h.ok("kill")
			} else {
				h.ok(how, "fam")
			}
			awaitGone(t, app, child, escaped)
		})
	}
}

func TestConcurrentCommands(t *testing.T) {
	h := newHarness(t) // no daemon yet: the racing commands must start exactly one
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := range 20 {
		wg.Go(func() {
			var args []string
			switch i % 4 {
			case 0, 1:
				args = []string{"start", h.self, "--name", fmt.Sprintf("app%d", i), "-i", "2", "--", "serve"}
			case 2:
				args = []string{"ls", "--json"}
			case 3:
				args = []string{"ping"}
			}
			if out, errOut, code := h.run(args...); code != 0 {
				errs <- fmt.Sprintf("tend %v: exit %d: %s%s", args, code, out, errOut)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	insts := h.ls()
	if len(insts) != 20 {
		t.Fatalf("%d instances, want 20 (10 apps x 2)", len(insts))
	}
	ids := map[int]bool{}
	perApp := map[string]int{}
	for _, in := range insts {
		if ids[in.ID] {
			t.Errorf("id %d is used twice", in.ID)
		}
		ids[in.ID] = true
		perApp[in.Name]++
	}
	for name, n := range perApp {
		if n != 2 {
			t.Errorf("%s has %d instances, want 2", name, n)
		}
	}
	// Twenty concurrent stops and lists against the running daemon.
	for i := range 20 {
		wg.Go(func() {
			if i%2 == 0 {
				h.run("stop", fmt.Sprintf("app%d", (i/2)*2-(i/2)%2))
			} else {
				h.run("ls")
			}
		})
	}
	wg.Wait()
	for _, in := range h.ls() {
		if in.Status != tend.StatusOnline && in.Status != tend.StatusStopped {
			t.Errorf("%s[%d] is %s after the stops returned", in.Name, in.Instance, in.Status)
		}
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	h := newHarness(t)

	h.ok("ping")
	b, _ := os.ReadFile(filepath.Join(h.home, "tend.log"))
	m := regexp.MustCompile(`pid=(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no daemon pid in the log:\n%s", b)
	}
	old, _ := strconv.Atoi(string(m[1]))
	// A pidfd says when the whole process is gone: /proc shows a killed,
	// multi-threaded process as a zombie while its other threads still hold
	// its files, the listening socket among them.
	fd, err := unix.PidfdOpen(old, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(old, syscall.SIGKILL)
	if n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10_000); n != 1 || err != nil {
		t.Fatalf("the daemon did not exit: %d %v", n, err)
	}
	unix.Close(fd)
	if _, err := os.Stat(filepath.Join(h.home, "tend.sock")); err != nil {
		t.Fatalf("the dead daemon's socket should still be there: %v", err)
	}
	out := h.ok("ping")
	if strings.Contains(out, "pid "+string(m[1])+",") {
		t.Errorf("ping answered by the dead daemon? %s", out)
	}

}

func TestPrivateSocket(t *testing.T) {
	h := newHarness(t)
	h.ok("ping")
	for path, want := range map[string]os.FileMode{h.home: 0o700, filepath.Join(h.home, "tend.sock"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", path, got, want)
		}
	}
	if os.Getuid() != 0 {
		return
	}
	// Another user cannot talk to the daemon.
	cmd := exec.Command(tendBin, "ls")
	cmd.Env = h.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("user nobody ran tend ls against root's daemon:\n%s", out)
	}
}

// The README's build gives one static binary: nothing to install next to
// it, and no libc mapped into the daemon.
func TestStaticBinary(t *testing.T) {
	f, err := elf.Open(tendBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("tend has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("tend needs shared libraries %v (%v)", libs, err)
	}
}

func TestLogsFollowAcrossRestart(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "tick", "--", "ticker")
	first := h.ls()[0].PID
	cmd := exec.Command(tendBin, "logs", "tick", "--lines", "0")
	cmd.Env = h.env
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1000)
	go func() {
		buf := make([]byte, 1<<16)
		var acc string
		for {
			n, err := stdout.Read(buf)
			acc += string(buf[:n])
			for {
				i := strings.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				lines <- acc[:i]
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	waitLine := func(substr string) {
		for l := range lines {
			if strings.Contains(l, substr) {
				return
			}
		}
		t.Fatalf("logs ended before %q", substr)
	}
	waitLine(fmt.Sprintf("pid=%d", first))
	h.ok("restart", "tick")
	second := h.ls()[0].PID
	waitLine(fmt.Sprintf("pid=%d", second))

}

func TestStartExistingByName(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "api", "-i", "2", "--", "serve")
	h.ok("stop", "api")
	h.ok("start", "api") // as with PM2: start the stopped app again
	h.await("online again", allStatus(2, tend.StatusOnline))
	if errOut := h.fail(1, "start", "api"); !strings.Contains(errOut, "already running") {
		t.Errorf("start of a running app: %q", errOut)
	}
}

func TestForceReplaceThatFailsRestoresTheApp(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "api", "-i", "2", "--", "serve")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	errOut := h.fail(1, "start", h.self, "--name", "api", "--force", "--exec-mode", "socket", "--port", port, "--", "serve")
	if !strings.Contains(errOut, "already in use") || !strings.Contains(errOut, "the previous app was restored") {
		t.Errorf("stderr = %q", errOut)
	}
	insts := h.await("api back", allStatus(2, tend.StatusOnline))
	if insts[0].Name != "api" || insts[0].Port != 0 {
		t.Errorf("restored app: %+v", insts[0])
	}
}

func TestSignal(t *testing.T) {
	h := newHarness(t)
	h.ok("start", `sh -c 'trap "echo got usr2" USR2; while :; do sleep 0.05; done'`, "--name", "sh", "-i", "2")
	h.ok("start", h.self, "--name", "idle", "--", "serve")
	h.ok("stop", "idle")
	h.await("sh online", func(in []tend.Instance) bool { return in[0].PID > 0 && in[1].PID > 0 })
	// all: the stopped app is no failure, the running ones get it.
	if _, errOut, code := h.run("signal", "usr2", "all"); code != 0 || !strings.Contains(errOut, "sent SIGUSR2 to 2 instances") {
		t.Errorf("tend signal usr2 all: exit %d, %q", code, errOut)
	}
	h.poll("both instances trapped it", func() bool {
		out := h.ok("logs", "sh", "--nostream")
		return strings.Contains(out, "sh[0] | got usr2") && strings.Contains(out, "sh[1] | got usr2")
	})
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"signal", "SIGNOPE", "sh"}, 2, `unknown signal "SIGNOPE"`},
		{[]string{"signal", "USR2", "nope"}, 3, `"nope"`},
		{[]string{"signal", "USR2", "idle"}, 1, "no running instance among idle"},
		{[]string{"signal", "USR2"}, 2, "usage"},
	} {
		if errOut := h.fail(c.code, c.args...); !strings.Contains(errOut, c.want) {
			t.Errorf("tend %v: %q, want %q", c.args, errOut, c.want)
		}
	}
}

func TestNamespaceTarget(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "api", "--namespace", "shop", "--", "serve")
	h.ok("start", h.self, "--name", "jobs", "--namespace", "shop", "--", "serve")
	h.ok("start", h.self, "--name", "other", "--", "serve")
	h.await("3 online", allStatus(3, tend.StatusOnline))
	h.ok("stop", "shop")
	insts := h.await("shop stopped", func(in []tend.Instance) bool {
		return len(in) == 3 && in[0].Status == tend.StatusStopped && in[1].Status == tend.StatusStopped
	})
	if insts[2].Status != tend.StatusOnline || insts[0].Namespace != "shop" || insts[2].Namespace != "" {
		t.Errorf("after tend stop shop: %+v", insts)
	}
	if out := h.ok("describe", "api"); !strings.Contains(out, "namespace:") {
		t.Errorf("describe does not show the namespace:\n%s", out)
	}
	if errOut := h.fail(2, "delete", ""); !strings.Contains(errOut, "empty target") {
		t.Errorf("an empty target: %q", errOut)
	}
	if errOut := h.fail(2, "start", h.self, "--name", "x", "--namespace", "0", "--", "serve"); !strings.Contains(errOut, `namespace "0"`) {
		t.Errorf("a numeric namespace: %q", errOut)
	}
	// A name is looked up before a namespace.
	h.ok("start", h.self, "--name", "shop", "--", "serve")
	h.ok("delete", "shop")
	if n := len(h.ls()); n != 3 {
		t.Errorf("tend delete shop removed the namespace too: %d instances left", n)
	}
}
