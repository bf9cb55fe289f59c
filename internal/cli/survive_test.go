package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// The daemon is not a single point of failure: tend's keeper holds the
// apps and what they depend on while daemons come and go.

// ping asks the daemon who it is; it waits for a daemon that is starting.
func (h *harness) ping() tend.PingInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := client.New(h.home)
	c.AllowVersionMismatch = true
	p, err := c.Ping(ctx)
	if err != nil {
		h.t.Fatalf("ping: %v", err)
	}
	return p
}

// killDaemon SIGKILLs the daemon and returns the one that replaces it,
// which the keeper starts by itself: ping waits for it in the control
// socket's backlog.
func (h *harness) killDaemon() tend.PingInfo {
	before := h.ping()
	if before.KeeperPID == 0 {
		h.t.Fatal("the daemon has no keeper")
	}
	syscall.Kill(before.PID, syscall.SIGKILL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		p := h.ping()
		if p.PID != before.PID {
			if p.KeeperPID != before.KeeperPID {
				h.t.Fatalf("keeper pid %d, was %d", p.KeeperPID, before.KeeperPID)
			}
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatal("no new daemon after the kill")
		}
	}
}

// sameInstances fails unless two ls listings agree on everything but what
// moves by itself (uptime, cpu, memory, connections handed out).
func sameInstances(t *testing.T, before, after []tend.Instance) {
	t.Helper()
	norm := func(in []tend.Instance) string {
		out := slices.Clone(in)
		for i := range out {
			out[i].UptimeMS, out[i].CPU, out[i].Memory, out[i].Connections = 0, 0, 0, 0
		}
		b, _ := json.Marshal(out)
		return string(b)
	}
	if a, b := norm(before), norm(after); a != b {
		t.Errorf("instances changed across the daemon's death:\nbefore %s\nafter  %s", a, b)
	}
}

// TestDaemonKillUnderLoad SIGKILLs the daemon three times under a load of
// one request per new connection, in every mode: the apps keep their pids
// and no connection is refused or fails, except, in proxy mode, those in
// flight through the proxy that died.
func TestDaemonKillUnderLoad(t *testing.T) {
	for _, mode := range []string{"socket", "cluster-rr", "cluster-shared", "proxy", "fork", "cluster-sticky", "cluster-reuseport", "socket-reuseport"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t)
			port := strconv.Itoa(testport.Free(t))
			args := map[string][]string{
				"socket":            {"start", h.self, "--name", "web", "-i", "2", "--port", port, "--", "activated"},
				"cluster-rr":        {"start", nodeApp(t), "--name", "web", "-i", "2", "--port", port},
				"cluster-shared":    {"start", nodeApp(t), "--name", "web", "-i", "2", "--port", port, "--sched", "shared"},
				"proxy":             {"start", h.self, "--name", "web", "-i", "2", "--port", port, "--exec-mode", "proxy", "--", "portserver"},
				"fork":              {"start", h.self, "--name", "web", "--", "serve"},
				"cluster-sticky":    {"start", nodeApp(t), "--name", "web", "-i", "2", "--port", port, "--sched", "sticky"},
				"cluster-reuseport": {"start", nodeApp(t), "--name", "web", "-i", "2", "--port", port, "--sched", "reuseport"},
				"socket-reuseport":  {"start", h.self, "--name", "web", "-i", "2", "--port", port, "--sched", "reuseport", "--", "activated"},
			}[mode]
			h.ok(args...)
			before := h.await("ready", func(in []tend.Instance) bool {
				return len(in) > 0 && !slices.ContainsFunc(in, func(i tend.Instance) bool { return i.Status != tend.StatusOnline || !i.Ready && mode != "fork" })
			})
			const kills, conc = 3, 4
			var l *load
			if mode != "fork" {
				l = startLoad("http://127.0.0.1:"+port+"/", conc)
				l.until(t, 100)
			}
			for range kills {
				h.killDaemon()
				if l != nil {
					l.until(t, 100)
				}
			}
			if l != nil {
				l.end()
				// What the daemon held when it died is lost: in proxy mode
				// the connections it was forwarding, in round robin those
				// it had accepted and not yet handed over (accepted only
				// when a worker is free, so at most one or so per kill;
				// measured: 5 in 240 kills under this load).
				failed := len(l.other)
				// Sticky accepts while fewer connections are in flight
				// than there are workers, but two may be for one worker,
				// the second waiting in tend for the first one's ACK: at
				// most one per worker per kill is lost (measured: 0 to 4
				// in 3 kills).
				allowed := map[string]int{"proxy": conc * kills, "cluster-rr": kills, "cluster-sticky": 2 * kills}[mode]
				t.Logf("%d requests, %d refused, %d failed: %v", l.total(), l.refused, failed, firstErrs(l.other))
				if l.refused > 0 || failed > allowed {
					t.Errorf("%d refused and %d failed (%v); want 0 refused and at most %d failed", l.refused, failed, firstErrs(l.other), allowed)
				}
			}
			sameInstances(t, before, h.ls())
		})
	}
}

