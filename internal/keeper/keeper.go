package keeper

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/internal/notify"
	"github.com/tendhq/tend/internal/private"
	"github.com/tendhq/tend/internal/procexec"
)

// Variables the keeper sets for the daemons it starts.
const (
	// FDEnv names the daemon's end of the keeper connection.
	FDEnv = "TEND_KEEPER_FD"
	// StopEnv tells a daemon started after a stop was asked for (SIGTERM
	// while no daemon ran) to stop every app once it has taken them back.
	StopEnv = "TEND_DAEMON_STOP"
	// stateFDEnv passes the keeper's tables across an upgrade's exec.
	stateFDEnv = "TEND_KEEPER_STATE_FD"
)

// Options configure Run.
type Options struct {
	// Argv is the first daemon's argv without the program; later daemons
	// get RestartArgv. The program is the binary the keeper runs.
	Argv, RestartArgv []string
	// Env is the daemons' environment, before the keeper's variables.
	Env []string
	// ReadyEnv names the variable that tells a daemon on which fd to say
	// "ok" (or why it failed) once it serves. ReadyFD, if not -1, receives
	// the first daemon's word.
	ReadyEnv string
	ReadyFD  int
	// LogPath is the daemon's stdout and stderr, and where the keeper
	// writes its own few lines.
	LogPath string
	// LockPath is the keeper's lock: one keeper per tend home.
	LockPath string
}

// child is a process the keeper started for the daemon.
type child struct {
	pid   int
	pidfd int // -1 if the kernel has none
	label string
	start uint64
	held  []held
	exit  *Exit // set once reaped
}

// held is a descriptor the keeper keeps for a child: tend's end of its
// pipes, channel and notify socket.
type held struct {
	Name string `json:"name"`
	FD   int    `json:"fd"`
}

// keeper is the state of the keeper process; one goroutine (loop) owns it.
type keeper struct {
	opt      Options
	exe      string
	lock     int
	devnull  int
	children map[int]*child
	store    map[string][]int
	order    []string // store names, oldest first
	d        *daemonRun
	restart  *time.Timer
	backoff  time.Duration
	stopping bool // a signal asked everything to stop
	first    bool // the next daemon is the first (gets Argv and ReadyFD)
	events   chan event
}

// event is what the helper goroutines tell the loop.
type event struct {
	d     *daemonRun
	p     *packet
	fds   []int
	err   error  // the daemon's connection ended
	ready string // the daemon's first word on its ready pipe
	isRdy bool
}

// Run is the keeper process: it starts the daemon and keeps what the apps
// depend on until the daemon says quit. It returns nil then, or an error
// when it cannot start at all (its lock is held, its first daemon fails
// before serving with nothing to keep).
func Run(opt Options) error {
	k := &keeper{opt: opt, lock: -1, children: map[int]*child{}, store: map[string][]int{},
		first: true, events: make(chan event, 64)}
	var err error
	if k.exe, err = os.Executable(); err != nil {
		return err
	}
	procexec.CloseOnExecAll(opt.ReadyFD)
	if err := k.init(); err != nil {
		return err
	}
	// Orphans the apps leave behind are reparented here, and reaped.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		k.logf("cannot become a child subreaper: %v", err)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1)
	k.reap() // children that exited while an upgrade's exec ran
	if err := k.startDaemon(); err != nil {
		return err
	}
	return k.loop(sigs)
}

// init takes the lock, or the tables of the keeper this process was
// before an upgrade's exec.
func (k *keeper) init() error {
	fd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	k.devnull = fd
	if s := os.Getenv(stateFDEnv); s != "" {
		os.Unsetenv(stateFDEnv)
		n, _ := strconv.Atoi(s)
		return k.restore(n)
	}
	lock, err := private.OpenFD(k.opt.LockPath, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return fmt.Errorf("opening %s: %w", k.opt.LockPath, err)
	}
	if err := unix.Flock(lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(lock)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return ErrRunning
		}
		return err
	}
	k.lock = lock
	return nil
}

// ErrRunning means another keeper holds the home's lock.
var ErrRunning = errors.New("a tend daemon is already running for this TEND_HOME")

