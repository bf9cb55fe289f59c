package procexec

import (
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
// where the kernel has them. The keeper and Start both use it.
func SysProcAttr(cred *Cred, pidfd *int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, PidFD: pidfd}
	if cred != nil {
		// NoSetGroups false: the supplementary groups are set, to cred's
		// (none at all when it has none, never the caller's).
		a.Credential = &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: append([]uint32{}, cred.Groups...)}
	}
	return a
}

// JoinCgroups moves pid into the cgroup directories dirs, one per
// hierarchy. The process has started its program already: it is joined
// before it can have done much, and children it forks later follow it.
// A failure leaves it where it is; the caller kills it.
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
