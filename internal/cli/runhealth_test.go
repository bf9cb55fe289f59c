package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/testport"
)

// probe is one answer of a health endpoint.
type probe struct {
	code int
	OK   bool   `json:"ok"`
	Why  string `json:"reason"`
	Apps []struct {
		Name  string `json:"name"`
		Ready int    `json:"ready"`
	} `json:"apps"`
}

// probeGet asks a health endpoint; code 0 when nothing answers.
func probeGet(t *testing.T, url string) probe {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return probe{}
	}
	defer resp.Body.Close()
	var p probe
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("GET %s: %d, the body is not JSON: %v", url, resp.StatusCode, err)
	}
	p.code = resp.StatusCode
	return p
}

// awaitProbe waits until url answers with code.
func (h *harness) awaitProbe(url string, code int) probe {
	h.t.Helper()
	var p probe
	h.poll(url+" answering "+strconv.Itoa(code), func() bool {
		p = probeGet(h.t, url)
		return p.code == code
	})
	return p
}

// tend run as a pod's PID 1, in a pid namespace of its own: the probes
// answer; SIGTERM fails /readyz while every instance still serves, the
// apps stop after the drain delay and within the bound, orphans are
// reaped, and it exits 0.
func TestRunAsPodPID1(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("unshare --pid needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare here")
	}
	h := newHarness(t)
	hp, port := testport.Free(t), testport.Free(t)
	health := "http://127.0.0.1:" + strconv.Itoa(hp)
	// The drain delay is the window in which the checks below must run:
	// wide enough for a loaded machine.
	const drain, kill = 5 * time.Second, 2 * time.Second
	r := h.startCmd("unshare", "--pid", "--mount-proc", "--kill-child", tendBin, "run", h.self, "--name", "web", "-i", "2",
		"--exec-mode", "socket", "--port", strconv.Itoa(port), "--kill-timeout", kill.String(),
		"--health-addr", "127.0.0.1:"+strconv.Itoa(hp), "--drain-delay", drain.String(), "--", "activated")
	r.await(r.errLines, "tend: started web")
	if out := h.ok("ping"); !strings.Contains(out, "pid 1,") {
		t.Fatalf("tend ping answered %q; want the daemon as pid 1", out)
	}
	h.awaitProbe(health+"/readyz", 200)
	for _, path := range []string{"/livez", "/startupz"} {
		if p := probeGet(t, health+path); p.code != 200 || !p.OK {
			t.Errorf("%s: %d %+v, want 200 once every instance is ready", path, p.code, p)
		}
	}
	if resp, err := http.Get(health + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Errorf("another path: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	tendPID := childOf(t, r.cmd.Process.Pid)

	// An orphan reparented to tend (PID 1) is reaped once it exits.
	exit := filepath.Join(h.home, "orphan-exit")
	h.ok("start", h.self, "--name", "orph", "--env", "ORPHAN_EXIT="+exit, "--", "orphan")
	h.poll("the orphan reparented to tend", func() bool { return hasChild(tendPID, "orphaned") })
	if err := os.WriteFile(exit, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.poll("the orphan reaped", func() bool { return !hasChild(tendPID, "orphaned") && !hasChild(tendPID, "") })
	h.awaitProbe(health+"/readyz", 200) // orph too is ready

	signaled := time.Now()
	syscall.Kill(tendPID, syscall.SIGTERM)
	p := h.awaitProbe(health+"/readyz", 503)
	if !strings.Contains(p.Why, "stopping") {
		t.Errorf("/readyz after SIGTERM says %q, want that tend is stopping", p.Why)
	}
	// Readiness is withdrawn first: the instances still serve.
	for range 2 {
		if body := httpGet(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/"); !strings.HasPrefix(body, "pid ") {
			t.Fatalf("the app answered %q while /readyz was already 503", body)
		}
	}
	if p := probeGet(t, health+"/livez"); p.code != 200 {
		t.Errorf("/livez while draining: %d %q, want 200 (draining is no failure)", p.code, p.Why)
	}
	for _, l := range pending(r.lines) {
		if strings.Contains(l, "stopping") {
			t.Fatalf("an instance stopped (%q) before /readyz failed and the app answered", l)
		}
	}
	if since := time.Since(signaled); since >= drain {
		t.Logf("the machine is slow: the checks above took %s, the whole drain delay", since)
	}
	r.awaitAll(r.lines, "web[0] | stopping", "web[1] | stopping")
	if code := r.wait(); code != 0 {
		t.Fatalf("tend run exited %d after SIGTERM, want 0", code)
	}
	took := time.Since(signaled)
	if bound := drain + kill + 3*time.Second; took < drain || took > bound {
		t.Errorf("tend run took %s to stop; want at least the drain delay %s and at most %s", took, drain, bound)
	}
}

// pending returns the lines of ch read so far, without waiting.
func pending(ch chan string) []string {
	var out []string
	for {
		select {
		case l := <-ch:
			out = append(out, l)
		default:
			return out
		}
	}
}

// childOf is the pid of the one child of pid (unshare's: tend, PID 1 of
// its namespace).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		t.Fatalf("unshare (pid %d) has children %q, want one", pid, f)
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// hasChild reports whether a child of pid runs the fake app named app;
// with app "", whether one is a zombie (an orphan that exited and was not
// reaped: its command line is gone).
func hasChild(pid int, app string) bool {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		for _, c := range strings.Fields(string(b)) {
			cmd, _ := os.ReadFile("/proc/" + c + "/cmdline")
			if app == "" && isZombie(c) || app != "" && strings.HasSuffix(string(cmd), "\x00"+app+"\x00") {
				return true
			}
		}
	}
	return false
}

func isZombie(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return err == nil && i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A crash-looping app fails /readyz; with --errored-fails-livez, once
// tend gives up on it, /livez too.
func TestRunProbesCrashLoop(t *testing.T) {
	for _, c := range []struct {
		name      string
		flags     []string
		livezCode int
	}{
		{"default", nil, 200},
		{"errored fails livez", []string{"--errored-fails-livez"}, 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			hp := testport.Free(t)
			health := "http://127.0.0.1:" + strconv.Itoa(hp)
			args := []string{"run", h.self, "--name", "boom", "--max-restarts", "3", "--restart-delay", "300ms", "--no-auto-exit",
				"--health-addr", "127.0.0.1:" + strconv.Itoa(hp)}
			r := h.start(append(append(args, c.flags...), "--", "crash")...)
			r.await(r.errLines, "tend: started boom")
			h.await("boom waiting to restart", func(in []tend.Instance) bool {
				return len(in) == 1 && in[0].Status == tend.StatusWaiting
			})
			if p := probeGet(t, health+"/readyz"); p.code != 503 || !strings.Contains(p.Why, "boom: 0 of 1 instances ready") {
				t.Errorf("/readyz while boom crash-loops: %d %q", p.code, p.Why)
			}
			if p := probeGet(t, health+"/livez"); p.code != 200 {
				t.Errorf("/livez while boom restarts: %d %q, want 200 (tend still heals it)", p.code, p.Why)
			}
			if p := probeGet(t, health+"/startupz"); p.code != 503 {
				t.Errorf("/startupz before anything was ready: %d", p.code)
			}
			h.await("boom errored", allStatus(1, tend.StatusErrored))
			if p := probeGet(t, health+"/readyz"); p.code != 503 || !strings.Contains(p.Why, "1 errored") {
				t.Errorf("/readyz once boom errored: %d %q", p.code, p.Why)
			}
			p := probeGet(t, health+"/livez")
			if p.code != c.livezCode {
				t.Errorf("/livez once boom errored: %d %q, want %d", p.code, p.Why, c.livezCode)
			}
			if p.code == 503 && !strings.Contains(p.Why, "boom[0] is errored") {
				t.Errorf("/livez says %q; want the errored instance named", p.Why)
			}
			// Stopped now (the kubelet, after /livez failed), tend run
			// exits 1: its exit code tells a failing app from a clean stop.
			r.cmd.Process.Signal(syscall.SIGTERM)
			r.await(r.errLines, "stopped while apps were failing: boom[0] errored")
			if code := r.wait(); code != 1 {
				t.Errorf("tend run exited %d after a SIGTERM with boom errored, want 1", code)
			}
		})
	}
}

// Bad probe flags are errors before anything starts.
func TestRunBadHealthFlags(t *testing.T) {
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	for _, c := range []struct {
		flags []string
		code  int
		want  []string
	}{
		{[]string{"--health-addr", taken}, 1, []string{"port " + port + " is already in use", "--health-addr"}},
		{[]string{"--health-addr", "8080"}, 2, []string{`health address "8080" is not host:port`}},
		{[]string{"--health-addr", "127.0.0.1:99999"}, 2, []string{"not a number from 0 to 65535"}},
		{[]string{"--drain-delay", "soon"}, 2, []string{`--drain-delay "soon": "soon" is not a duration`}},
		{[]string{"--drain-delay", "-1s"}, 2, []string{`--drain-delay "-1s": -1s must not be negative`}},
		{[]string{"--ready-min", "0%"}, 2, []string{`--ready-min "0%" is not a percentage`}},
		{[]string{"--ready-min", "half"}, 2, []string{`--ready-min "half"`}},
	} {
		args := append(append([]string{"run", h.self, "--name", "web"}, c.flags...), "--", "sayexit", "started")
		errOut := h.fail(c.code, args...)
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: %q, want it to say %q", c.flags, errOut, w)
			}
		}
		if _, err := os.Stat(filepath.Join(h.home, "tend.sock")); !os.IsNotExist(err) {
			t.Errorf("%v: tend run left its daemon behind: %v", c.flags, err)
		}
		if entries, _ := os.ReadDir(filepath.Join(h.home, "logs")); len(entries) > 0 {
			t.Errorf("%v: an app started: %s has %d files", c.flags, filepath.Join(h.home, "logs"), len(entries))
		}
	}
}

