package procexec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// SetSubreaper makes the calling process a child subreaper: orphaned
// descendants of the apps are reparented to it instead of to init, so they
// can be found, stopped and reaped.
func SetSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// Reap collects the exit status of every child of this process that Start
// did not create (reparented orphans), so none lingers as a zombie. It
// never waits on a pid Start is tracking.
func Reap() int {
	spawnMu.Lock()
	defer spawnMu.Unlock()
	n := 0
	for _, pid := range children() {
		if tracked[pid] {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			n++
		}
	}
	return n
}

// children lists this process's children from /proc/self/task/*/children:
// each thread lists the children it forked.
func children() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}
