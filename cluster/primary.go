package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend/cluster/internal/seam"
	"github.com/tendhq/tend/internal/activation"
	"github.com/tendhq/tend/internal/logger"
	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/nodeipc"
)

// Sched is a scheduling policy: how the workers of a Primary share a
// listening socket (Node's cluster.schedulingPolicy).
type Sched string

// The scheduling policies.
const (
	// RoundRobin: the primary accepts every connection and hands it to the
	// free worker that has had the fewest, at most one in flight per
	// worker: sequential connections alternate exactly.
	// Node's SCHED_RR, its default outside Windows.
	RoundRobin Sched = "rr"
	// Shared: every worker accepts on the same socket and the kernel picks
	// one. Less work for the primary, but bursts can skew the balance.
	// Node's SCHED_NONE.
	Shared Sched = "shared"
)

// Errors of the primary side.
var (
	// ErrClosed is returned by Fork after Primary.Close.
	ErrClosed = errors.New("cluster: primary closed")
	// ErrSchedFrozen is returned by Setup when a worker has been forked
	// already and the settings change the scheduling policy (as in Node,
	// the policy is frozen at the first fork).
	ErrSchedFrozen = errors.New("cluster: scheduling policy cannot change after the first fork")
	// ErrListenTimeout is wrapped by the Error event of a worker that did
	// not listen within Settings.ListenTimeout.
	ErrListenTimeout = errors.New("cluster: worker did not listen in time")
)

// Settings configure how a Primary starts workers (Node's
// cluster.setupPrimary). The zero value re-executes this program with the
// same arguments, round robin.
type Settings struct {
	// Exec is the worker's executable. Default: this program
	// (os.Executable).
	Exec string
	// Args are the worker's arguments, without argv[0]. Nil means this
	// program's own (os.Args[1:]); use an empty non-nil slice for none.
	Args []string
	// Env holds KEY=VALUE pairs added to every worker's environment, which
	// is otherwise the primary's, minus the variables of any manager that
	// started the primary (NODE_CHANNEL_*, NODE_UNIQUE_ID, LISTEN_*,
	// NOTIFY_SOCKET), which are not for the workers.
	Env []string
	// Sched is the scheduling policy. Default: RoundRobin, or Shared when
	// NODE_CLUSTER_SCHED_POLICY=none, as in Node.
	Sched Sched
	// Stdout and Stderr receive the workers' output. Default: the
	// primary's own (Node's silent: false).
	Stdout, Stderr io.Writer
	// ListenTimeout, when positive, reports an Error event wrapping
	// ErrListenTimeout for a worker that has not listened that long after
	// its fork. The worker is left running: the program decides.
	ListenTimeout time.Duration
	// Logf receives diagnostics (bad messages from workers, accept
	// errors). Default: discard.
	Logf func(format string, args ...any)
}

// withDefaults validates s and fills in its defaults.
func (s Settings) withDefaults() (Settings, error) {
	switch s.Sched {
	case "":
		s.Sched = RoundRobin
		if os.Getenv("NODE_CLUSTER_SCHED_POLICY") == "none" {
			s.Sched = Shared
		}
	case RoundRobin, Shared:
	case "none":
		s.Sched = Shared
	default:
		return s, fmt.Errorf("cluster: unknown scheduling policy %q (want %q or %q)", s.Sched, RoundRobin, Shared)
	}
	if s.Exec == "" {
		exe, err := os.Executable()
		if err != nil {
			return s, fmt.Errorf("cluster: finding this program to re-execute as a worker: %w", err)
		}
		s.Exec = exe
	}
	if s.Args == nil && len(os.Args) > 1 {
		s.Args = os.Args[1:]
	}
	for _, kv := range s.Env {
		if !strings.Contains(kv, "=") {
			return s, fmt.Errorf("cluster: Settings.Env: %q is not KEY=VALUE", kv)
		}
	}
	if s.Stdout == nil {
		s.Stdout = os.Stdout
	}
	if s.Stderr == nil {
		s.Stderr = os.Stderr
	}
	s.Logf = logger.Logf(s.Logf).Or()
	return s, nil
}

