package tend

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MemoryLimit is the memory limit of this process's cgroup or of an
// ancestor, the smallest, in bytes; 0 when none is set (or none can be
// read). In a container it is the container's limit: what the kernel's
// OOM killer enforces on the daemon and every app together. A variable so
// that tests can pin it.
var MemoryLimit = func() int64 { return cgroupMemory("/proc/self/cgroup", "/proc/self/mountinfo") }

// noMemoryLimit is where a cgroup's limit means none: v1 writes "no
// limit" as the largest page-aligned int64 (9223372036854771712), and no
// machine has an exabyte.
const noMemoryLimit = 1 << 60

// cgroupMemory reads the memory limit of the cgroup that self names and
// of its ancestors, v2 (memory.max) or v1 (memory.limit_in_bytes), and
// returns the smallest; 0 for none.
func cgroupMemory(self, mountinfo string) int64 {
	var best int64
	for _, d := range cgroupDirs(self, mountinfo, "memory") {
		n := memoryLimitIn(d)
		if n > 0 && (best == 0 || n < best) {
			best = n
		}
	}
	return best
}

// memoryLimitIn is the memory limit set in cgroup directory d; 0 for none.
func memoryLimitIn(d string) int64 {
	b, err := os.ReadFile(filepath.Join(d, "memory.max"))
	if err != nil {
		b, err = os.ReadFile(filepath.Join(d, "memory.limit_in_bytes"))
	}
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64) // v2's "max" fails: none
	if err != nil || n <= 0 || n >= noMemoryLimit {
		return 0
	}
	return n
}

// MemoryShare is the max_memory_restart tend chooses for an app that sets
// none, given the cgroup's memory limit (MemoryLimit) and the instances of
// all apps together, which share it: 90 % of the limit over the
// instances, so that an instance that leaks is restarted gracefully
// (drained, as a reload does) before the container reaches its limit and
// the OOM killer picks a process without warning. The other 10 % leave
// room for the daemon and the page cache. 0 (no restart for memory) when
// there is no limit. An app's own max_memory plays no part: it is a hard
// limit the user chose, and reaching it ends the instance as the user
// asked.
func MemoryShare(limit int64, instances int) int64 {
	if limit <= 0 {
		return 0
	}
	return limit / int64(max(instances, 1)) / 10 * 9
}
