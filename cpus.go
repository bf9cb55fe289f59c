package tend

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// NumCPU is the count "max" and "-N" are relative to: the CPUs this
// process may use, the cgroup's CPU quota when it sets one below the
// machine's count (a container given 1.5 CPUs runs 2 instances for max,
// not one per core of the host). A variable so that tests can pin it.
var NumCPU = func() int {
	n := runtime.NumCPU()
	if q := cgroupCPUs("/proc/self/cgroup", "/sys/fs/cgroup"); q > 0 && q < n {
		return q
	}
	return n
}

// cgroupCPUs reads the CPU quota of this process's cgroup and its
// ancestors, cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us over
// cpu.cfs_period_us), rounded up; 0 when none is set or none can be read.
func cgroupCPUs(self, root string) int {
	best := math.Inf(1)
	for _, d := range cgroupDirs(self, root, "cpu") {
		if q := quotaIn(d); q > 0 {
			best = min(best, q)
		}
	}
	if math.IsInf(best, 1) {
		return 0
	}
	return max(1, int(math.Ceil(best)))
}

// cgroupDirs lists the directories under root of the cgroups that self
// (a /proc/<pid>/cgroup file) names for controller, the process's own
// and every ancestor up to root: the v2 one, and the v1 one of
// controller. A limit set on any of them applies to the process.
func cgroupDirs(self, root, controller string) []string {
	b, err := os.ReadFile(self)
	if err != nil {
		return nil
	}
	var dirs []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir string
		switch {
		case parts[0] == "0" && parts[1] == "": // v2
			dir = filepath.Join(root, parts[2])
		case hasController(parts[1], controller): // v1
			dir = filepath.Join(root, parts[1], parts[2])
			if _, err := os.Stat(filepath.Join(root, parts[1])); err != nil {
				dir = filepath.Join(root, controller, parts[2]) // mounted as cpu, linked as cpu,cpuacct
			}
		default:
			continue
		}
		for d := dir; strings.HasPrefix(d, root); d = filepath.Dir(d) {
			dirs = append(dirs, d)
			if d == root {
				break
			}
		}
	}
	return dirs
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
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
