package tend

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/tendhq/tend/internal/cgroup"
)

// NumCPU is the count "max" and "-N" are relative to: the CPUs this
// process may use, the cgroup's CPU quota when it sets one below the
// machine's count (a container given 1.5 CPUs runs 2 instances for max,
// not one per core of the host). A variable so that tests can pin it.
var NumCPU = func() int {
	n := runtime.NumCPU()
	if q := cgroupCPUs("/proc/self/cgroup", "/proc/self/mountinfo"); q > 0 && q < n {
		return q
	}
	return n
}

// cgroupCPUs reads the CPU quota of this process's cgroup and its
// ancestors, cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us over
// cpu.cfs_period_us), rounded up; 0 when none is set or none can be read.
func cgroupCPUs(self, mountinfo string) int {
	best := math.Inf(1)
	for _, d := range cgroupDirs(self, mountinfo, "cpu") {
		if q := quotaIn(d); q > 0 {
			best = min(best, q)
		}
	}
	if math.IsInf(best, 1) {
		return 0
	}
	return max(1, int(math.Ceil(best)))
}

// cgroupDirs lists the directories of the cgroups that self (a
// /proc/<pid>/cgroup file) names, as mountinfo (a /proc/<pid>/mountinfo
// file) mounts them: for controller on v1, and v2's; each the process's
// own and its ancestors. A limit set on any of them applies to the
// process.
func cgroupDirs(self, mountinfo, controller string) []string {
	b, err := os.ReadFile(self)
	if err != nil {
		return nil
	}
	m, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil
	}
	return cgroup.Ancestors(b, m, controller)
}

// quotaIn is the CPU quota set in cgroup directory d, in CPUs; 0 for none.
func quotaIn(d string) float64 {
	if b, err := os.ReadFile(filepath.Join(d, "cpu.max")); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			return ratio(f[0], f[1])
		}
		return 0
	}
	q, err1 := os.ReadFile(filepath.Join(d, "cpu.cfs_quota_us"))
	p, err2 := os.ReadFile(filepath.Join(d, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0
	}
	return ratio(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func ratio(quota, period string) float64 {
	q, err1 := strconv.ParseFloat(quota, 64)
	p, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0 // -1: no quota (v1)
	}
	return q / p
}
