package tend

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// memcgEnv tells the test binary, run again, to join the cgroup it names
// and print MemoryLimit.
const memcgEnv = "TEND_TEST_MEMCG"

// A real cgroup: a process in a v1 memory cgroup with a limit reads it,
// as tend would in a container. It needs a writable memory controller
// (root on a v1 host, like this project's CI); elsewhere it is skipped.
func TestMemoryLimitOfRealCgroup(t *testing.T) {
	if dir := os.Getenv(memcgEnv); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte("0"), 0); err != nil {
			t.Fatal(err)
		}
		// Not t.Log: the parent reads this line.
		os.Stdout.WriteString("limit " + strconv.FormatInt(MemoryLimit(), 10) + "\n")
		return
	}
	own := cgroupDirs("/proc/self/cgroup", "/proc/self/mountinfo", "memory")
	if len(own) == 0 || !strings.HasPrefix(own[0], "/sys/fs/cgroup/memory") {
		t.Skip("no v1 memory controller here")
	}
	// A child of our own cgroup: the limits above still apply to what
	// runs in it, and nothing else on the machine is touched.
	dir := filepath.Join(own[0], "tend-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a memory cgroup: %v", err)
	}
	defer os.Remove(dir)
	const limit = 300 << 20
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(limit)), 0); err != nil {
		t.Skipf("cannot set a memory limit: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryLimitOfRealCgroup$")
	cmd.Env = append(os.Environ(), memcgEnv+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the process in the cgroup: %v\n%s", err, out)
	}
	if want := "limit " + strconv.Itoa(limit) + "\n"; !strings.HasPrefix(string(out), want) {
		t.Errorf("in a cgroup limited to %d bytes, MemoryLimit printed %q, want %q", limit, out, want)
	}
}
