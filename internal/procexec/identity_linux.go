package procexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
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

// OpenCgroup opens dirs for a process to be born in (clone3's
// CLONE_INTO_CGROUP), when they are one cgroup v2 directory: then its
// memory is charged there from its first page. It returns -1 otherwise
// (v1's several hierarchies: JoinCgroups after the start). The caller
// closes the descriptor once the process started.
func OpenCgroup(dirs []string) int {
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

// CloneUnsupported reports whether a start born in a cgroup failed for
// want of clone3 (kernels before 5.7, or a seccomp filter): the caller
// starts it again with JoinCgroups.
func CloneUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.E2BIG)
}

// JoinCgroups moves pid into the cgroup directories dirs, one per
// hierarchy. The process has started its program already: it is joined
// before it can have done much, and children it forks later follow it
// (v1 moves the memory it touched along, as tend's cgroups ask). A
// failure leaves it where it is; the caller kills it.
func JoinCgroups(pid int, dirs []string) error {
	for _, dir := range dirs {
		f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("joining cgroup %s: %w", dir, err)
		}
		_, err = f.WriteString(strconv.Itoa(pid))
		f.Close()
		if err != nil {
			return fmt.Errorf("joining cgroup %s: %w", dir, err)
		}
	}
	return nil
}
