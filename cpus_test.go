package tend

import (
	"os"
	"path/filepath"
	"testing"
)

// The CPU quota of the cgroup, v2 or v1, or of an ancestor, bounds max.
func TestCgroupCPUs(t *testing.T) {
	root := t.TempDir()
	write := func(path, s string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("self-v2", "0::/app/web\n")
	write("app/web/cpu.max", "max 100000\n")
	write("app/cpu.max", "150000 100000\n") // 1.5 CPUs: 2
	write("self-v1", "3:cpu,cpuacct:/docker/abc\n2:memory:/docker/abc\n")
	write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n")
	write("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n") // half a CPU: 1
	write("self-none", "0::/free\n")
	write("free/cpu.max", "max 100000\n")
	for _, c := range []struct {
		self string
		want int
	}{{"self-v2", 2}, {"self-v1", 1}, {"self-none", 0}, {"no-such-file", 0}} {
		if got := cgroupCPUs(filepath.Join(root, c.self), root); got != c.want {
			t.Errorf("%s: %d CPUs, want %d", c.self, got, c.want)
		}
	}
}
