package keeper

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/procexec"
)

// Conn is the daemon's connection to its keeper. Its methods are safe for
// concurrent use.
type Conn struct {
	uc  *net.UnixConn
	wmu sync.Mutex // one packet at a time

	mu    sync.Mutex
	seq   uint64
	waits map[uint64]chan reply
	procs map[int]*Process
	early map[int]Exit // exits that came before their process's Spawn returned

	gone chan struct{} // closed when the keeper is gone
	// identity: the keeper starts processes as another user and in
	// cgroups (an older one would ignore both).
	identity bool
}

type reply struct {
	p   *packet
	fds []int
}

// Inventory is what the keeper held when the daemon connected: the
// processes it started for earlier daemons, and its store.
type Inventory struct {
	Procs []*Process
	// Files holds each store entry's descriptors, owned by the caller,
	// in Names order (the order they were first put).
	Files map[string][]*os.File
	Names []string
}

// ErrGone is returned once the keeper has gone away.
var ErrGone = errors.New("tend's keeper is gone")

// Connect takes the keeper connection on fd (the daemon's FDEnv) and reads
// the inventory.
func Connect(fd int) (*Conn, *Inventory, error) {
	if _, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
		return nil, nil, fmt.Errorf("keeper fd %d: %w", fd, err)
	}
	uc, err := connOf(os.NewFile(uintptr(fd), "keeper"))
	if err != nil {
		return nil, nil, err
	}
	c := &Conn{uc: uc, waits: map[uint64]chan reply{}, procs: map[int]*Process{}, early: map[int]Exit{}, gone: make(chan struct{})}
	inv := &Inventory{Files: map[string][]*os.File{}}
	r := newReader(uc)
	for {
		p, fds, err := r.recv()
		if err != nil {
			uc.Close()
			return nil, nil, fmt.Errorf("reading the keeper's inventory: %w", err)
		}
		switch p.Op {
		case opChild:
			inv.Procs = append(inv.Procs, c.inventoried(p, fds))
			continue
		case opFD:
			if _, dup := inv.Files[p.Name]; !dup {
				inv.Names = append(inv.Names, p.Name)
			}
			inv.Files[p.Name] = files(fds, p.Name)
			continue
		case opEnd:
			c.identity = slices.Contains(p.Names, capIdentity)
			go c.read(r)
			return c, inv, nil
		}
		closeFiles(fds)
	}
}

// inventoried makes a Process of an opChild packet.
func (c *Conn) inventoried(p *packet, fds []int) *Process {
	pidfd := -1
	if p.Err == "" && len(fds) > 0 {
		pidfd, fds = fds[0], fds[1:]
	}
	pr := c.newProcess(p.PID, p.Start, p.Label, pidfd)
	pr.Held = map[string]*os.File{}
	for i, fd := range fds {
		if i < len(p.Names) {
			pr.Held[p.Names[i]] = os.NewFile(uintptr(fd), p.Names[i])
		} else {
			unix.Close(fd)
		}
	}
	if p.Exit != nil {
		pr.exited(*p.Exit)
	}
	return pr
}

func files(fds []int, name string) []*os.File {
	out := make([]*os.File, len(fds))
	for i, fd := range fds {
		out[i] = os.NewFile(uintptr(fd), name)
	}
	return out
}

// read dispatches replies and exits until the keeper is gone.
func (c *Conn) read(r *reader) {
	for {
		p, fds, err := r.recv()
		if err != nil {
			c.lost()
			return
		}
		switch p.Op {
		case opReply:
			c.mu.Lock()
			w := c.waits[p.ID]
			delete(c.waits, p.ID)
			c.mu.Unlock()
			if w != nil {
				w <- reply{p, fds}
				continue
			}
		case opExit:
			c.mu.Lock()
			pr := c.procs[p.PID]
			if pr == nil && p.Exit != nil {
				// A process that ended before Spawn, which has its reply,
				// got to register it: newProcess applies it.
				c.early[p.PID] = *p.Exit
			}
			c.mu.Unlock()
			if pr != nil && p.Exit != nil {
				pr.exited(*p.Exit)
			}
		}
		closeFiles(fds)
	}
}