// A Primary starts workers and owns the sockets they listen on. Its
// methods are safe for concurrent use. Most programs use the package-level
// functions (Fork, Events, ...), which act on Default().
type Primary struct {
	np     *nodecluster.Primary
	spawn  seam.Spawner // nil: real processes
	events *queue[Event]

	mu      sync.Mutex
	s       Settings
	forked  bool
	nextID  int
	workers map[int]*Worker
	closed  bool
}

// NewPrimary returns a Primary with settings s. Use it for several
// independent clusters in one program, or in tests; Default() is the
// process's own.
func NewPrimary(s Settings) (*Primary, error) { return newPrimary(s, nil) }

func newPrimary(s Settings, spawn seam.Spawner) (*Primary, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Primary{
		np:      nodecluster.New(nodecluster.Options{Sched: string(s.Sched), Logf: s.Logf}),
		spawn:   spawn,
		events:  newQueue[Event](),
		s:       s,
		workers: map[int]*Worker{},
	}, nil
}

// Setup replaces the settings used by later forks (Node's setupPrimary).
// Workers already running are unaffected. Once a worker has been forked
// the scheduling policy cannot change: ErrSchedFrozen.
func (p *Primary) Setup(s Settings) error {
	s, err := s.withDefaults()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.Sched != p.s.Sched {
		if p.forked {
			return fmt.Errorf("%w (it is %q)", ErrSchedFrozen, p.s.Sched)
		}
		p.np = nodecluster.New(nodecluster.Options{Sched: string(s.Sched), Logf: s.Logf})
	}
	p.s = s
	p.events.push(Event{Kind: Configured})
	return nil
}

// Settings returns the settings in effect, defaults filled in.
func (p *Primary) Settings() Settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s
}

// Fork starts a new worker with env added to its environment (Node's
// cluster.fork(env)). It returns once the process has started; the Online
// event follows when the worker's cluster code runs.
func (p *Primary) Fork(env map[string]string) (*Worker, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.forked = true
	p.nextID++ // ids start at 1, as in Node
	id, s := p.nextID, p.s
	p.mu.Unlock()

	parent, child, err := nodeipc.NewPair()
	if err != nil {
		return nil, fmt.Errorf("cluster: forking worker %d: %w", id, err)
	}
	wenv := workerEnv(s, env, id)
	var proc seam.Process
	if p.spawn != nil {
		proc, err = p.spawn(id, child, wenv)
	} else {
		proc, err = startProcess(s, child, wenv)
	}
	child.Close() // the worker has its copy; ours would hide its exit from Recv
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("cluster: forking worker %d: %w", id, err)
	}
	w := &Worker{p: p, id: id, proc: proc, pid: proc.Pid(),
		disconnected: make(chan struct{}), listening: make(chan struct{}), done: make(chan struct{})}
	p.mu.Lock()
	p.workers[id] = w
	p.mu.Unlock()

	// Events of one worker arrive on their own channel, so a slow consumer
	// of one never delays another's protocol; 16 absorbs the start burst.
	evs := make(chan nodecluster.Event, 16)
	p.events.push(Event{Kind: Forked, Worker: w})
	p.np.AddWorker(id, parent, evs)
	go w.forward(evs)
	go w.wait()
	if s.ListenTimeout > 0 {
		go w.listenTimeout(s.ListenTimeout)
	}
	return w, nil
}

// workerEnv is the primary's environment without other managers'
// variables, then s.Env, then env, then the channel and worker id.
func workerEnv(s Settings, env map[string]string, id int) []string {
	out := activation.StripEnv(nodeipc.StripEnv(os.Environ()))
	out = slices.DeleteFunc(out, func(kv string) bool { return strings.HasPrefix(kv, "NOTIFY_SOCKET=") })
	out = append(out, s.Env...)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	out = append(out, "NODE_UNIQUE_ID="+strconv.Itoa(id))
	return append(out, nodeipc.Env(3)...)
}

// startProcess runs the worker with the channel as fd 3.
func startProcess(s Settings, channel *os.File, env []string) (seam.Process, error) {
	cmd := exec.Command(s.Exec, s.Args...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
	// ExtraFiles calls Fd() on channel, which is harmless here: the
	// socketpair end is this worker's alone (unlike a shared listener).
	cmd.ExtraFiles = []*os.File{channel}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return execProcess{cmd}, nil
}

type execProcess struct{ cmd *exec.Cmd }

func (e execProcess) Pid() int                   { return e.cmd.Process.Pid }
func (e execProcess) Signal(sig os.Signal) error { return e.cmd.Process.Signal(sig) }
func (e execProcess) Wait() (int, os.Signal) {
	e.cmd.Wait()
	ws, ok := e.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return -1, ws.Signal()
	}
	return e.cmd.ProcessState.ExitCode(), nil
}

