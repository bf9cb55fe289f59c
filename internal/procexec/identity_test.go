package procexec

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// v2Dir makes a cgroup in this process's cgroup v2 hierarchy (which may
// have no controllers: a hybrid host's), or skips where there is none to
// write in.
func v2Dir(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile("/proc/self/cgroup")
	var own string
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			own = p
		}
	}
	for _, mnt := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(mnt, "cgroup.controllers")); err != nil || own == "" {
			continue
		}
		dir := filepath.Join(mnt, own, "procexec-test-"+strconv.Itoa(os.Getpid()))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Skipf("no cgroup v2 directory to write in here: %v", err)
		}
		t.Cleanup(func() { os.Remove(dir) })
		return dir
	}
	t.Skip("no cgroup v2 hierarchy mounted here")
	return ""
}

// A process started with one cgroup v2 directory is born in it.
func TestStartBornInCgroup(t *testing.T) {
	dir := v2Dir(t)
	fd := openV2([]string{dir})
	if fd < 0 {
		t.Fatalf("%s: not opened as a cgroup v2 directory", dir)
	}
	syscall.Close(fd)
	p, err := Start(Cmd{Path: "/bin/sleep", Args: []string{"sleep", "60"}, Cgroups: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Signal(9); <-p.Done() }()
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/cgroup")
	if !strings.Contains(string(b), "0::/") || !strings.Contains(string(b), filepath.Base(dir)+"\n") {
		t.Errorf("sleep's cgroups:\n%s\nwant it in %s", b, dir)
	}
}

// On cgroup v1, what a process forks at once is in its cgroup too: it is
// born there, not moved after its start.
func TestStartBornInCgroupV1(t *testing.T) {
	b, _ := os.ReadFile("/proc/self/cgroup")
	var own string
	for _, line := range strings.Split(string(b), "\n") {
		if p := strings.SplitN(line, ":", 3); len(p) == 3 && p[1] == "pids" {
			own = p[2]
		}
	}
	if own == "" {
		t.Skip("no cgroup v1 pids hierarchy here")
	}
	dir := filepath.Join("/sys/fs/cgroup/pids", own, "procexec-v1-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("no cgroup v1 directory to write in here: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	before, _ := os.ReadFile("/proc/thread-self/cgroup")
	for range 5 {
		p, err := Start(Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 60 & exec sleep 61"}, Cgroups: []string{dir}})
		if err != nil {
			t.Fatal(err)
		}
		var pids []string
		deadline := time.Now().Add(10 * time.Second)
		self := strconv.Itoa(os.Getpid()) // while its spawning thread is there
		for len(pids) < 2 && time.Now().Before(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			pids = slices.DeleteFunc(strings.Fields(string(b)), func(p string) bool { return p == self })
		}
		p.Signal(syscall.SIGKILL)
		<-p.Done()
		for _, pid := range pids {
			n, _ := strconv.Atoi(pid)
			syscall.Kill(n, syscall.SIGKILL)
		}
		if len(pids) < 2 {
			t.Fatalf("the cgroup holds %v: the shell's background child is not in it", pids)
		}
	}
	if after, _ := os.ReadFile("/proc/thread-self/cgroup"); string(after) != string(before) {
		t.Errorf("the test's thread moved:\n%s\nthen\n%s", before, after)
	}
}
