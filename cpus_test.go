package tend

import (
	"os"
	"path/filepath"
	"testing"
)

// The CPU quota of the cgroup, v2 or v1, or of an ancestor, bounds max.
func TestCgroupCPUs(t *testing.T) {
	root := t.TempDir()
	write := writer(t, root)
	write("self-v2", "0::/app/web\n")
	write("app/web/cpu.max", "max 100000\n")
	write("app/cpu.max", "150000 100000\n") // 1.5 CPUs: 2
	write("self-v1", "3:cpu,cpuacct:/docker/abc\n2:memory:/docker/abc\n")
	write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n")
	write("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n") // half a CPU: 1
	write("self-none", "0::/free\n")
	write("free/cpu.max", "max 100000\n")
	// A v1 container without a cgroup namespace: its hierarchy is mounted
	// from its own directory, which /proc/self/cgroup names in full.
	write("inner/cpu.cfs_quota_us", "200000\n")
	write("inner/cpu.cfs_period_us", "100000\n")
	write("mounts-v2", "30 25 0:26 / "+root+" rw - cgroup2 cgroup2 rw\n")
	write("mounts-v1", "32 31 0:29 / "+root+"/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n35 31 0:32 / "+root+"/memory rw - cgroup cgroup rw,memory\n")
	write("mounts-inner", "32 31 0:29 /docker/abc "+root+"/inner rw - cgroup cgroup rw,cpu,cpuacct\n")
	for _, c := range []struct {
		self, mounts string
		want         int
	}{{"self-v2", "mounts-v2", 2}, {"self-v1", "mounts-v1", 1}, {"self-v1", "mounts-inner", 2}, {"self-none", "mounts-v2", 0}, {"no-such-file", "mounts-v2", 0}} {
		if got := cgroupCPUs(filepath.Join(root, c.self), filepath.Join(root, c.mounts)); got != c.want {
			t.Errorf("%s in %s: %d CPUs, want %d", c.self, c.mounts, got, c.want)
		}
	}
}

// The memory limit of the cgroup, v2 or v1, or of an ancestor, the
// smallest, is the default share of max_memory_restart.
func TestCgroupMemory(t *testing.T) {
	root := t.TempDir()
	write := writer(t, root)
	write("self-v2", "0::/kubepods/pod1/web\n")
	write("kubepods/pod1/web/memory.max", "max\n")
	write("kubepods/pod1/memory.max", "536870912\n") // the pod's 512 MiB
	write("kubepods/memory.max", "8589934592\n")
	write("self-v1", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
	write("memory/docker/abc/memory.limit_in_bytes", "268435456\n")
	write("memory/docker/memory.limit_in_bytes", "9223372036854771712\n") // v1's none
	write("self-none", "4:memory:/free\n0::/free\n")
	write("memory/free/memory.limit_in_bytes", "9223372036854771712\n")
	write("free/memory.max", "max\n")
	write("mounts", "30 25 0:26 / "+root+" rw - cgroup2 cgroup2 rw\n35 31 0:32 / "+root+"/memory rw - cgroup cgroup rw,memory\n")
	for _, c := range []struct {
		self string
		want int64
	}{{"self-v2", 512 << 20}, {"self-v1", 256 << 20}, {"self-none", 0}, {"no-such-file", 0}} {
		if got := cgroupMemory(filepath.Join(root, c.self), filepath.Join(root, "mounts")); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.self, got, c.want)
		}
	}
	for _, c := range []struct {
		limit     int64
		instances int
		want      int64
	}{{1 << 30, 2, 483183819}, {1 << 30, 0, 966367638}, {0, 4, 0}} {
		if got := MemoryShare(c.limit, c.instances); got != c.want {
			t.Errorf("MemoryShare(%d, %d) = %d, want %d", c.limit, c.instances, got, c.want)
		}
	}
}

// writer returns a function that writes a file under root, making its
// directories: a cgroup tree, as the kernel would show it.
func writer(t *testing.T, root string) func(path, s string) {
	return func(path, s string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