// Workers returns the workers that have not exited, by id.
func (p *Primary) Workers() []*Worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Worker, 0, len(p.workers))
	for _, w := range p.workers {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Events returns the channel on which every worker's events arrive. Events
// are queued (up to 64Ki, then dropped) until read, so a program may start
// reading after its forks without missing any. The channel is closed after
// Close.
func (p *Primary) Events() <-chan Event { return p.events.out }

// Broadcast sends v, encoded as JSON, to every worker. It returns the
// encoding error, or the joined errors of workers it could not reach.
func (p *Primary) Broadcast(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cluster: broadcast: encoding message: %w", err)
	}
	var errs []error
	for _, w := range p.Workers() {
		if err := w.sendRaw(b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Disconnect disconnects every connected worker (Node's
// cluster.disconnect()) and returns once each has closed its channel, or
// ctx ends: they take no new connection, finish what they serve and exit
// by themselves. It returns the joined errors of workers it could not
// reach. Unlike Node's primary it keeps its listening sockets, as it does
// while workers restart: Fork more workers, or Close.
func (p *Primary) Disconnect(ctx context.Context) error {
	var errs []error
	var ws []*Worker
	for _, w := range p.Workers() {
		if w.IsConnected() && !w.IsDead() {
			ws = append(ws, w)
		}
	}
	for _, w := range ws {
		if err := w.Disconnect(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, w := range ws {
		select {
		case <-w.disconnected:
		case <-w.done:
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("cluster: disconnecting: %w", ctx.Err()))...)
		}
	}
	return errors.Join(errs...)
}

// Close kills the remaining workers (SIGKILL), waits for them, closes the
// listening sockets and then the Events channel. For a graceful stop,
// Disconnect the workers and wait for their Exit events first.
func (p *Primary) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	for _, w := range p.Workers() {
		w.Kill(syscall.SIGKILL)
	}
	for _, w := range p.Workers() {
		<-w.done
	}
	p.np.Close()
	p.events.close()
	return nil
}

// A Worker is the primary's handle on one worker process.
type Worker struct {
	p    *Primary
	id   int
	pid  int
	proc seam.Process

	disconnected chan struct{} // closed after the Disconnected event
	listening    chan struct{} // closed at the first Listening event
	listenOnce   sync.Once
	done         chan struct{} // closed after the Exit event

	mu       sync.Mutex
	intended bool // Disconnect or Kill was called, or the worker disconnected itself
	dead     bool // its process has exited
	code     int
	sig      os.Signal
}

// ID returns the worker's id: 1 for the first fork, then 2, 3, ...
// It is NODE_UNIQUE_ID in the worker and never reused by a Primary.
func (w *Worker) ID() int { return w.id }

// PID returns the worker's process id.
func (w *Worker) PID() int { return w.pid }

// Send sends v to the worker, encoded as JSON: Messages() in the worker
// receives it. Values that json.Marshal rejects return its error and send
// nothing.
func (w *Worker) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cluster: message to worker %d: %w", w.id, err)
	}
	return w.sendRaw(b)
}

func (w *Worker) sendRaw(b []byte) error {
	if err := w.p.np.Send(w.id, b); err != nil {
		return fmt.Errorf("cluster: message to worker %d: %w", w.id, err)
	}
	return nil
}

// Kill takes the worker out of rotation and sends it sig (SIGTERM when
// nil), like Node's worker.kill(). ExitedAfterDisconnect is then true.
func (w *Worker) Kill(sig os.Signal) error {
	if sig == nil {
		sig = syscall.SIGTERM
	}
	w.mu.Lock()
	w.intended = true
	w.mu.Unlock()
	w.p.np.Drain(w.id)
	if err := w.proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cluster: killing worker %d (pid %d): %w", w.id, w.pid, err)
	}
	return nil
}

