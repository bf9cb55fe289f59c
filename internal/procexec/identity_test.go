package procexec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
	fd := OpenCgroup([]string{dir})
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
