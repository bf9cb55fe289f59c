package procexec

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"time"
)

// MarkerEnv names the variable that marks every process an instance runs:
// its value is unique to one run of one instance, and its descendants
// inherit it.
const MarkerEnv = "TEND_RUN"

// Escaped returns the processes that left the tree of the run marked
// marker, with their descendants. A daemon that double-forks (fork,
// setsid, fork, the middle one exits), or a child in a process group of
// its own whose parent is gone, is no descendant of the instance any
// more: the kernel gives it to the nearest child subreaper (tend's
// keeper, or the daemon under tend run). So the candidates are the
// children of the reapers, less the live instances (instance reports
// them: reading every instance's environment at every stop would make
// stopping n instances cost n²), and the escaped are those with
// MarkerEnv=marker in their environment, as it was when they started.
// The processes are as they were at since or later: a process orphaned
// by an exit is seen with its new parent in a look begun after the exit.
func Escaped(marker string, reapers []int, instance func(pid int) bool, since time.Time) []int {
	if marker == "" {
		return nil
	}
	procs := recentProcs(since)
	want := []byte(MarkerEnv + "=" + marker)
	var found []int
	for pid, p := range procs {
		if !slices.Contains(reapers, p.ppid) || instance(pid) {
			continue
		}
		if hasEnv(pid, want) {
			found = append(found, pid)
		}
	}
	for _, pid := range slices.Clone(found) {
		found = append(found, Descendants(pid)...)
	}
	return found
}

// hasEnv reports whether process pid's initial environment holds the
// entry kv. Another user's processes are not readable: never ours.
func hasEnv(pid int, kv []byte) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for entry := range bytes.SplitSeq(b, []byte{0}) {
		if bytes.Equal(entry, kv) {
			return true
		}
	}
	return false
}

// Reapers are the processes an escaped descendant of this process's
// children goes to: this process (a child subreaper under tend run) and
// its parent (tend's keeper, or init once the keeper is gone).
func Reapers() []int {
	return []int{os.Getpid(), os.Getppid()}
}