func (k *keeper) loop(sigs chan os.Signal) error {
	for {
		var restart <-chan time.Time
		if k.restart != nil {
			restart = k.restart.C
		}
		select {
		case sig := <-sigs:
			k.signal(sig.(syscall.Signal))
		case ev := <-k.events:
			if ev.d != k.d {
				closeFiles(ev.fds) // from a daemon that is gone
				continue
			}
			switch {
			case ev.isRdy:
				k.daemonReady(ev.ready)
			case ev.p != nil:
				k.handle(ev.p, ev.fds)
			default:
				k.d.eof = true
			}
		case <-restart:
			k.restart = nil
			if err := k.startDaemon(); err != nil {
				k.logf("starting the daemon: %v", err)
				k.scheduleRestart()
			}
		}
		if k.d != nil && k.d.exit != nil && k.d.eof {
			if done, err := k.daemonGone(); done {
				return err
			}
		}
	}
}

// signal acts on a signal to the keeper.
func (k *keeper) signal(sig syscall.Signal) {
	switch sig {
	case unix.SIGCHLD:
		k.reap()
	case unix.SIGTERM, unix.SIGINT:
		// A stop of the keeper (systemd stops its main process) is a stop
		// of every app, which only the daemon knows how to do.
		k.stopping = true
		if k.d != nil && k.d.exit == nil {
			unix.Kill(k.d.pid, sig)
		} else if k.restart != nil {
			k.restart.Reset(0)
		}
	case unix.SIGHUP, unix.SIGUSR1:
		if k.d != nil && k.d.exit == nil {
			unix.Kill(k.d.pid, sig) // the daemon reopens the log files
		}
	}
}

// reap collects every child that exited: the daemon, an app process, or
// an orphan an app left behind.
func (k *keeper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		ex := &Exit{Code: ws.ExitStatus()}
		if ws.Signaled() {
			ex.Code, ex.Signal = -1, int(ws.Signal())
		}
		switch c := k.children[pid]; {
		case k.d != nil && pid == k.d.pid:
			k.d.exit = ex
		case c != nil:
			c.exit = ex
			if c.pidfd >= 0 {
				unix.Close(c.pidfd) // a reaped process needs no pidfd
				c.pidfd = -1
			}
			k.tell(&packet{Op: opExit, PID: pid, Exit: ex}, nil)
		}
	}
}

// tell queues p for the daemon, if one is connected; dup'd descriptors
// go with it and are closed once sent.
func (k *keeper) tell(p *packet, fds []int) {
	if k.d == nil || k.d.exit != nil {
		closeFiles(fds)
		return
	}
	k.d.out.push(outgoing{p, fds})
}

// handle serves one request of the daemon.
func (k *keeper) handle(p *packet, fds []int) {
	reply := &packet{Op: opReply, ID: p.ID}
	var rfds []int
	switch p.Op {
	case opSpawn:
		c, err := k.spawn(p, fds)
		if err != nil {
			reply.Err = err.Error()
			break
		}
		reply.PID, reply.Start = c.pid, c.start
		if c.pidfd >= 0 {
			if d, err := dup(c.pidfd); err == nil {
				rfds = []int{d}
			}
		}
	case opPut:
		k.put(p.Name, fds)
	case opDrop:
		k.drop(p.Name)
		closeFiles(fds)
	case opRelease:
		k.release(p.PID)
		closeFiles(fds)
	case opQuit:
		k.d.said = opQuit // a stop wins over an upgrade asked before it
		closeFiles(fds)
	case opUpgrade:
		if k.d.said != opQuit && !k.stopping {
			k.d.said, k.d.exe = opUpgrade, p.Exe
		}
		closeFiles(fds)
	case opNotify:
		notify.Notify(p.Name) // systemd's NOTIFY_SOCKET, if it gave one
		closeFiles(fds)
	default:
		closeFiles(fds)
		reply.Err = fmt.Sprintf("unknown operation %q", p.Op)
	}
	if p.ID != 0 {
		k.tell(reply, rfds)
	}
}

