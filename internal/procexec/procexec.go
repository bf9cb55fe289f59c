package procexec

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Cmd describes one process to start.
type Cmd struct {
	Path   string   // absolute path of the program
	Args   []string // argv, Args[0] included
	Env    []string
	Dir    string
	Stdout *os.File // write ends; nil means /dev/null
	Stderr *os.File
	// ExtraFiles become fds 3, 4, ... in the child.
	ExtraFiles []*os.File
	// Label and Hold matter only to a starter that keeps processes for a
	// daemon that may go away (tend's keeper): the daemon's name for the
	// process, and descriptors of the daemon's to keep while it runs.
	// Start ignores them.
	Label string
	Hold  []Held
	// Cred runs the process as another user (the caller must be root).
	Cred *Cred
	// Cgroups are directories of cgroups the process joins, one per
	// hierarchy, from its first instruction (see BornIn).
	Cgroups []string
}

// Held is a descriptor of the caller's that a keeper keeps for a process:
// a pipe's read end, tend's end of a channel. Only the number is passed;
// the caller keeps its own.
type Held struct {
	Name string
	FD   int
}

// Process is a started process: the leader of its own process group.
type Process struct {
	Pid   int
	Start time.Time
	ticks uint64 // start time after boot, see StartTime
	cmd   *exec.Cmd

	state Status
	done  chan struct{}
}

// Status is how a process ended.
type Status struct {
	Code   int            // exit code, -1 when killed by a signal
	Signal syscall.Signal // 0 when it exited
	Err    error          // a wait error, rare
}

// SignalName returns "SIGKILL" style names, "" when the process exited.
func (s Status) SignalName() string {
	if s.Signal == 0 {
		return ""
	}
	return unix.SignalName(s.Signal)
}

func (s Status) String() string {
	if s.Signal != 0 {
		return "killed by " + s.SignalName()
	}
	return fmt.Sprintf("exit code %d", s.Code)
}

// tracked holds the pids this package started and waits for itself, so that
// Reap never steals their exit status. spawnMu also orders Start against
// Reap: a child is registered before Reap can see it.
var (
	spawnMu sync.Mutex
	tracked = map[int]bool{}
)

// Start starts c as the leader of a new process group. No parent-death
// signal is set: apps outlive the daemon (and its upgrades), and the
// keeper, their parent, stops them when it is told to.
func Start(c Cmd) (*Process, error) {
	var cmd *exec.Cmd
	pidfd := -1
	pid, err := BornIn(c.Cgroups, func(cgfd int) (int, error) {
		pidfd = -1
		cmd = &exec.Cmd{
			Path:        c.Path,
			Args:        c.Args,
			Env:         c.Env,
			Dir:         c.Dir,
			ExtraFiles:  c.ExtraFiles,
			SysProcAttr: SysProcAttr(c.Cred, &pidfd, cgfd),
		}
		if c.Stdout != nil {
			cmd.Stdout = c.Stdout
		}
		if c.Stderr != nil {
			cmd.Stderr = c.Stderr
		}
		spawnMu.Lock()
		defer spawnMu.Unlock()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		tracked[cmd.Process.Pid] = true
		return cmd.Process.Pid, nil
	})
	if err != nil {
		if pid > 0 { // started, but outside its cgroups
			unix.Kill(pid, unix.SIGKILL)
			cmd.Wait()
			spawnMu.Lock()
			delete(tracked, pid)
			spawnMu.Unlock()
			if pidfd >= 0 {
				unix.Close(pidfd)
			}
		}
		return nil, err
	}
	p := &Process{Pid: pid, Start: time.Now(), ticks: StartTime(pid), cmd: cmd, done: make(chan struct{})}
	go p.wait(pidfd)
	return p, nil
}

// wait reaps the process and records how it ended.
func (p *Process) wait(pidfd int) {
	var st Status
	ws, err := waitPidfd(p.Pid, pidfd)
	switch {
	case err == nil:
		st = statusOf(ws)
		p.cmd.Process.Release() // reaped here, not by os/exec
	case errors.Is(err, errNoPidfd): // nothing reaped: the old way
		err := p.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			ws, _ := ee.Sys().(syscall.WaitStatus)
			st = statusOf(unix.WaitStatus(ws))
		default:
			st.Code, st.Err = -1, err
		}
	default:
		st.Code, st.Err = -1, err
	}
	spawnMu.Lock()
	delete(tracked, p.Pid)
	spawnMu.Unlock()
	p.state = st
	close(p.done)
}

