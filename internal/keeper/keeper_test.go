package keeper

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether a thread of pid has not exited: a process whose
// main thread is a zombie cannot be reaped until its other threads are
// gone too.
func alive(pid int) bool {
	return !everyTask(pid, func(st byte) bool { return st == 'Z' })
}

// awaitStopped waits until every thread of pid is stopped (state T):
// kill(2) returns before a SIGSTOP takes effect, and each thread stops on
// its own.
func awaitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !everyTask(pid, func(st byte) bool { return st == 'T' }) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not stop", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// everyTask reports whether every live thread of pid is in a state ok
// accepts; threads that are gone count as accepted.
func everyTask(pid int, ok func(state byte) bool) bool {
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) && !ok(s[i+2]) {
			return false
		}
	}
	return true
}

func findProc(r invReport, pid int) (invProc, bool) {
	for _, p := range r.Procs {
		if p.PID == pid {
			return p, true
		}
	}
	return invProc{}, false
}

// TestDaemonDeathKeepsEverything: the daemon crashes; the keeper starts a
// new one, which finds the same processes with their labels and held
// descriptors, and the store with what was put in it.
func TestDaemonDeathKeepsEverything(t *testing.T) {
	k := startKeeper(t)
	var pid1, pid2 int
	k.do(&pid1, "spawn", "web/0", "sleeper")
	k.do(&pid2, "spawn", "web/1", "sleeper")
	var ok string
	k.do(&ok, "put", "pipe-a")
	first := k.inv(0)
	k.do(&ok, "die")
	second := k.inv(first.Daemon)
	for _, pid := range []int{pid1, pid2} {
		p, found := findProc(second, pid)
		if !found || p.Exited || !alive(pid) {
			t.Fatalf("pid %d after the daemon's death: %+v (found %v, alive %v)", pid, p, found, alive(pid))
		}
		if !slices.Contains(p.Held, "out") {
			t.Errorf("pid %d: held %v, want out", pid, p.Held)
		}
	}
	if p, _ := findProc(second, pid1); p.Label != "web/0" {
		t.Errorf("label %q, want web/0", p.Label)
	}
	if got := second.Pipes["pipe-a"]; got != "hello pipe-a" {
		t.Errorf("stored pipe reads %q, want hello pipe-a", got)
	}
}

// TestExitWhileNoDaemon: a process that ends while no daemon runs is
// reported to the next one with its status.
func TestExitWhileNoDaemon(t *testing.T) {
	k := startKeeper(t)
	var pid int
	k.do(&pid, "spawn", "web/0", "sleeper")
	first := k.inv(0)
	// Freeze the keeper so that no daemon runs while the app is killed.
	k.cmd.Process.Signal(syscall.SIGSTOP)
	awaitStopped(t, k.cmd.Process.Pid) // kill(2) returns before the stop takes effect
	syscall.Kill(first.Daemon, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
	// kill(2) returns before the target is gone: wait until both are
	// zombies, which the frozen keeper cannot reap yet.
	for _, p := range []int{first.Daemon, pid} {
		deadline := time.Now().Add(10 * time.Second)
		for alive(p) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d survives SIGKILL", p)
			}
			time.Sleep(time.Millisecond)
		}
	}
	k.cmd.Process.Signal(syscall.SIGCONT)
	second := k.inv(first.Daemon)
	p, found := findProc(second, pid)
	if !found || !p.Exited || p.Signal != int(syscall.SIGKILL) {
		t.Fatalf("after its kill with no daemon: %+v (found %v), want exited by SIGKILL", p, found)
	}
	// Released, it is forgotten by the next daemon.
	var ok string
	k.do(&ok, "release", strconv.Itoa(pid))
	k.do(&ok, "die")
	third := k.inv(second.Daemon)
	if _, found := findProc(third, pid); found {
		t.Errorf("released pid %d is still in the inventory", pid)
	}
}

// TestExitReported: a live daemon learns each exit with its code.
func TestExitReported(t *testing.T) {
	k := startKeeper(t)
	var pid int
	k.do(&pid, "spawn", "job/0", "exit3")
	var p invProc
	k.do(&p, "wait", strconv.Itoa(pid))
	if p.Code != 3 || p.Signal != 0 {
		t.Fatalf("exit %+v, want code 3", p)
	}
}

// TestUpgradeKeepsPid: the keeper becomes a new binary (here, the same
// one) in place: same pid, so still the apps' parent, same tables.
func TestUpgradeKeepsPid(t *testing.T) {
	k := startKeeper(t)
	var pid int
	k.do(&pid, "spawn", "web/0", "sleeper")
	var ok string
	k.do(&ok, "put", "pipe-b")
	first := k.inv(0)
	k.do(&ok, "upgrade")
	second := k.inv(first.Daemon)
	if p, found := findProc(second, pid); !found || p.Exited {
		t.Fatalf("pid %d after the upgrade: %+v, found %v", pid, p, found)
	}
	if got := second.Pipes["pipe-b"]; got != "hello pipe-b" {
		t.Errorf("stored pipe reads %q after the upgrade", got)
	}
	ppid := parentOf(pid)
	if ppid != k.cmd.Process.Pid {
		t.Errorf("the app's parent is %d, want the keeper %d", ppid, k.cmd.Process.Pid)
	}
	// The keeper still reaps: an exit after the upgrade is reported.
	syscall.Kill(pid, syscall.SIGTERM)
	var p invProc
	k.do(&p, "wait", strconv.Itoa(pid))
	if p.Signal != int(syscall.SIGTERM) {
		t.Errorf("exit after the upgrade %+v, want SIGTERM", p)
	}
}

// TestQuit: the keeper exits after a daemon that says quit.
func TestQuit(t *testing.T) {
	k := startKeeper(t)
	var ok string
	k.do(&ok, "quit")
	done := make(chan error, 1)
	go func() { done <- k.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("keeper exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("keeper still running after quit")
	}
}

func parentOf(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(b)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ')' {
			var state string
			var ppid int
			if n, _ := fmt.Sscan(s[i+2:], &state, &ppid); n == 2 {
				return ppid
			}
		}
	}
	return 0
}