// spawn starts a process: fds are its descriptors, then the held ones.
func (k *keeper) spawn(p *packet, fds []int) (*child, error) {
	s := p.Spawn
	nheld := len(p.Names)
	if s == nil || nheld > len(fds) {
		closeFiles(fds)
		return nil, errors.New("bad spawn request")
	}
	own, keep := fds[:len(fds)-nheld], fds[len(fds)-nheld:]
	files := make([]uintptr, len(s.Files))
	for i, idx := range s.Files {
		switch {
		case idx == -1:
			files[i] = uintptr(k.devnull)
		case idx >= 0 && idx < len(own):
			files[i] = uintptr(own[idx])
		default:
			closeFiles(fds)
			return nil, fmt.Errorf("bad descriptor index %d", idx)
		}
	}
	pidfd := -1
	pid, err := procexec.BornIn(s.Cgroups, func(cgfd int) (int, error) {
		pidfd = -1
		return syscall.ForkExec(s.Path, s.Argv, &syscall.ProcAttr{Dir: s.Dir, Env: s.Env, Files: files,
			Sys: procexec.SysProcAttr(s.Cred, &pidfd, cgfd)})
	})
	closeFiles(own) // the child has its copies
	if err != nil {
		closeFiles(keep)
		if pid > 0 { // started, but outside its cgroups
			unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			for {
				if _, werr := unix.Wait4(pid, &ws, 0, nil); werr != unix.EINTR {
					break
				}
			}
			if pidfd >= 0 {
				unix.Close(pidfd)
			}
			return nil, err
		}
		return nil, &os.PathError{Op: "fork/exec", Path: s.Path, Err: err}
	}
	c := &child{pid: pid, pidfd: pidfd, label: p.Label, start: procexec.StartTime(pid)}
	for i, name := range p.Names {
		c.held = append(c.held, held{Name: name, FD: keep[i]})
	}
	k.children[pid] = c
	return c, nil
}

func (k *keeper) put(name string, fds []int) {
	if old, ok := k.store[name]; ok {
		closeFiles(old)
	} else {
		k.order = append(k.order, name)
	}
	k.store[name] = fds
}

func (k *keeper) drop(name string) {
	if old, ok := k.store[name]; ok {
		closeFiles(old)
		delete(k.store, name)
		for i, n := range k.order {
			if n == name {
				k.order = append(k.order[:i], k.order[i+1:]...)
				break
			}
		}
	}
}

// release forgets child pid: the daemon has recorded its end and read
// its last output. A child still running is forgotten too (the daemon let
// go of it); its exit will be reaped and ignored.
func (k *keeper) release(pid int) {
	c := k.children[pid]
	if c == nil {
		return
	}
	for _, h := range c.held {
		unix.Close(h.FD)
	}
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
	}
	delete(k.children, pid)
}

// daemonGone decides what follows the end of the daemon: the keeper's own
// end (quit), an upgrade, or a new daemon. done means Run returns err.
func (k *keeper) daemonGone() (done bool, err error) {
	d := k.d
	k.d = nil
	d.conn.Close()
	d.out.close()
	switch {
	case d.said == opQuit:
		k.logf("daemon pid %d stopped; the keeper exits", d.pid)
		return true, nil
	case d.said == opUpgrade && !k.stopping:
		err := k.reexec(d.exe) // returns only on failure
		k.logf("upgrading to %s failed: %v; starting the daemon again as it was", d.exe, err)
	case !d.ready && len(k.children) == 0 && len(k.store) == 0:
		// A daemon that never served, with nothing to keep: there is no
		// point in trying again (a bad setting, a home in use); the CLI
		// that started us has its reason.
		return true, fmt.Errorf("the daemon exited (%s) before serving", exitText(d.exit))
	default:
		k.logf("daemon pid %d exited (%s) after %s; its apps run on, starting a new daemon", d.pid, exitText(d.exit), time.Since(d.started).Round(time.Millisecond))
	}
	if d.ready {
		k.backoff = 0 // it served: not a daemon that cannot start
	}
	k.scheduleRestart()
	return false, nil
}

// scheduleRestart starts the next daemon at once, unless daemons keep
// dying before they serve: then with a growing delay, up to 5 s, so that
// a daemon that cannot start (a state it chokes on) does not spin.
func (k *keeper) scheduleRestart() {
	delay := k.backoff
	if k.stopping {
		delay = 0
	}
	k.backoff = min(max(2*k.backoff, 250*time.Millisecond), 5*time.Second)
	k.restart = time.NewTimer(delay)
}

func (k *keeper) daemonReady(word string) {
	d := k.d
	d.ready = word == "ok"
	if k.first {
		k.first = false
		if k.opt.ReadyFD >= 0 {
			unix.Write(k.opt.ReadyFD, []byte(word+"\n"))
			unix.Close(k.opt.ReadyFD)
			k.opt.ReadyFD = -1
		}
	}
}

