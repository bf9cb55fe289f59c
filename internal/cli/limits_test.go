package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tendhq/tend"
)

// needCgroups skips where tend cannot have cgroups: not root.
func needCgroups(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: tend makes cgroups")
	}
}

// pyApp writes a Python script into a temp dir and returns its path.
func pyApp(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// cgroupOf returns pid's cgroup directory in the v1 hierarchy of
// controller, or in v2's when controller is "".
func cgroupOf(t *testing.T, pid int, controller string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		p := strings.SplitN(line, ":", 3)
		if controller == "" && p[0] == "0" || controller != "" && strings.Contains(","+p[1]+",", ","+controller+",") {
			return p[2]
		}
	}
	t.Fatalf("pid %d has no %s cgroup:\n%s", pid, controller, b)
	return ""
}

// TestMaxMemoryOOMKilled: an instance that allocates past max_memory is
// killed by the kernel and reported oom-killed in describe, events and
// the log; what it left is cleaned up.
func TestMaxMemoryOOMKilled(t *testing.T) {
	needCgroups(t)
	h := newHarness(t)
	ev := h.events("--json")
	hog := pyApp(t, "hog.py", `import time
chunks = []
print("allocating", flush=True)
while True:
    chunks.append(b"x" * (8 << 20))
    time.sleep(0.01)
`)
	h.ok("start", hog, "--name", "hog", "--max-memory", "64M", "--no-autorestart")
	e := ev.next("hog's exit", func(e tend.Event) bool { return e.App == "hog" && e.LastExit != nil })
	if e.LastExit.Cause != "oom-killed" || e.LastExit.Signal != "SIGKILL" {
		t.Errorf("hog's exit event: %+v, want cause oom-killed by SIGKILL", e.LastExit)
	}
	d := h.ok("describe", "hog")
	if !strings.Contains(d, "oom-killed") || !strings.Contains(d, "64M") {
		t.Errorf("describe does not report the OOM kill and the limit:\n%s", d)
	}
	h.poll("the OOM kill in tend.log", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.home, "tend.log"))
		return strings.Contains(string(b), "OOM killer at its max_memory of 64")
	})
}

// TestCPUQuota: a spinner with cpu_quota 50% gets at most about half a
// CPU, by its cgroup's own accounting, and ls shows that figure.
func TestCPUQuota(t *testing.T) {
	needCgroups(t)
	h := newHarness(t)
	spin := pyApp(t, "spin.py", "while True:\n    pass\n")
	h.ok("start", spin, "--name", "spin", "--cpu-quota", "50%")
	list := h.await("spin online", allStatus(1, tend.StatusOnline))
	pid := list[0].PID
	if cg := cgroupOf(t, pid, "cpu"); !strings.Contains(cg, "/app-spin/i") {
		t.Fatalf("spin is in cpu cgroup %s, not one of tend's", cg)
	}
	quota, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu", cgroupOf(t, pid, "cpu"), "cpu.cfs_quota_us"))
	if err != nil || strings.TrimSpace(string(quota)) != "50000" {
		t.Errorf("cpu.cfs_quota_us = %q (%v), want 50000", quota, err)
	}
	// ls shows the cgroup's CPU: never much above the quota, however long
	// the spinner spins (without it, an idle core would give it 100%).
	var samples []float64
	h.poll("five CPU samples", func() bool {
		l := h.ls()
		if len(l) == 1 && l[0].CPU > 0 {
			samples = append(samples, l[0].CPU)
		}
		return len(samples) >= 5
	})
	for _, s := range samples {
		if s > 65 {
			t.Errorf("spin used %.0f%% of a CPU with a 50%% quota (samples %v)", s, samples)
		}
	}
}

// TestCgroupCountsEscapedChild: memory that a child allocates after it
// left the instance's process tree (setsid and double fork) is the
// instance's in ls, because its cgroup holds it.
func TestCgroupCountsEscapedChild(t *testing.T) {
	needCgroups(t)
	h := newHarness(t)
	app := pyApp(t, "parent.py", `import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        hold = b"x" * (120 << 20)
        print("child holds 120 MB", flush=True)
        time.sleep(3600)
    os._exit(0)
time.sleep(3600)
`)
	h.ok("start", app, "--name", "parent")
	h.awaitLog("parent", "child holds 120 MB")
	list := h.await("parent's memory counts the child", func(l []tend.Instance) bool {
		return len(l) == 1 && l[0].Memory >= 120<<20
	})
	leaf := filepath.Join("/sys/fs/cgroup/pids", cgroupOf(t, list[0].PID, "pids"))
	if filepath.Base(filepath.Dir(leaf)) != "app-parent" {
		t.Fatalf("the instance is in %s", leaf)
	}
	h.ok("delete", "parent")
	// The child went with it, and so did the instance's and the app's
	// cgroups.
	h.poll("the app's cgroup removed", func() bool {
		_, err := os.Stat(filepath.Dir(leaf))
		return os.IsNotExist(err)
	})
}

// TestMaxPids: an instance cannot have more tasks than max_pids.
func TestMaxPids(t *testing.T) {
	needCgroups(t)
	h := newHarness(t)
	app := pyApp(t, "forks.py", `import os, time
n = 0
for i in range(40):
    try:
        if os.fork() == 0:
            time.sleep(3600)
        n += 1
    except OSError as e:
        print("fork refused after", n, e.errno, flush=True)
        break
else:
    print("forked", n, flush=True)
time.sleep(3600)
`)
	h.ok("start", app, "--name", "forks", "--max-pids", "8")
	out := h.awaitLog("forks", "fork")
	if !strings.Contains(out, "fork refused after 7") {
		t.Errorf("with max_pids 8, the app could fork: %s", out)
	}
}

// TestLimitsWithoutCgroups: where the daemon can make no cgroups (here:
// a daemon of an unprivileged user), an app with limits is a clear error
// and nothing starts; one without runs.
func TestLimitsWithoutCgroups(t *testing.T) {
	uid, gid := otherUser(t)
	bin := publicDir(t, map[string]string{"tend": tendBin})
	home := sharedHome(t, uid, gid, 0o700)
	as := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "tend"), args...)
		cmd.Env = append(os.Environ(), "TEND_HOME="+home)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { as("kill") })
	out, err := as("start", "/bin/sleep", "--name", "nap", "--max-memory", "100M", "--", "600")
	if err == nil || !strings.Contains(out, "need cgroups, and tend has none here") {
		t.Errorf("max_memory without cgroups: %v\n%s", err, out)
	}
	if out, err := as("start", "/bin/sleep", "--name", "nap", "--", "600"); err != nil {
		t.Errorf("an app without limits: %v\n%s", err, out)
	}
	if out, _ := as("ls"); strings.Count(out, "nap") != 1 {
		t.Errorf("ls:\n%s", out)
	}
}
