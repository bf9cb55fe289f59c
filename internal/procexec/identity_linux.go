package procexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/tendhq/tend/internal/private"
	"golang.org/x/sys/unix"
)

// Cred is the user a process runs as, when it is not the caller's.
type Cred struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"` // supplementary groups
}

// SysProcAttr is how every app process starts: the leader of a process
// group of its own, as cred when it is set, with its pidfd in *pidfd
// where the kernel has them, and born in the cgroup v2 directory open as
// cgroupFD (-1: none). The keeper and Start both use it.
func SysProcAttr(cred *Cred, pidfd *int, cgroupFD int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, PidFD: pidfd}
	if cgroupFD >= 0 {
		a.UseCgroupFD, a.CgroupFD = true, cgroupFD
	}
	if cred != nil {
		// NoSetGroups false: the supplementary groups are set, to cred's
		// (none at all when it has none, never the caller's).
		a.Credential = &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: append([]uint32{}, cred.Groups...)}
	}
	return a
}

// BornIn runs fork, which starts a process on the calling thread and
// returns its pid, so that the process is in the cgroup directories dirs
// (one per hierarchy) from its first instruction: nothing it forks at once
// escapes its limits, and its memory is charged there from its first
// page. On cgroup v2 it is born there (clone3's CLONE_INTO_CGROUP, fork's
// argument is the cgroup's descriptor); on v1, where a thread's cgroups
// are its own, fork runs on a thread of its own that joins dirs first
// and ends with it. Where neither works (v2 before Linux 5.7), the
// process joins them just after it started. A pid with an error is a
// process the caller must kill.
func BornIn(dirs []string, fork func(cgroupFD int) (int, error)) (int, error) {
	if len(dirs) == 0 {
		return fork(-1)
	}
	if fd := openV2(dirs); fd >= 0 {
		pid, err := fork(fd)
		syscall.Close(fd)
		if err == nil || !cloneUnsupported(err) {
			return pid, err
		}
		if pid, err = fork(-1); err != nil {
			return 0, err
		}
		return pid, join(dirs, "cgroup.procs", pid)
	}
	// The thread, now in dirs, ends with the fork; no other goroutine
	// runs on it meanwhile.
	return private.OnOwnThread(func() (int, error) {
		if err := join(dirs, "tasks", unix.Gettid()); err != nil {
			return 0, err
		}
		return fork(-1)
	})
}

// openV2 opens dirs when they are one cgroup v2 directory, for clone3; -1
// otherwise.
func openV2(dirs []string) int {
	if len(dirs) != 1 {
		return -1
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "cgroup.controllers")); err != nil {
		return -1 // not v2
	}
	fd, err := syscall.Open(dirs[0], syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return -1
	}
	return fd
}

// cloneUnsupported reports whether a start born in a cgroup failed for
// want of clone3 (kernels before 5.7, or a seccomp filter).
func cloneUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.E2BIG)
}

// join writes id into file (cgroup.procs: a process; tasks: a thread) of
// each of dirs.
func join(dirs []string, file string, id int) error {
	for _, dir := range dirs {
		f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("joining cgroup %s: %w", dir, err)
		}
		_, err = f.WriteString(strconv.Itoa(id))
		f.Close()
		if err != nil {
			return fmt.Errorf("joining cgroup %s: %w", dir, err)
		}
	}
	return nil
}