// waitPidfd waits for pid to exit on its pidfd through Go's poller, then
// reaps it. cmd.Wait would hold an OS thread blocked in wait4 for the
// process's whole life: a thread per instance, a thousand with a thousand
// instances. A pidfd becomes readable when its process exits, and the
// process cannot be reaped by anyone else (it is our child and tracked), so
// the wait4 that follows finds it. It takes pidfd over, and returns
// errNoPidfd, having reaped nothing, where it cannot wait that way.
func waitPidfd(pid, pidfd int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	if pidfd < 0 {
		return ws, errNoPidfd
	}
	if err := unix.SetNonblock(pidfd, true); err != nil {
		unix.Close(pidfd)
		return ws, fmt.Errorf("%w: %v", errNoPidfd, err)
	}
	f := os.NewFile(uintptr(pidfd), "pidfd") // non-blocking: in the poller
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return ws, fmt.Errorf("%w: %v", errNoPidfd, err)
	}
	var werr error
	if err := rc.Read(func(uintptr) bool {
		for {
			got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				werr = err
				return true
			}
			return got == pid // 0: still running, wait until the pidfd is readable
		}
	}); err != nil {
		return ws, fmt.Errorf("%w: %v", errNoPidfd, err) // the poller failed before a reap
	}
	return ws, werr
}

// errNoPidfd means waitPidfd could not wait and reaped nothing.
var errNoPidfd = errors.New("procexec: no pidfd")

func statusOf(ws unix.WaitStatus) Status {
	if ws.Signaled() {
		return Status{Code: -1, Signal: ws.Signal()}
	}
	return Status{Code: ws.ExitStatus()}
}

// Done is closed when the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Status returns how the process ended; valid after Done is closed.
func (p *Process) Status() Status { <-p.done; return p.state }

// Signal sends sig to the process group, and to descendants that left it.
func (p *Process) Signal(sig syscall.Signal) error {
	return SignalTree(p.Pid, sig)
}

// SignalTree sends sig to the process group led by pid and to every
// descendant of pid found in /proc, including those that moved to another
// group or session. ESRCH (nothing left) is not an error.
func SignalTree(pid int, sig syscall.Signal) error {
	pids := Descendants(pid)
	err := unix.Kill(-pid, sig)
	if errors.Is(err, unix.ESRCH) {
		err = nil
	}
	for _, d := range pids {
		if e := unix.Kill(d, sig); e != nil && !errors.Is(e, unix.ESRCH) && err == nil {
			err = e
		}
	}
	return err
}

// PID returns the process id.
func (p *Process) PID() int { return p.Pid }

// StartTime returns the process's start time after boot (see StartTime):
// with the pid it names the process for good.
func (p *Process) StartTime() uint64 { return p.ticks }

// Tree returns the live descendants of the process.
func (p *Process) Tree() []Ref { return Refs(Descendants(p.Pid)) }

// KillRest SIGKILLs what is left of the process's group after it exited,
// and tree (descendants seen earlier, maybe in other groups).
func (p *Process) KillRest(tree []Ref) { KillRest(p.Pid, tree) }

// KillRest SIGKILLs what is left of the group led by pid, and what of
// tree still runs: not a process that got one of its pids since.
func KillRest(pid int, tree []Ref) {
	SignalTree(pid, syscall.SIGKILL)
	for _, r := range tree {
		if r.Start != 0 && StartTime(r.PID) == r.Start {
			unix.Kill(r.PID, syscall.SIGKILL)
		}
	}
}

// A Ref names one process for good, as its pid alone does not: the pid
// of a process that ended is given to the next one.
type Ref struct {
	PID   int
	Start uint64 // see StartTime; 0 for a process already gone
}

// Refs names the processes pids as they are now.
func Refs(pids []int) []Ref {
	out := make([]Ref, len(pids))
	for i, pid := range pids {
		out[i] = Ref{pid, StartTime(pid)}
	}
	return out
}

// Release does nothing: a process started here is this process's own
// child and holds nothing elsewhere.
func (p *Process) Release() {}

// CloseOnExecAll marks every descriptor of this process but 0, 1, 2 and
// keep close-on-exec. What a process inherited without being told of (a
// shell's descriptor passed down by the command that started tend) would
// otherwise reach every process it starts.
func CloseOnExecAll(keep ...int) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 || slices.Contains(keep, fd) {
			continue
		}
		unix.CloseOnExec(fd)
	}
}