// lost handles the keeper's end: requests fail, and each process not seen
// to end is watched through its pidfd, its status then unknown.
func (c *Conn) lost() {
	c.mu.Lock()
	select {
	case <-c.gone:
		c.mu.Unlock()
		return
	default:
	}
	close(c.gone)
	for id, w := range c.waits {
		close(w)
		delete(c.waits, id)
	}
	procs := make([]*Process, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	c.uc.Close()
	for _, p := range procs {
		go p.watchPidfd()
	}
}

// Gone is closed when the keeper has gone away.
func (c *Conn) Gone() <-chan struct{} { return c.gone }

// Close closes the connection, as the daemon's exit would.
func (c *Conn) Close() error {
	c.lost()
	return nil
}

func (c *Conn) send(p *packet, fds []int) error {
	select {
	case <-c.gone:
		return ErrGone
	default:
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return send(c.uc, p, fds)
}

// request sends p and waits for its reply.
func (c *Conn) request(p *packet, fds []int) (reply, error) {
	w := make(chan reply, 1)
	c.mu.Lock()
	c.seq++
	p.ID = c.seq
	c.waits[p.ID] = w
	c.mu.Unlock()
	if err := c.send(p, fds); err != nil {
		c.mu.Lock()
		delete(c.waits, p.ID)
		c.mu.Unlock()
		return reply{}, err
	}
	r, ok := <-w
	if !ok {
		return reply{}, ErrGone
	}
	return r, nil
}

// Identity reports whether the keeper starts processes as another user
// and in cgroups (one older than that would ignore both).
func (c *Conn) Identity() bool { return c.identity }

// Spawn starts cmd as a child of the keeper, in a process group of its
// own. The keeper keeps cmd.Hold until Release, and knows the process by
// cmd.Label.
func (c *Conn) Spawn(cmd procexec.Cmd) (*Process, error) {
	if (cmd.Cred != nil || len(cmd.Cgroups) > 0) && !c.identity {
		return nil, errors.New("tend's keeper predates running apps as another user or in cgroups: run tend update, then start the app again")
	}
	sp := &spawn{Path: cmd.Path, Argv: cmd.Args, Env: cmd.Env, Dir: cmd.Dir, Cred: cmd.Cred, Cgroups: cmd.Cgroups}
	var fds []int
	add := func(f *os.File) {
		if f == nil {
			sp.Files = append(sp.Files, -1)
			return
		}
		sp.Files = append(sp.Files, len(fds))
		fds = append(fds, int(f.Fd()))
	}
	add(nil) // stdin: /dev/null
	add(cmd.Stdout)
	add(cmd.Stderr)
	for _, f := range cmd.ExtraFiles {
		add(f)
	}
	p := &packet{Op: opSpawn, Spawn: sp, Label: cmd.Label}
	for _, h := range cmd.Hold {
		p.Names = append(p.Names, h.Name)
		fds = append(fds, h.FD)
	}
	r, err := c.request(p, fds)
	if err != nil {
		return nil, fmt.Errorf("starting %s through tend's keeper: %w", cmd.Path, err)
	}
	if r.p.Err != "" {
		closeFiles(r.fds)
		return nil, errors.New(r.p.Err)
	}
	pidfd := -1
	if len(r.fds) > 0 {
		pidfd = r.fds[0]
		closeFiles(r.fds[1:])
	}
	return c.newProcess(r.p.PID, r.p.Start, cmd.Label, pidfd), nil
}

// Put stores fds under name, replacing what was there; the keeper keeps
// copies until Drop.
func (c *Conn) Put(name string, fds ...int) error {
	return c.send(&packet{Op: opPut, Name: name}, fds)
}

// Drop closes the keeper's copies of the store entry name, and returns
// once they are closed: a port dropped can be bound again at once.
func (c *Conn) Drop(name string) error {
	r, err := c.request(&packet{Op: opDrop, Name: name}, nil)
	if err == nil && r.p.Err != "" {
		err = errors.New(r.p.Err)
	}
	return err
}

// Notify has the keeper send state to systemd (sd_notify): under systemd
// the keeper is the service's main process, the one systemd listens to.
func (c *Conn) Notify(state string) error { return c.send(&packet{Op: opNotify, Name: state}, nil) }

// Quit tells the keeper to exit after this daemon does: tend is stopping.
func (c *Conn) Quit() error { return c.send(&packet{Op: opQuit}, nil) }

// Upgrade tells the keeper to become exe after this daemon exits, and to
// start the next daemon from it.
func (c *Conn) Upgrade(exe string) error { return c.send(&packet{Op: opUpgrade, Exe: exe}, nil) }

// release forgets a process in the keeper.
func (c *Conn) release(pid int) {
	c.mu.Lock()
	delete(c.procs, pid)
	c.mu.Unlock()
	c.send(&packet{Op: opRelease, PID: pid}, nil)
}

func (c *Conn) newProcess(pid int, start uint64, label string, pidfd int) *Process {
	p := &Process{pid: pid, start: start, label: label, pidfd: pidfd, conn: c, done: make(chan struct{})}
	c.mu.Lock()
	c.procs[pid] = p
	ex, ended := c.early[pid]
	delete(c.early, pid)
	gone := false
	select {
	case <-c.gone:
		gone = true
	default:
	}
	c.mu.Unlock()
	if ended {
		p.exited(ex)
	} else if gone {
		go p.watchPidfd()
	}
	return p
}

// Process is an app process the keeper started. It implements the
// supervisor's Proc.
type Process struct {
	pid   int
	start uint64
	label string
	pidfd int
	conn  *Conn

	// Held are the descriptors the keeper kept for an inventoried process,
	// by name; the caller takes them over.
	Held map[string]*os.File

	once sync.Once
	done chan struct{}
	st   procexec.Status
	mu   sync.Mutex // guards pidfd
}

func (p *Process) exited(e Exit) {
	p.once.Do(func() {
		p.st = procexec.Status{Code: e.Code, Signal: syscall.Signal(e.Signal)}
		if e.Unknown {
			p.st.Err = errUnknown
		}
		p.mu.Lock()
		if p.pidfd >= 0 {
			unix.Close(p.pidfd)
			p.pidfd = -1
		}
		p.mu.Unlock()
		close(p.done)
	})
}

var errUnknown = errors.New("exit status unknown: tend's keeper, its parent, was gone")

// watchPidfd waits for the process's end through its pidfd, for when the
// keeper that would have reported it is gone.
func (p *Process) watchPidfd() {
	select {
	case <-p.done:
		return
	default:
	}
	p.mu.Lock()
	fd, err := -1, error(unix.EBADF)
	if p.pidfd >= 0 {
		fd, err = dup(p.pidfd)
	}
	p.mu.Unlock()
	if err != nil {
		// No pidfd (an old kernel): the pid, if it still names the same
		// process.
		fd, err = unix.PidfdOpen(p.pid, 0)
		if err != nil || procexec.StartTime(p.pid) != p.start {
			if err == nil {
				unix.Close(fd)
			}
			p.exited(Exit{Code: -1, Unknown: true})
			return
		}
	}
	// Non-blocking before os.NewFile, which only then puts it in Go's
	// poller; a pidfd is readable once its process has ended.
	unix.SetNonblock(fd, true)
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err == nil {
		waited := false
		err = rc.Read(func(uintptr) bool {
			if !waited {
				waited = true
				return false
			}
			return true
		})
	}
	if err != nil {
		// No poller for it: a blocking poll on a thread of its own.
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
	}
	p.exited(Exit{Code: -1, Unknown: true})
}

// PID returns the process id.
func (p *Process) PID() int { return p.pid }

// StartTime returns the process's start time (see StartTime).
func (p *Process) StartTime() uint64 { return p.start }

// Label returns the daemon's label for the process.
func (p *Process) Label() string { return p.label }

// Done is closed when the process has ended and the keeper has said how.
func (p *Process) Done() <-chan struct{} { return p.done }

// Status returns how the process ended; valid after Done is closed.
func (p *Process) Status() procexec.Status { <-p.done; return p.st }

// Signal sends sig to the process's group and to descendants that left
// it, once each.
func (p *Process) Signal(sig syscall.Signal) error {
	return procexec.SignalTree(p.pid, sig)
}

// Tree returns the live descendants of the process.
func (p *Process) Tree() []procexec.Ref { return procexec.Refs(procexec.Descendants(p.pid)) }

// KillRest SIGKILLs what is left of the process's group and of tree.
func (p *Process) KillRest(tree []procexec.Ref) { procexec.KillRest(p.pid, tree) }

// Release tells the keeper that the daemon has recorded the process's end
// and read its output: it may close what it held for it.
func (p *Process) Release() { p.conn.release(p.pid) }

func (p *Process) String() string { return "pid " + strconv.Itoa(p.pid) }