// tend run writes no log files unless asked: its apps' lines go to its
// stdout and stderr.
func TestRunLogFilesOptIn(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags []string
		files bool
	}{{"default", nil, false}, {"--log-files", []string{"--log-files"}, true}} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			args := append(append([]string{"run", h.self, "--name", "app", "--no-autorestart"}, c.flags...), "--", "hello")
			r := h.start(args...)
			r.await(r.lines, "app[0] | hello from")
			if code := r.wait(); code != 0 {
				t.Fatalf("tend run exited %d", code)
			}
			entries, _ := os.ReadDir(filepath.Join(h.home, "logs"))
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if got := len(names) > 0; got != c.files {
				t.Errorf("log files under %s: %q; want some: %v", filepath.Join(h.home, "logs"), names, c.files)
			}
		})
	}
}

// In a cgroup with a memory limit (a container's), an app that sets no
// max_memory_restart gets 90 % of the limit over every instance, and
// describe says tend chose it. A real v1 memory cgroup, a child of the
// test's own; skipped where none can be made.
func TestRunMemoryDefaultFromCgroup(t *testing.T) {
	b, _ := os.ReadFile("/proc/self/cgroup")
	var own string
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line[strings.IndexByte(line, ':')+1:], "memory:"); ok {
			own = filepath.Join("/sys/fs/cgroup/memory", p)
		}
	}
	if own == "" {
		t.Skip("no v1 memory controller here")
	}
	dir := filepath.Join(own, "tend-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a memory cgroup: %v", err)
	}
	const limit = 1 << 30
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(limit)), 0); err != nil {
		os.Remove(dir)
		t.Skipf("cannot set a memory limit: %v", err)
	}
	h := newHarness(t)
	// The cgroup goes once tend run and its apps have left it (the stop of
	// tend run, a cleanup registered after this one, runs first).
	t.Cleanup(func() { h.poll("the test cgroup empty", func() bool { return os.Remove(dir) == nil }) })
	r := h.startCmd("sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir,
		tendBin, "run", h.self, "--name", "web", "-i", "2", "--", "serve")
	r.await(r.errLines, "tend: started web")
	h.ok("start", h.self, "--name", "capped", "--max-memory-restart", "100M", "--", "serve")
	// 1 GiB over 3 instances, less a tenth: 307 MB.
	if out := h.ok("describe", "web"); !strings.Contains(out, "307M, 90% of the cgroup's memory limit over every instance (chosen)") {
		t.Errorf("describe web does not show the max_memory_restart tend chose:\n%s", out)
	}
	if out := h.ok("describe", "capped"); !strings.Contains(out, "100") || strings.Contains(out, "90%") {
		t.Errorf("describe capped does not show its own max_memory_restart alone:\n%s", out)
	}

}

