package procexec

import (
	"bytes"
	"os"
	"slices"
	"strconv"
)

// MarkerEnv names the variable that marks every process an instance runs:
// its value is unique to one run of one instance, and its descendants
// inherit it.
const MarkerEnv = "TEND_RUN"

// Escaped returns the processes that left the tree of the run marked
// marker, with their descendants. A daemon that double-forks (fork,
// setsid, fork, the middle one exits) is no descendant of the instance
// any more: the kernel gives it to the nearest child subreaper (tend's
// keeper, or the daemon under tend run). So the candidates are the
// children of the reapers that left the reaper's session or the process
// group they were born in (an instance leads its own group in the
// reaper's session: it is no candidate), and the escaped are those with
// MarkerEnv=marker in their environment, as it was when they started.
func Escaped(marker string, reapers []int) []int {
	if marker == "" {
		return nil
	}
	procs := recentProcs()
	want := []byte(MarkerEnv + "=" + marker)
	var found []int
	for pid, p := range procs {
		reaper, ok := procs[p.ppid]
		if !ok || !slices.Contains(reapers, p.ppid) {
			continue
		}
		leader := p.pgid == pid && p.sid == reaper.sid
		if !leader && hasEnv(pid, want) {
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