func firstErrs(errs []error) []error { return errs[:min(len(errs), 3)] }

// TestOutputThroughDaemonKill: an app printing all the time loses no line
// while daemons die, and is not killed by a broken pipe.
func TestOutputThroughDaemonKill(t *testing.T) {
	h := newHarness(t)
	h.env = append(h.env, "TICK_MS=1")
	h.ok("start", h.self, "--name", "tick", "--", "ticker")
	pid := h.await("online", allStatus(1, tend.StatusOnline))[0].PID
	file := filepath.Join(h.home, "logs", "tick-out-0.log")
	ticks := func() int {
		b, _ := os.ReadFile(file)
		return strings.Count(string(b), "tick ")
	}
	for i := range 5 {
		h.killDaemon()
		h.poll("ticks written after the kill", func() bool { return ticks() >= 50*(i+1) })
	}
	h.ok("stop", "tick")
	in := h.ls()[0]
	if in.Restarts != 0 || in.LastExit == nil || in.LastExit.Cause != "stop" {
		t.Errorf("the ticker was not left alone: %+v (last exit %+v)", in, in.LastExit)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	re := regexp.MustCompile(`^tick (\d+) pid=(\d+)$`)
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			if line == "stopping" {
				continue
			}
			t.Fatalf("line %q is not a tick (after tick %d)", line, want-1)
		}
		if n, _ := strconv.Atoi(m[1]); n != want || m[2] != strconv.Itoa(pid) {
			t.Fatalf("tick %s of pid %s, want tick %d of pid %d", m[1], m[2], want, pid)
		}
		want++
	}
	if want < 250 {
		t.Errorf("only %d ticks", want)
	}
}