func exitText(e *Exit) string {
	switch {
	case e == nil:
		return "unknown"
	case e.Signal != 0:
		return "killed by " + unix.SignalName(syscall.Signal(e.Signal))
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// logf appends a line to the log file, opened for each line: the daemon
// rotates it.
func (k *keeper) logf(format string, args ...any) {
	line := fmt.Sprintf(time.Now().Format("2006/01/02 15:04:05")+" keeper: "+format+"\n", args...)
	fd, err := private.OpenFD(k.opt.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE)
	if err != nil {
		os.Stderr.WriteString(line)
		return
	}
	unix.Write(fd, []byte(line))
	unix.Close(fd)
}

func dup(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// daemonRun is one daemon the keeper started.
type daemonRun struct {
	pid     int
	conn    *net.UnixConn
	out     *queue
	started time.Time
	exit    *Exit  // set once reaped
	eof     bool   // its connection ended
	ready   bool   // it said "ok"
	said    string // opQuit or opUpgrade before it went
	exe     string // opUpgrade: the binary to become
}

// startDaemon starts a daemon and sends it the inventory.
func (k *keeper) startDaemon() error {
	ours, theirs, err := seqpacketPair()
	if err != nil {
		return err
	}
	defer theirs.Close()
	var rp [2]int
	if err := unix.Pipe2(rp[:], unix.O_CLOEXEC); err != nil {
		ours.Close()
		return err
	}
	logfd, err := private.OpenFD(k.opt.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE)
	if err != nil {
		logfd = k.devnull
	}
	argv := append([]string{"tend"}, k.opt.RestartArgv...)
	if k.first {
		argv = append([]string{"tend"}, k.opt.Argv...)
	}
	// NOTIFY_SOCKET is the keeper's: systemd hears from its main process
	// only, so the daemon notifies through the keeper (opNotify).
	env := append(withoutEnv(k.opt.Env, FDEnv, StopEnv, stateFDEnv, k.opt.ReadyEnv, "NOTIFY_SOCKET"), FDEnv+"=3", k.opt.ReadyEnv+"=4")
	if k.stopping {
		env = append(env, StopEnv+"=1")
	}
	pid, err := syscall.ForkExec(k.exe, argv, &syscall.ProcAttr{
		Dir: "/", Env: env,
		Files: []uintptr{uintptr(k.devnull), uintptr(logfd), uintptr(logfd), theirs.Fd(), uintptr(rp[1])},
	})
	unix.Close(rp[1])
	if logfd != k.devnull {
		unix.Close(logfd)
	}
	if err != nil {
		unix.Close(rp[0])
		ours.Close()
		return fmt.Errorf("starting the daemon %s: %w", k.exe, err)
	}
	d := &daemonRun{pid: pid, conn: ours, out: newQueue(), started: time.Now()}
	k.d = d
	go d.out.drain(ours)
	go k.readReady(d, rp[0])
	k.sendInventory()
	go k.readDaemon(d)
	return nil
}

// withoutEnv returns env without the variables named keys. (exec(2)
// takes duplicates, and a program may read the first.)
func withoutEnv(env []string, keys ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}

// sendInventory queues, for the new daemon, every child and store entry,
// then the end marker.
func (k *keeper) sendInventory() {
	for pid, c := range k.children {
		p := &packet{Op: opChild, PID: pid, Label: c.label, Start: c.start, Exit: c.exit}
		var fds []int
		if c.pidfd >= 0 {
			if d, err := dup(c.pidfd); err == nil {
				fds = append(fds, d)
			}
		}
		if len(fds) == 0 {
			fds = append(fds, -1) // keep positions: the pidfd slot comes first
		}
		for _, h := range c.held {
			if d, err := dup(h.FD); err == nil {
				p.Names = append(p.Names, h.Name)
				fds = append(fds, d)
			}
		}
		if fds[0] == -1 {
			p.Err = "no pidfd"
			fds = fds[1:]
		}
		k.tell(p, fds)
	}
	for _, name := range k.order {
		var fds []int
		for _, fd := range k.store[name] {
			if d, err := dup(fd); err == nil {
				fds = append(fds, d)
			}
		}
		k.tell(&packet{Op: opFD, Name: name}, fds)
	}
	k.tell(&packet{Op: opEnd, Names: []string{capIdentity}}, nil)
}

// readDaemon feeds the daemon's packets to the loop until its end.
func (k *keeper) readDaemon(d *daemonRun) {
	r := newReader(d.conn)
	for {
		p, fds, err := r.recv()
		if err != nil {
			k.events <- event{d: d, err: err}
			return
		}
		k.events <- event{d: d, p: p, fds: fds}
	}
}

// readReady waits for the daemon's first word on its ready pipe.
func (k *keeper) readReady(d *daemonRun, fd int) {
	f := os.NewFile(uintptr(fd), "ready")
	line, _ := bufio.NewReader(f).ReadString('\n')
	f.Close()
	word := strings.TrimSpace(line)
	if word == "" {
		word = "it exited without a word; see " + k.opt.LogPath
	}
	k.events <- event{d: d, ready: word, isRdy: true}
}