// Disconnect stops the worker gracefully: it gets no new connections,
// closes its listeners, lets Serve finish in-flight requests
// (http.Server.Shutdown), closes its channel, and exits when its main
// returns. Like Node, Disconnect sets no deadline: Kill a worker that takes
// too long.
func (w *Worker) Disconnect() error {
	w.mu.Lock()
	w.intended = true
	w.mu.Unlock()
	if err := w.p.np.Disconnect(w.id); err != nil {
		return fmt.Errorf("cluster: disconnecting worker %d: %w", w.id, err)
	}
	return nil
}

// IsConnected reports whether the worker's channel is still open (Node's
// worker.isConnected()).
func (w *Worker) IsConnected() bool {
	select {
	case <-w.disconnected:
		return false
	default:
		return true
	}
}

// IsDead reports whether the worker's process has exited (Node's
// worker.isDead()). Its Exit event may still be on its way.
func (w *Worker) IsDead() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dead
}

// ExitedAfterDisconnect reports whether the worker was meant to go: the
// primary asked it (Disconnect or Kill), or it disconnected by itself
// (Disconnect in the worker). It tells planned exits from crashes in an
// Exit handler, as Node's worker.exitedAfterDisconnect does.
func (w *Worker) ExitedAfterDisconnect() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.intended
}

// Done returns a channel closed once the worker has exited and its Exit
// event is queued.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Wait blocks until the worker exits and returns its exit code, or -1
// and the signal that killed it.
func (w *Worker) Wait() (code int, sig os.Signal) {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.code, w.sig
}

// forward turns the protocol's events into Events.
func (w *Worker) forward(evs <-chan nodecluster.Event) {
	for {
		var ev nodecluster.Event
		select {
		case ev = <-evs:
		case <-w.done:
			return
		}
		out := Event{Worker: w}
		switch ev.Kind {
		case nodecluster.Online:
			out.Kind = Online
		case nodecluster.Listening:
			out.Kind, out.Addr = Listening, listenAddr(ev.Address, ev.Port)
			w.listenOnce.Do(func() { close(w.listening) })
		case nodecluster.Message:
			out.Kind, out.Msg = Message, ev.Msg
		case nodecluster.Ready:
			out.Kind, out.Msg = Message, json.RawMessage(`"ready"`)
		case nodecluster.Error:
			out.Kind, out.Addr, out.Err = Error, listenAddr(ev.Address, ev.Port), ev.Err
		case nodecluster.Disconnected:
			out.Kind, out.Err = Disconnected, ev.Err
		case nodecluster.Leaving:
			w.mu.Lock()
			w.intended = true
			w.mu.Unlock()
			continue
		default:
			continue
		}
		w.p.events.push(out)
		if ev.Kind == nodecluster.Disconnected {
			close(w.disconnected)
			return
		}
	}
}

// listenAddr is a worker's listen address: TCP, or a unix socket's path
// (port -1).
func listenAddr(address string, port int) net.Addr {
	if port < 0 {
		return &net.UnixAddr{Name: address, Net: "unix"}
	}
	return &net.TCPAddr{IP: net.ParseIP(address), Port: port}
}

// disconnectGrace is how long an exited worker's channel may take to
// report EOF. It normally does at once; only a copy of the channel leaked
// to a grandchild could hold it open, and the worker is gone regardless.
const disconnectGrace = 2 * time.Second

// wait reports the worker's exit after its Disconnected event.
func (w *Worker) wait() {
	code, sig := w.proc.Wait()
	w.mu.Lock()
	w.dead = true
	w.mu.Unlock()
	select {
	case <-w.disconnected:
	case <-time.After(disconnectGrace):
	}
	w.p.np.RemoveWorker(w.id)
	w.mu.Lock()
	w.code, w.sig = code, sig
	w.mu.Unlock()
	w.p.mu.Lock()
	delete(w.p.workers, w.id)
	w.p.mu.Unlock()
	w.p.events.push(Event{Kind: Exit, Worker: w, Code: code, Signal: sig})
	close(w.done)
}

func (w *Worker) listenTimeout(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		w.p.events.push(Event{Kind: Error, Worker: w,
			Err: fmt.Errorf("%w: worker %d (pid %d) has not called Listen %v after its fork", ErrListenTimeout, w.id, w.pid, d)})
	case <-w.listening:
	case <-w.done:
	}
}