// processState returns the state letter of pid in /proc ("Z" for a
// zombie), "" if it is gone.
func processState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// awaitTasks waits until every thread of pid is in a state ok accepts
// ("" for a thread that is gone). A process is reapable once every thread
// is a zombie or gone, not when its main thread is; and a SIGSTOP takes
// effect on each thread on its own, after kill(2) returned.
func awaitTasks(t *testing.T, pid int, what string, ok func(state string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		all := true
		for _, task := range tasks {
			if !ok(taskState(pid, task.Name())) {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d is not %s", pid, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func awaitDead(t *testing.T, pid int) {
	t.Helper()
	awaitTasks(t, pid, "dead", func(st string) bool { return st == "Z" || st == "" })
}

func awaitStopped(t *testing.T, pid int) {
	t.Helper()
	awaitTasks(t, pid, "stopped", func(st string) bool { return st == "T" })
}

// taskState is the state letter of a thread of pid, "" if it is gone.
func taskState(pid int, task string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// TestExitWhileNoDaemon: an instance killed while no daemon runs is seen
// to have died, with its signal, and restarted by the next daemon.
func TestExitWhileNoDaemon(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "web", "--", "serve")
	pid := h.await("online", allStatus(1, tend.StatusOnline))[0].PID
	p := h.ping()
	// Freeze the keeper so that no daemon comes back before the app died.
	syscall.Kill(p.KeeperPID, syscall.SIGSTOP)
	awaitStopped(t, p.KeeperPID)
	syscall.Kill(p.PID, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
	awaitDead(t, p.PID)
	awaitDead(t, pid) // the frozen keeper cannot reap them yet
	syscall.Kill(p.KeeperPID, syscall.SIGCONT)
	in := h.await("restarted", func(in []tend.Instance) bool {
		return len(in) == 1 && in[0].Restarts == 1 && in[0].Status == tend.StatusOnline && in[0].PID != pid
	})[0]
	if in.LastExit == nil || in.LastExit.Signal != "SIGKILL" || in.LastExit.Cause != "crash" {
		t.Errorf("last exit %+v, want a crash by SIGKILL", in.LastExit)
	}
}

// TestUpdate: a CLI that finds an older daemon says so and offers tend
// update, which hands the daemon over to the new binary under load: no
// failed request, the same pids, the new version answering.
func TestUpdate(t *testing.T) {
	h := newHarness(t)
	old := filepath.Join(t.TempDir(), "tend-old")
	if out, err := goBuild(old, "-ldflags", "-X github.com/tendhq/tend.Version=0.0.1-old"); err != nil {
		t.Fatalf("building an old tend: %v\n%s", err, out)
	}
	runOld := func(args ...string) {
		cmd := exec.Command(old, args...)
		cmd.Env = h.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("old tend %v: %v\n%s", args, err, out)
		}
	}
	sockPort, nodePort := strconv.Itoa(testport.Free(t)), strconv.Itoa(testport.Free(t))
	runOld("start", h.self, "--name", "go", "-i", "2", "--port", sockPort, "--", "activated")
	runOld("start", nodeApp(t), "--name", "node", "-i", "2", "--port", nodePort)
	errOut := h.fail(1, "ls")
	if !strings.Contains(errOut, "daemon runs version 0.0.1-old") || !strings.Contains(errOut, "tend update") {
		t.Errorf("mismatch message = %q", errOut)
	}
	before := h.ping()
	loads := []*load{startLoad("http://127.0.0.1:"+sockPort+"/", 2), startLoad("http://127.0.0.1:"+nodePort+"/", 2)}
	for _, l := range loads {
		l.until(t, 50) // every instance serves: they are ready
	}
	// The old daemon's events reach no CLI of this version: poll.
	c := client.New(h.home)
	c.AllowVersionMismatch = true
	var beforeLs []tend.Instance
	h.poll("every instance ready", func() bool {
		var err error
		beforeLs, err = c.Instances(context.Background())
		return err == nil && len(beforeLs) == 4 && !slices.ContainsFunc(beforeLs, func(i tend.Instance) bool { return !i.Ready })
	})
	out := h.fail(0, "update")
	for _, l := range loads {
		l.until(t, 50)
		l.end()
		if l.refused > 0 || len(l.other) > 0 {
			t.Errorf("during the update: %d refused, %d failed (%v)", l.refused, len(l.other), firstErrs(l.other))
		}
	}
	after := h.ping()
	if after.Version != tend.Version || after.PID == before.PID || after.KeeperPID != before.KeeperPID {
		t.Errorf("after the update: %+v (before %+v); %s", after, before, out)
	}
	sameInstances(t, beforeLs, h.ls())
}

// TestStateNamesUnrelatedPid: a state file that names a pid now used by
// another process (the daemon's record is stale) neither adopts nor
// signals that process, with the keeper alive or dead.
func TestStateNamesUnrelatedPid(t *testing.T) {
	for _, keeperDies := range []bool{false, true} {
		t.Run(fmt.Sprintf("keeper dies %v", keeperDies), func(t *testing.T) {
			h := newHarness(t)
			h.ok("start", h.self, "--name", "web", "--", "serve")
			pid := h.await("online", allStatus(1, tend.StatusOnline))[0].PID
			stranger := exec.Command("sleep", "60")
			if err := stranger.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stranger.Process.Kill(); stranger.Wait() })
			p := h.ping()
			syscall.Kill(p.KeeperPID, syscall.SIGSTOP)
			awaitStopped(t, p.KeeperPID)
			syscall.Kill(p.PID, syscall.SIGKILL)
			awaitDead(t, p.PID)
			state := filepath.Join(h.home, "state", "web.json")
			b, err := os.ReadFile(state)
			if err != nil {
				t.Fatal(err)
			}
			b = []byte(strings.Replace(string(b), fmt.Sprintf(`"pid":%d`, pid), fmt.Sprintf(`"pid":%d`, stranger.Process.Pid), 1))
			if err := os.WriteFile(state, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if keeperDies {
				syscall.Kill(p.KeeperPID, syscall.SIGKILL)
				syscall.Kill(pid, syscall.SIGKILL) // what a dead keeper's apps would do soon: their pipes are gone
				// Until it is gone the keeper holds the control socket: a
				// client would wait in its backlog, then be reset.
				awaitDead(t, p.KeeperPID)
			} else {
				syscall.Kill(p.KeeperPID, syscall.SIGCONT)
			}
			h.ls() // a daemon again: resumed, or new with the orphans stopped
			h.await("settled", func(in []tend.Instance) bool {
				return keeperDies && len(in) == 0 || len(in) == 1 && in[0].Status == tend.StatusOnline && in[0].PID != stranger.Process.Pid
			})
			if processState(stranger.Process.Pid) != "S" {
				t.Errorf("the unrelated process %d is in state %q", stranger.Process.Pid, processState(stranger.Process.Pid))
			}
		})
	}
}

// descendants returns every process under pid.
func descendants(pid int) []int {
	parent := map[int]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var out []int
	for p := range parent {
		for a := parent[p]; a != 0; a = parent[a] {
			if a == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func fdCount(pid int) int {
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(fds)
}

// TestManyDaemonKills: twenty daemon kills under load leak no descriptor
// and no process, and the keeper's memory stays flat.
func TestManyDaemonKills(t *testing.T) {
	h := newHarness(t)
	sockPort, nodePort := strconv.Itoa(testport.Free(t)), strconv.Itoa(testport.Free(t))
	h.ok("start", h.self, "--name", "go", "-i", "2", "--port", sockPort, "--", "activated")
	h.ok("start", nodeApp(t), "--name", "node", "-i", "2", "--port", nodePort)
	h.await("ready", func(in []tend.Instance) bool {
		return len(in) == 4 && !slices.ContainsFunc(in, func(i tend.Instance) bool { return !i.Ready })
	})
	loads := []*load{startLoad("http://127.0.0.1:"+sockPort+"/", 2), startLoad("http://127.0.0.1:"+nodePort+"/", 2)}
	p := h.killDaemon() // the first kill: what a steady state looks like
	keeperFDs, daemonFDs, keeperMem := fdCount(p.KeeperPID), fdCount(p.PID), anonMemory(p.KeeperPID)
	for range 19 {
		p = h.killDaemon()
		for _, l := range loads {
			l.until(t, 10)
		}
	}
	for i, l := range loads {
		l.end()
		// Round robin loses what the daemon accepted and had not handed
		// over yet when it died (see TestDaemonKillUnderLoad).
		if l.refused > 0 || len(l.other) > []int{0, 20}[i] {
			t.Errorf("%s: %d refused, %d failed (%v)", []string{"socket", "cluster"}[i], l.refused, len(l.other), firstErrs(l.other))
		}
	}
	// A descriptor that passes (a new daemon's ready pipe, a connection)
	// may be counted at either end: a leak grows with the kills.
	h.poll("the keeper's descriptors back to what they were", func() bool { return fdCount(p.KeeperPID) <= keeperFDs })
	if d := fdCount(p.PID); d > daemonFDs+4 {
		t.Errorf("descriptors after 20 kills: daemon %d, was %d", d, daemonFDs)
	}
	// Its heap settles at about 1.5 MB above where it starts (3.5 MB
	// after 200 kills, by hand); a leak grows with the kills.
	if m := anonMemory(p.KeeperPID); m > keeperMem+3<<19 {
		t.Errorf("the keeper's memory grew from %d to %d bytes", keeperMem, m)
	}
	// Every process under the keeper is the daemon or an instance that
	// tend ls lists, or a child of one.
	listed := map[int]bool{p.PID: true}
	for _, d := range descendants(p.PID) {
		listed[d] = true
	}
	for _, in := range h.ls() {
		listed[in.PID] = true
		for _, d := range descendants(in.PID) {
			listed[d] = true
		}
	}
	for _, d := range descendants(p.KeeperPID) {
		if !listed[d] && processState(d) != "" {
			t.Errorf("pid %d (%s) under the keeper is not listed", d, comm(d))
		}
	}
}

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// anonMemory returns a process's resident anonymous memory in bytes: its
// heap and stacks, not the pages of its binary, which it shares.
func anonMemory(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb << 10
		}
	}
	return 0
}

// TestKeeperDeath: the apps outlive their keeper too; the daemon keeps
// them, notices their end (its cause unknown) and restarts them itself.
func TestKeeperDeath(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "web", "-i", "2", "--", "serve")
	before := h.await("online", allStatus(2, tend.StatusOnline))
	p := h.ping()
	syscall.Kill(p.KeeperPID, syscall.SIGKILL)
	awaitDead(t, p.KeeperPID)
	if after := h.ping(); after.PID != p.PID || after.KeeperPID != 0 {
		t.Errorf("after the keeper's death: %+v, want daemon %d without a keeper", after, p.PID)
	}
	sameInstances(t, before, h.ls())
	syscall.Kill(before[0].PID, syscall.SIGKILL)
	in := h.await("restarted", func(in []tend.Instance) bool {
		return len(in) == 2 && in[0].Restarts == 1 && in[0].Status == tend.StatusOnline && in[0].PID != before[0].PID
	})
	if in[1].PID != before[1].PID || in[1].Restarts != 0 {
		t.Errorf("the other instance changed: %+v", in[1])
	}
	h.ok("kill")
	for _, pid := range []int{before[1].PID, in[0].PID} {
		awaitDead(t, pid)
	}
}

// TestEscapedDaemon: what an instance spawned and let go of (a daemon
// that double-forked, or a child in a process group of its own, now the
// keeper's child) dies with the instance, when it is stopped, when it
// crashes and when it exits.
func TestEscapedDaemon(t *testing.T) {
	h := newHarness(t)
	escaped := func(app string) int {
		out := h.awaitLog(app, "escaped ")
		m := regexp.MustCompile(`escaped (\d+)`).FindStringSubmatch(out)
		pid, _ := strconv.Atoi(m[1])
		return pid
	}
	h.ok("start", h.self, "--name", "web", "--", "doublefork")
	pid := escaped("web")
	// It says so before its parent exits; the keeper adopts it then.
	keeper := h.ping().KeeperPID
	h.poll("the escaped process adopted by the keeper", func() bool { return parentOf(pid) == keeper })
	if parentOf(pid) != keeper {
		t.Fatalf("the escaped pid %d has parent %d, not the keeper %d", pid, parentOf(pid), keeper)
	}
	h.ok("stop", "web")
	awaitDead(t, pid)

	h.ok("start", h.self, "--name", "crashy", "--", "doublefork")
	pid = escaped("crashy")
	syscall.Kill(h.ls()[1].PID, syscall.SIGKILL)
	awaitDead(t, pid)

	h.ok("start", h.self, "--name", "group", "--", "groupfork")
	pid = escaped("group")
	for _, in := range h.ls() {
		if in.Name == "group" {
			syscall.Kill(in.PID, syscall.SIGKILL)
		}
	}
	awaitDead(t, pid)

	h.ok("start", h.self, "--name", "leaves", "--no-autorestart", "--", "groupfork", "exit")
	awaitDead(t, escaped("leaves"))
}

func parentOf(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	pp, _ := strconv.Atoi(f[1])
	return pp
}