// An app that cannot stop (frozen by the freezer cgroup, which holds even
// SIGKILL until it thaws) makes tend run give up at the bound: the drain
// delay + the largest kill_timeout + 3 s, then exit 1 saying why.
func TestRunStopOverrunsItsBound(t *testing.T) {
	freezer := "/sys/fs/cgroup/freezer/tend-test-" + strconv.Itoa(os.Getpid())
	if err := os.Mkdir(freezer, 0o755); err != nil {
		t.Skipf("cannot make a freezer cgroup: %v", err)
	}
	h := newHarness(t)
	r := h.start("run", h.self, "--name", "web", "--kill-timeout", "1s", "--", "serve")
	r.await(r.errLines, "tend: started web")
	pid := h.await("online", allStatus(1, tend.StatusOnline))[0].PID
	state := filepath.Join(freezer, "freezer.state")
	t.Cleanup(func() {
		os.WriteFile(state, []byte("THAWED"), 0)
		awaitGone(t, pid)
		h.poll("the freezer cgroup removed", func() bool { return os.Remove(freezer) == nil })
	})
	if err := os.WriteFile(filepath.Join(freezer, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("FROZEN"), 0); err != nil {
		t.Fatal(err)
	}
	h.poll("web frozen", func() bool {
		b, _ := os.ReadFile(state)
		return strings.TrimSpace(string(b)) == "FROZEN"
	})
	signaled := time.Now()
	r.cmd.Process.Signal(syscall.SIGTERM)
	const bound = 1*time.Second + 3*time.Second // no drain delay without --health-addr
	r.await(r.errLines, "not every app stopped within the bound of "+bound.String()+" (the drain delay 0s + the largest kill_timeout of each layer of depends_on 1s + 3s); killed")
	if code := r.wait(); code != 1 {
		t.Errorf("tend run exited %d after overrunning its bound, want 1", code)
	}
	// It SIGKILLs what remains 1 s before the bound, waits for it as long
	// (in vain: a frozen process does not die), and ends at the bound, not
	// before it, and not for ever as the frozen process would hold it; 10 s
	// more for a loaded machine (6.2 s in all under a CPU hog on both cores
	// with the suite running).
	if took := time.Since(signaled); took < bound-time.Second || took > bound+10*time.Second {
		t.Errorf("tend run ended %s after SIGTERM; want it to end at the bound, %s", took, bound)
	}
}

// health_addr in $TEND_HOME/config.yaml serves the probes with the default
// drain delay, 5 s; a second SIGTERM cuts it short. A bad drain_delay
// there is an error naming the file, before anything starts.
func TestRunHealthFromConfigFile(t *testing.T) {
	h := newHarness(t)
	hp := testport.Free(t)
	conf := filepath.Join(h.home, "config.yaml")
	if err := os.WriteFile(conf, []byte("drain_delay: later\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if errOut := h.fail(1, "run", h.self, "--name", "web", "--", "serve"); !strings.Contains(errOut, conf+": drain_delay") {
		t.Errorf("a bad drain_delay: %q", errOut)
	}
	if err := os.WriteFile(conf, []byte("health_addr: 127.0.0.1:"+strconv.Itoa(hp)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.start("run", h.self, "--name", "web", "--", "serve")
	h.awaitProbe("http://127.0.0.1:"+strconv.Itoa(hp)+"/readyz", 200)
	signaled := time.Now()
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.await(r.errLines, "readiness withdrawn; waiting before stopping the apps drain_delay=5s")
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.await(r.errLines, "signal received again: the apps stop now")
	r.await(r.lines, "web[0] | stopping")
	if code := r.wait(); code != 0 {
		t.Fatalf("tend run exited %d, want 0", code)
	}
	if took := time.Since(signaled); took >= 5*time.Second {
		t.Errorf("tend run took %s to stop after a second SIGTERM; the drain delay is 5s", took)
	}
}

// A pod with a task and depends_on: the completed task does not keep
// /readyz failing, and the stop bound allows each layer of dependencies
// its kill_timeout, since the layers stop one after another (two layers
// of apps that ignore SIGINT, killed at their 3 s each, end in 6 s: within
// the bound, exit 0).
func TestRunProbesWithTaskAndOrder(t *testing.T) {
	h := newHarness(t)
	hp := testport.Free(t)
	health := "http://127.0.0.1:" + strconv.Itoa(hp)
	file := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(file, []byte(`apps:
  - name: migrate
    type: task
    script: `+h.self+`
    args: [hello]
  - name: db
    script: `+h.self+`
    args: [stubborn]
    kill_timeout: 3s
  - name: web
    script: `+h.self+`
    args: [stubborn]
    kill_timeout: 3s
    depends_on: {migrate: completed, db: started}
`), 0o644)
	r := h.start("run", file, "--health-addr", "127.0.0.1:"+strconv.Itoa(hp), "--drain-delay", "0")
	if p := h.awaitProbe(health+"/readyz", 200); !p.OK {
		t.Fatalf("/readyz: %+v", p)
	}
	h.await("web online, migrate completed", func(in []tend.Instance) bool {
		return slices.ContainsFunc(in, func(i tend.Instance) bool { return i.Name == "web" && i.Status == tend.StatusOnline }) &&
			slices.ContainsFunc(in, func(i tend.Instance) bool { return i.Name == "migrate" && i.Status == tend.StatusCompleted })
	})
	r.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.wait(); code != 0 {
		t.Errorf("tend run exited %d; it said:\n%s", code, strings.Join(pending(r.errLines), "\n"))
	}
}

// An instance that fails its liveness probe fewer times than its
// threshold stays ready (a blip must not empty a Service); one judged
// unhealthy is not, nor is its replacement until a probe of its own
// passes.
func TestRunReadyzFollowsLiveness(t *testing.T) {
	h := newHarness(t)
	hp := testport.Free(t)
	health := "http://127.0.0.1:" + strconv.Itoa(hp)
	unwell := filepath.Join(t.TempDir(), "unwell")
	r := h.start("run", h.self, "--name", "lv", "--no-auto-exit", "--health-addr", "127.0.0.1:"+strconv.Itoa(hp),
		"--liveness-exec", "test ! -e "+unwell, "--liveness-period", "300ms", "--liveness-failure-threshold", "4", "--", "ticker")
	r.await(r.errLines, "tend: started lv")
	h.await("healthy", healthy(1))
	h.awaitProbe(health+"/readyz", 200)
	pid := h.ls()[0].PID
	if err := os.WriteFile(unwell, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.await("failing", func(insts []tend.Instance) bool { return insts[0].Health == tend.HealthFailing })
	// Judged while the same process is still failing, below the
	// threshold: a probe that raced the threshold proves nothing.
	p := probeGet(t, health+"/readyz")
	if in := h.ls()[0]; in.PID == pid && in.Health == tend.HealthFailing && p.code != 200 {
		t.Errorf("/readyz after a failed probe, below the threshold: %d %q", p.code, p.Why)
	}
	h.await("replaced", func(insts []tend.Instance) bool { return insts[0].PID != pid && insts[0].PID != 0 })
	if p := h.awaitProbe(health+"/readyz", 503); !strings.Contains(p.Why, "lv: 0 of 1 instances ready, 1 needed (1 failing liveness)") {
		t.Errorf("/readyz while lv is replaced for its probe: %q", p.Why)
	}
	os.Remove(unwell)
	h.await("healthy again", healthy(1))
	h.awaitProbe(health+"/readyz", 200)
}

// An app that waits for its dependencies is not failing: a SIGTERM that
// stops tend run before they are met is a clean stop, and exits 0.
func TestRunStoppedWhileWaitingForDependencies(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "tend.yaml")
	body := "apps:\n  - name: gate\n    type: task\n    script: " + h.self + "\n    args: [serve]\n  - name: web\n    script: " + h.self + "\n    args: [serve]\n    depends_on: {gate: completed}\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.startCmd(tendBin, "run", file)
	r.await(r.errLines, "web waits for gate")
	h.poll("web waiting for gate", func() bool {
		insts, err := client.New(h.home).Instances(context.Background())
		return err == nil && slices.ContainsFunc(insts, func(in tend.Instance) bool { return in.Name == "web" && in.Status == tend.StatusWaiting }) &&
			slices.ContainsFunc(insts, func(in tend.Instance) bool { return in.Name == "gate" && in.Status == tend.StatusOnline })
	})
	r.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.wait(); code != 0 {
		t.Errorf("tend run exited %d after a SIGTERM while web waited for its dependencies, want 0", code)
	}
}
