package keeper

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// StateVersion is the version of the tables a keeper hands to the binary
// it upgrades to. A binary is a valid upgrade target only if it reads this
// version (the daemon asks it before the upgrade).
const StateVersion = 1

// saved is what a keeper passes across exec: its options and tables, with
// descriptor numbers that stay open through the exec.
type saved struct {
	Version  int          `json:"version"`
	Options  Options      `json:"options"`
	Lock     int          `json:"lock"`
	Children []savedChild `json:"children"`
	Store    []savedEntry `json:"store"`
	Backoff  int64        `json:"backoff_ns"`
	Stopping bool         `json:"stopping,omitempty"`
}

type savedChild struct {
	PID   int    `json:"pid"`
	PIDFD int    `json:"pidfd"`
	Label string `json:"label"`
	Start uint64 `json:"start"`
	Held  []held `json:"held"`
	Exit  *Exit  `json:"exit,omitempty"`
}

type savedEntry struct {
	Name string `json:"name"`
	FDs  []int  `json:"fds"`
}

// reexec becomes exe, keeping this pid (so the apps keep their parent),
// every descriptor and the tables. It returns only if the exec failed,
// with everything as it was.
func (k *keeper) reexec(exe string) error {
	st := saved{Version: StateVersion, Options: k.opt, Lock: k.lock, Backoff: int64(k.backoff), Stopping: k.stopping}
	st.Options.ReadyFD = -1
	var fds []int
	keep := func(fd int) {
		if fd >= 0 {
			fds = append(fds, fd)
		}
	}
	keep(k.lock)
	for _, c := range k.children {
		st.Children = append(st.Children, savedChild{PID: c.pid, PIDFD: c.pidfd, Label: c.label, Start: c.start, Held: c.held, Exit: c.exit})
		keep(c.pidfd)
		for _, h := range c.held {
			keep(h.FD)
		}
	}
	for _, name := range k.order {
		st.Store = append(st.Store, savedEntry{Name: name, FDs: k.store[name]})
		for _, fd := range k.store[name] {
			keep(fd)
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	mfd, err := unix.MemfdCreate("tend-keeper-state", 0) // inherited by the exec
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	if _, err := unix.Write(mfd, b); err != nil {
		return err
	}
	if _, err := unix.Seek(mfd, 0, 0); err != nil {
		return err
	}
	for _, fd := range fds {
		setCloexec(fd, false)
	}
	env := append(withoutEnv(os.Environ(), stateFDEnv), stateFDEnv+"="+strconv.Itoa(mfd))
	k.logf("upgrading: becoming %s (pid %d, %d processes, %d stored sockets)", exe, os.Getpid(), len(k.children), len(k.store))
	err = syscall.Exec(exe, []string{"tend", "keeper"}, env)
	for _, fd := range fds {
		setCloexec(fd, true)
	}
	return err
}

// restore takes over the tables of the keeper this process was.
func (k *keeper) restore(mfd int) error {
	f := os.NewFile(uintptr(mfd), "keeper-state")
	defer f.Close()
	var st saved
	if err := json.NewDecoder(f).Decode(&st); err != nil {
		return fmt.Errorf("reading the keeper state passed across the upgrade: %w", err)
	}
	if st.Version != StateVersion {
		return fmt.Errorf("keeper state version %d, this binary takes %d", st.Version, StateVersion)
	}
	k.opt = st.Options
	k.opt.ReadyFD = -1
	k.first = false
	k.lock = st.Lock
	k.backoff = 0
	k.stopping = st.Stopping
	setCloexec(k.lock, true)
	for _, sc := range st.Children {
		c := &child{pid: sc.PID, pidfd: sc.PIDFD, label: sc.Label, start: sc.Start, held: sc.Held, exit: sc.Exit}
		setCloexec(c.pidfd, true)
		for _, h := range c.held {
			setCloexec(h.FD, true)
		}
		k.children[c.pid] = c
	}
	for _, e := range st.Store {
		for _, fd := range e.FDs {
			setCloexec(fd, true)
		}
		k.store[e.Name] = e.FDs
		k.order = append(k.order, e.Name)
	}
	k.logf("upgraded: now %s, with %d processes and %d stored sockets", k.exe, len(k.children), len(k.store))
	return nil
}

func setCloexec(fd int, on bool) {
	if fd < 0 {
		return
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return
	}
	if on {
		flags |= unix.FD_CLOEXEC
	} else {
		flags &^= unix.FD_CLOEXEC
	}
	unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags)
}
