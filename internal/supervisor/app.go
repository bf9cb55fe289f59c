package supervisor

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/logfile"
	"github.com/tendhq/tend/internal/nodepreload"
	"github.com/tendhq/tend/internal/procexec"
)

// Proc is a running instance process, as the App sees it. *procexec.Process
// implements it; tests substitute fakes through Options.Start.
type Proc interface {
	PID() int
	Done() <-chan struct{}
	Status() procexec.Status
	Signal(syscall.Signal) error  // to its process group and descendants
	Tree() []procexec.Ref         // live descendants
	KillRest(tree []procexec.Ref) // after exit: SIGKILL the rest of its group and tree
	// Release says that the process's end is written down and its output
	// read: whoever kept things for it (tend's keeper) may let them go.
	Release()
}

// Store keeps copies of an app's listening sockets outside the daemon
// (tend's keeper), so that they outlive it: names are the app's own.
type Store interface {
	Put(name string, fds ...int) error
	Drop(name string) error
}

// Options configure an App. The zero value of each field is usable except
// LogDir.
type Options struct {
	LogDir string                        // where per-instance log files go unless the spec names them
	RunDir string                        // private directory for NOTIFY_SOCKETs; "" disables sd_notify
	NewID  func() int                    // allocates global instance ids; nil counts from 0
	Logf   func(format string, a ...any) // the daemon's log; nil discards
	// Start starts a process; nil means procexec.Start.
	Start func(procexec.Cmd) (Proc, error)
	// Shim is the tend executable, re-executed as the LISTEN_PID shim in
	// socket mode.
	Shim string
	// LogDefaults apply to apps that set no rotation of their own.
	LogDefaults LogDefaults
	// Poller reads the instances' output pipes; nil reads each pipe in a
	// goroutine of its own (simpler, dearer under a flood).
	Poller *logfile.Poller
	// Events receives changes of instances' states and removals; nil
	// discards them.
	Events Events
	// NodePreloads are given to Node apps with NODE_OPTIONS=--require: the
	// listen preload in socket mode (an unmodified listen(port) takes fd 3),
	// the drain preload in cluster mode. Empty paths load nothing.
	NodePreloads nodepreload.Paths
	// StateDir, if set, is where the app writes its State after every
	// change, for a daemon that takes over from this one (Resume).
	StateDir string
	// Store, if set, keeps copies of the app's listening sockets.
	Store Store
}

// Events is where an app reports changes of its instances.
type Events interface {
	// Wanted reports whether anyone reads events now: if not, the app
	// does not look for changes.
	Wanted() bool
	// Publish is called in the app's actor: it must not block.
	Publish(tend.Event)
}

// LogDefaults are the daemon-wide log rotation settings; zero values
// mean tend's defaults (tend.DefaultLogMaxSize, tend.DefaultLogRetain).
type LogDefaults struct {
	MaxSize  int64
	Retain   int
	Compress bool
}

// maxExits bounds the restart history kept per app for describe.
const maxExits = 20

// App supervises the instances of one app. Its methods are safe for
// concurrent use; all state lives in one goroutine (run).
type App struct {
	opt     Options
	created time.Time
	share   *share

	ops  chan op
	quit chan struct{}

	// Owned by the actor goroutine.
	spec       tend.AppSpec
	res        Resolved
	slots      []*slot
	exits      []tend.Exit
	nextWID    int // worker ids: one per process, unique in the app
	reloading  bool
	closing    bool // Close began: nothing starts any more
	schedMu    sync.Mutex
	schedStop  chan struct{} // ends the cron and watch loops of the spec in force
	lastReload *tend.ReloadReport
	reloads    map[string]int // by outcome
	ended      []*run         // processes that ended, to release once written down
	written    []byte         // the State last written
	gone       bool           // deleted: its State is removed and not written again
	// closingWritten: the State written last says a delete is under way.
	closingWritten bool

	view     atomic.Pointer[[]instView]
	specView atomic.Pointer[tend.AppSpec]
	resView  atomic.Pointer[Resolved]
}

// slot is one instance position of an app: a stable id, index and log
// sink, and the processes that fill it over time.
type slot struct {
	id, index int
	sink      *logfile.Sink
	outPath   string
	errPath   string

	cur  *run   // the serving process, or the one starting
	next *run   // a reload's replacement, until it is ready
	old  []*run // processes a reload is retiring

	removing     bool // Remove began: nothing starts in it any more
	status       tend.Status
	restarts     int
	unstable     int
	backoff      time.Duration
	problem      string
	lastExit     *tend.Exit
	restartTimer *time.Timer
	restartAt    time.Time
	handedBefore uint64 // connections handed to this slot's past processes
	// output holds, per process started, a channel closed once its
	// stdout and stderr reached EOF: all it wrote is in the sink.
	output []chan struct{}
}

// instView is a slot as published for lock-free readers.
type instView struct {
	tend.Instance
	started   time.Time
	restartAt time.Time
	wids      []int // live processes, for connection counts
	before    uint64
}

// New creates the app's slots, log sinks and shared port. It starts no
// process: call Start.
func New(spec tend.AppSpec, res Resolved, opt Options) (*App, error) {
	opt = opt.withDefaults()
	if spec.Instances < 1 {
		spec.Instances = 1
	}
	w, err := checkSchedules(&spec)
	if err != nil {
		return nil, err
	}
	sh, err := newShare(&spec, res, opt)
	if err != nil {
		w.close()
		return nil, err
	}
	a := newApp(spec, res, opt, sh)
	for i := range spec.Instances {
		s, err := a.newSlot(a.opt.NewID(), i)
		if err != nil {
			a.closeSinks()
			sh.close()
			w.close()
			return nil, err
		}
		a.slots = append(a.slots, s)
	}
	sh.keep()
	a.begin(w)
	return a, nil
}

func (opt Options) withDefaults() Options {
	if opt.Start == nil {
		opt.Start = func(c procexec.Cmd) (Proc, error) { return procexec.Start(c) }
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	if opt.NewID == nil {
		n := 0
		opt.NewID = func() int { n++; return n - 1 }
	}
	return opt
}

func newApp(spec tend.AppSpec, res Resolved, opt Options, sh *share) *App {
	return &App{spec: spec, res: res, opt: opt, share: sh, created: time.Now(), ops: make(chan op), quit: make(chan struct{})}
}

// begin publishes the app's state and starts its goroutines: the actor,
// the channel events, the cron and watch schedules (on w).
func (a *App) begin(w *watcher) {
	a.persist()
	a.publish()
	go a.run()
	go a.forwardEvents()
	a.startSchedules(w)
}

func (a *App) newSlot(id, index int) (*slot, error) {
	s := &slot{id: id, index: index, status: tend.StatusStopped}
	s.outPath = a.logPath(a.spec.OutFile, "out", index)
	s.errPath = a.logPath(a.spec.ErrorFile, "error", index)
	d := a.opt.LogDefaults
	sink, err := logfile.Open(logfile.Options{
		App: a.spec.Name, Instance: index,
		OutPath: s.outPath, ErrPath: s.errPath,
		TimeLayout: a.spec.LogDateFormat, JSON: a.spec.LogType == "json",
		MaxSize:  cmp.Or(a.spec.LogMaxSize, d.MaxSize, tend.DefaultLogMaxSize),
		Keep:     cmp.Or(a.spec.LogRetain, d.Retain, tend.DefaultLogRetain),
		Compress: a.spec.LogCompress || d.Compress,
	})
	if err != nil {
		return nil, tend.Errorf(tend.EINVALID, "app %s: opening log files: %v", a.spec.Name, err)
	}
	s.sink = sink
	return s, nil
}

// logPath names an instance's log file: PM2's layout, <name>-out-<i>.log,
// unless the spec gives a path; a given path is shared by all instances
// only with merge_logs.
func (a *App) logPath(given, kind string, index int) string {
	if given == "" {
		name := a.spec.Name + "-" + kind
		if !a.spec.MergeLogs {
			name += "-" + strconv.Itoa(index)
		}
		return filepath.Join(a.opt.LogDir, name+".log")
	}
	if !filepath.IsAbs(given) {
		given = filepath.Join(a.spec.Cwd, given)
	}
	if given == "/dev/null" || a.spec.MergeLogs || a.spec.Instances == 1 && index == 0 {
		return given
	}
	ext := filepath.Ext(given)
	return strings.TrimSuffix(given, ext) + "-" + strconv.Itoa(index) + ext
}

// op is a function for the actor; done, if set, is closed once the
// state it left is written down and published. A quiet op changes
// nothing that is written down (a read, a message from the app).
type op struct {
	f     func()
	done  chan struct{}
	quiet bool
}

func (a *App) run() {
	for {
		select {
		case o := <-a.ops:
			batch := []op{o}
			o.f()
			// What else is waiting runs now too, and the State is written
			// once for all: a thousand instances stopping at once would
			// otherwise write it a thousand times.
		more:
			for len(batch) < maxBatch {
				select {
				case <-a.quit:
					break more
				default:
				}
				select {
				case o := <-a.ops:
					batch = append(batch, o)
					o.f()
				default:
					break more
				}
			}
			if slices.ContainsFunc(batch, func(o op) bool { return !o.quiet }) {
				a.persist()
			}
			a.publish()
			for _, o := range batch {
				if o.done != nil {
					close(o.done)
				}
			}
		case <-a.quit:
			return
		}
	}
}

// maxBatch bounds the ops run before their effect is written down and
// published, so that a flood of them never delays a reader for long.
const maxBatch = 64

// post runs f in the actor; false when the app is closed.
func (a *App) post(f func()) bool { return a.send(op{f: f}) }

// read runs f, which changes nothing, in the actor and waits for it.
func (a *App) read(f func()) bool {
	done := make(chan struct{})
	if !a.send(op{f: f, done: done, quiet: true}) {
		return false
	}
	<-done
	return true
}

func (a *App) send(o op) bool {
	select {
	case a.ops <- o:
		return true
	case <-a.quit:
		return false
	}
}

// call runs f in the actor and waits until it has run and its effect is
// published: Instances after call sees it.
func (a *App) call(f func()) bool {
	done := make(chan struct{})
	if !a.send(op{f: f, done: done}) {
		return false
	}
	<-done
	return true
}

// Name returns the app's name.
func (a *App) Name() string { return a.specView.Load().Name }

// Spec returns the app's current spec.
func (a *App) Spec() tend.AppSpec { return *a.specView.Load() }

// Resolved returns what runs for the current spec and how it shares its
// port.
func (a *App) Resolved() Resolved { return *a.resView.Load() }

// Start launches every selected slot that is not running (all when ids is
// nil), resetting their restart counters. It returns once the processes are
// spawned; an error means a process could not be spawned at all.
func (a *App) Start(ctx context.Context, ids []int) error {
	var errs []string
	if !a.call(func() {
		for _, s := range a.selected(ids) {
			if err := a.start(s); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}) {
		return errClosed(a.Name())
	}
	if len(errs) > 0 {
		return tend.Errorf(tend.EFAILED, "%s", strings.Join(errs, "; "))
	}
	return nil
}

// Stop stops the selected slots (all when ids is nil) and waits until their
// processes and process groups are gone, or ctx ends.
func (a *App) Stop(ctx context.Context, ids []int) error {
	return a.stopAndWait(ctx, ids, "stop")
}

// Restart stops then starts the selected slots. The app's port stays
// bound meanwhile: clients wait in the backlog.
func (a *App) Restart(ctx context.Context, ids []int) error {
	if err := a.stopAndWait(ctx, ids, "restart"); err != nil {
		return err
	}
	var errs []string
	a.call(func() {
		for _, s := range a.selected(ids) {
			if s.removing || a.closing {
				continue // going away meanwhile
			}
			s.restarts++
			if err := a.start(s); err != nil {
				errs = append(errs, err.Error())
			}
		}
	})
	if len(errs) > 0 {
		return tend.Errorf(tend.EFAILED, "%s", strings.Join(errs, "; "))
	}
	return nil
}

// Close stops every instance, closes the log files and the port, and ends
// the actor.
func (a *App) Close(ctx context.Context) error {
	// From here on no replacement (reload, cron, watch, memory) starts a
	// process: the stop below must be the last word.
	a.call(func() { a.closing = true })
	err := a.stopAndWait(ctx, nil, "delete")
	a.awaitOutput(nil)
	a.call(func() {
		if a.opt.Events != nil && a.opt.Events.Wanted() {
			a.emitChanges(a.view.Load(), nil)
		}
		a.closeSinks()
		a.share.close()
		a.forget()
		close(a.quit)
	})
	return err
}

func (a *App) closeSinks() {
	for _, s := range a.slots {
		if s.sink != nil {
			s.sink.Close()
		}
	}
}

// outputGrace bounds how long closing a sink waits for the output its
// stopped processes still have in their pipes (their last words).
const outputGrace = time.Second

// awaitOutput waits, up to outputGrace, until the stopped processes of the
// selected slots (all for nil) have no output left in their pipes, so that
// closing their sinks loses none of it.
func (a *App) awaitOutput(ids []int) {
	var outs []chan struct{}
	a.read(func() {
		for _, s := range a.selected(ids) {
			outs = append(outs, s.output...)
		}
	})
	deadline := time.NewTimer(outputGrace)
	defer deadline.Stop()
	for _, c := range outs {
		select {
		case <-c:
		case <-deadline.C:
			return
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (a *App) stopAndWait(ctx context.Context, ids []int, cause string) error {
	var waits []chan struct{}
	if !a.call(func() {
		for _, s := range a.selected(ids) {
			waits = append(waits, a.stop(s, cause)...)
		}
	}) {
		return errClosed(a.Name())
	}
	if err := waitAll(ctx, waits, a.Name()); err != nil {
		return err
	}
	// The exits were handled in the actor; their state is published after
	// the op that handled them: wait for that too, so that what the caller
	// shows next (tend stop prints the table) says stopped.
	a.read(func() {})
	return nil
}

func waitAll(ctx context.Context, waits []chan struct{}, name string) error {
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return tend.Errorf(tend.EFAILED, "app %s: stopping: %v", name, ctx.Err())
		}
	}
	return nil
}

func errClosed(name string) error {
	return tend.Errorf(tend.ENOTFOUND, "app %s was deleted", name)
}

// selected returns the slots with the given ids, all of them for nil.
func (a *App) selected(ids []int) []*slot {
	if ids == nil {
		return a.slots
	}
	var out []*slot
	for _, s := range a.slots {
		if slices.Contains(ids, s.id) {
			out = append(out, s)
		}
	}
	return out
}

// start launches s unless it is running. Runs in the actor.
func (a *App) start(s *slot) error {
	if s.cur != nil && !s.cur.stopping || s.removing || a.closing {
		return nil
	}
	if s.cur != nil {
		// Still stopping: it is retired like a reload's old process, so
		// that its end is handled (and whoever waits for it released).
		s.old = append(s.old, s.cur)
		s.cur = nil
	}
	a.cancelRestart(s)
	s.unstable, s.backoff, s.problem = 0, 0, ""
	r, err := a.launch(s)
	if err != nil {
		s.status, s.problem = tend.StatusErrored, err.Error()
		return fmt.Errorf("starting %s[%d]: %w", a.spec.Name, s.index, err)
	}
	a.takeOver(s, r)
	return nil
}

// takeOver makes r the serving process of s.
func (a *App) takeOver(s *slot, r *run) {
	s.cur = r
	s.status = tend.StatusOnline
	if a.readySignal() != "" && !r.ready {
		s.status = tend.StatusLaunching
	}
}

// launch spawns a process for s, wiring its output to the slot's sink, its
// readiness signals and the shared port. Runs in the actor.
func (a *App) launch(s *slot) (*run, error) {
	pipes, err := a.newPipes(s)
	if err != nil {
		return nil, err
	}
	a.nextWID++
	r := &run{slot: s, wid: a.nextWID, marker: newMarker()}
	env := append(instanceEnv(&a.spec, s.index, s.id, r.wid, nil), procexec.MarkerEnv+"="+r.marker)
	cmd := procexec.Cmd{Path: a.res.Path, Args: a.res.Argv, Env: env, Dir: a.spec.Cwd, Stdout: pipes.out, Stderr: pipes.err,
		Label: label{App: a.spec.Name, Slot: s.id, WID: r.wid}.String(),
		Hold:  []procexec.Held{{Name: heldOut, FD: pipes.readOut}, {Name: heldErr, FD: pipes.readErr}}}
	after, probe, err := a.share.launch(&cmd, &a.spec, a.opt.Shim, r.wid, a.opt.Store != nil)
	if err != nil {
		pipes.abort()
		return nil, err
	}
	if preload := a.nodePreload(); preload != "" {
		cmd.Env = append(cmd.Env, "NODE_OPTIONS="+nodepreload.Options(envValue(cmd.Env, "NODE_OPTIONS"), preload))
	}
	notifyDup := a.listenNotify(r, &cmd)
	if a.res.Expand {
		cmd.Args = expandArgs(cmd.Args, cmd.Env)
	}
	p, err := a.opt.Start(cmd)
	after(err == nil)
	if notifyDup != nil {
		notifyDup.Close()
	}
	if err != nil {
		pipes.abort()
		r.closeNotify()
		return nil, err
	}
	r.out = pipes.started()
	s.output = append(slices.DeleteFunc(s.output, isClosed), r.out)
	r.proc, r.started, r.probe = p, time.Now(), probe
	a.watchReady(r, cmd.Env)
	a.watchExit(r)
	return r, nil
}

// newMarker returns a value for procexec.MarkerEnv: random, so that no
// other run, of this tend or another, has it.
func newMarker() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// watchExit handles r's end in the actor once its process is gone.
func (a *App) watchExit(r *run) {
	pid := r.proc.PID()
	select {
	case <-r.proc.Done(): // found gone (on a resume): its pid is nobody's
		go a.post(func() { a.exited(r, time.Now()) })
		return
	default:
	}
	addInstance(pid)
	go func() {
		<-r.proc.Done()
		removeInstance(pid)
		gone := time.Now()
		a.post(func() { a.exited(r, gone) })
	}()
}

// nodePreload is the preload the app's processes load, if any.
func (a *App) nodePreload() string {
	switch {
	case !a.res.Node:
		return ""
	case a.res.Mode == tend.ModeSocket:
		return a.opt.NodePreloads.Listen
	case a.res.Mode == tend.ModeCluster:
		return a.opt.NodePreloads.Drain
	}
	return ""
}

// exited handles the end of run r, seen at gone. Runs in the actor.
func (a *App) exited(r *run, gone time.Time) {
	s := r.slot
	st := r.proc.Status()
	now := time.Now()
	up := now.Sub(r.started)
	// The instance is its process group: whatever the app left behind in
	// it (or forked out of it, seen when the stop began) goes with it, so
	// no orphan keeps the port or the pipes.
	r.proc.KillRest(append(r.tree, procexec.Refs(procexec.Escaped(r.marker, procexec.Reapers(), isInstance, gone))...))
	a.ended = append(a.ended, r) // released once its end is written down
	s.handedBefore += a.share.connections()[r.wid]
	// Its leave may have been said just before it exited: the primary
	// knows it already, whatever the order the two reach the actor in.
	r.left = r.left || a.share.left(r.wid)
	a.share.exited(r.wid)
	r.closeNotify()
	if r.killTimer != nil {
		r.killTimer.Stop()
	}
	r.exited = true
	ex := tend.Exit{Time: now, Code: st.Code, Signal: st.SignalName(), UptimeMS: up.Milliseconds()}
	r.failReady(fmt.Errorf("exited (%s) after %s, before it was ready", st, up.Round(time.Millisecond)))
	switch {
	case r == s.next:
		s.next = nil
		ex.Cause = cmp.Or(r.stopCause, "reload")
		a.recordExit(s, ex)
		r.done()
		return
	case slices.Contains(s.old, r):
		s.old = slices.DeleteFunc(s.old, func(x *run) bool { return x == r })
		ex.Cause = r.stopCause
		a.recordExit(s, ex)
		r.done()
		return
	case r != s.cur:
		return
	}
	s.cur = nil
	if r.stopping {
		ex.Cause = r.stopCause
		a.recordExit(s, ex)
		s.status = tend.StatusStopped
		r.done()
		return
	}
	switch {
	case st.Code != 0:
		ex.Cause = "crash" // also after a disconnect: a crash it is
	case r.left:
		ex.Cause = "disconnect" // meant, as Node's exitedAfterDisconnect says
	default:
		ex.Cause = "exit"
	}
	a.recordExit(s, ex)
	a.opt.Logf("%s[%d] pid %d: %s after %s", a.spec.Name, s.index, r.proc.PID(), st, up.Round(time.Millisecond))
	a.afterExit(s, st.Code, st.Signal != 0, up)
}

// afterExit applies the restart policy to an unexpected exit.
func (a *App) afterExit(s *slot, code int, signaled bool, up time.Duration) {
	d := decide(&a.spec, code, signaled, up, s.unstable, s.backoff)
	s.unstable, s.backoff = d.unstable, d.backoff
	switch d.act {
	case actStop:
		s.status = tend.StatusStopped
	case actErrored:
		s.status = tend.StatusErrored
		s.problem = fmt.Sprintf("exited %d times in a row within min_uptime; not restarting (tend restart %s to try again)", d.unstable, a.spec.Name)
		a.opt.Logf("%s[%d]: %s", a.spec.Name, s.index, s.problem)
	case actRestart:
		s.status = tend.StatusWaiting
		delay := d.delay
		if d.backoff > 0 {
			delay = jitter(delay) // a fixed restart_delay stays as given
		}
		a.armRestart(s, delay)
	}
}

// armRestart starts a new process in s after delay, unless something
// else fills or stops s first. Runs in the actor (or before it starts).
func (a *App) armRestart(s *slot, delay time.Duration) {
	delay = max(delay, 0)
	s.restartAt = time.Now().Add(delay)
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		a.post(func() {
			if s.restartTimer != t || s.cur != nil || s.removing || a.closing {
				return
			}
			s.restartTimer = nil
			s.restarts++
			r, err := a.launch(s)
			if err != nil {
				s.problem = err.Error()
				a.recordExit(s, tend.Exit{Time: time.Now(), Code: -1, Cause: "spawn failed"})
				a.afterExit(s, -1, false, 0)
				return
			}
			a.takeOver(s, r)
		})
	})
	s.restartTimer = t
}

func (a *App) cancelRestart(s *slot) {
	if s.restartTimer != nil {
		s.restartTimer.Stop()
		s.restartTimer = nil
	}
}

func (a *App) recordExit(s *slot, ex tend.Exit) {
	s.lastExit = &ex
	a.exits = append(a.exits, ex)
	if len(a.exits) > maxExits {
		a.exits = a.exits[len(a.exits)-maxExits:]
	}
}

// stop begins stopping every process of s and returns channels closed once
// each is gone. Runs in the actor.
func (a *App) stop(s *slot, cause string) []chan struct{} {
	a.cancelRestart(s)
	var waits []chan struct{}
	for _, r := range append([]*run{s.cur, s.next}, s.old...) {
		if r != nil {
			waits = append(waits, a.stopRun(r, cause))
		}
	}
	s.status = tend.StatusStopped
	if s.cur != nil {
		s.status = tend.StatusStopping
	}
	return waits
}

// stopRun stops one process gracefully: it leaves the rotation, gets the
// app's stop signal (after a Node worker's disconnect), and SIGKILL after
// kill_timeout. Runs in the actor.
func (a *App) stopRun(r *run, cause string) chan struct{} {
	w := make(chan struct{})
	if r.exited {
		close(w)
		return w
	}
	r.waiters = append(r.waiters, w)
	if r.stopping {
		return w
	}
	r.stopping, r.stopCause, r.stopBegan = true, cause, time.Now()
	r.failReady(fmt.Errorf("stopped (%s) before it was ready", cause))
	r.tree = r.proc.Tree()
	// What it spawned that left its tree (a double-forked daemon) stops
	// with it: the stop signal now, SIGKILL when the instance is gone.
	// A look at most procsTTL old: what leaves the tree since is caught
	// when the instance exits.
	escaped := procexec.Escaped(r.marker, procexec.Reapers(), isInstance, time.Time{})
	for _, pid := range escaped {
		unix.Kill(pid, a.killSignal())
	}
	r.tree = append(r.tree, procexec.Refs(escaped)...)
	a.share.drain(r.wid)
	switch {
	case a.spec.ShutdownWithMessage:
		// PM2's shutdown_with_message: the app stops itself on 'shutdown'.
		if a.share.primary.Send(r.wid, json.RawMessage(`"shutdown"`)) != nil {
			r.proc.Signal(a.killSignal())
		}
	case a.res.Mode == tend.ModeCluster:
		// A Node worker is disconnected first, as Node's primary does: it
		// takes no new connection, closes its servers, finishes what it
		// serves and leaves by itself, running its 'disconnect' handlers.
		// One that does not leave (an open websocket keeps its server
		// open) gets its stop signal after a while, so that its signal
		// handler runs before SIGKILL.
		if a.share.primary.Disconnect(r.wid) != nil {
			r.proc.Signal(a.killSignal())
		} else {
			a.armLeave(r, a.leaveGrace())
		}
	default:
		r.proc.Signal(a.killSignal())
	}
	a.armKill(r, a.killTimeout())
	return w
}

// leaveGrace is how long a disconnected Node worker has to leave by
// itself before its stop signal: half of kill_timeout, so that its
// signal handler has the other half before SIGKILL.
func (a *App) leaveGrace() time.Duration { return a.killTimeout() / 2 }

// armLeave sends r its stop signal if it is still there after timeout.
// Runs in the actor (or before it starts).
func (a *App) armLeave(r *run, timeout time.Duration) {
	time.AfterFunc(max(timeout, 0), func() {
		a.post(func() {
			if !r.exited {
				r.proc.Signal(a.killSignal())
			}
		})
	})
}

// killTimeout is the app's kill_timeout.
func (a *App) killTimeout() time.Duration {
	if d := a.spec.KillTimeout.D(); d > 0 {
		return d
	}
	return tend.DefaultKillTimeout.D()
}

// armKill SIGKILLs r, which is stopping, if it is still there after
// timeout. Runs in the actor (or before it starts).
func (a *App) armKill(r *run, timeout time.Duration) {
	full := a.killTimeout()
	r.killTimer = time.AfterFunc(max(timeout, 0), func() {
		a.post(func() {
			if r.exited {
				return
			}
			s := r.slot
			s.problem = fmt.Sprintf("did not stop within kill_timeout (%s); killed with SIGKILL", full)
			a.opt.Logf("%s[%d] pid %d: %s", a.spec.Name, s.index, r.proc.PID(), s.problem)
			r.proc.Signal(syscall.SIGKILL)
			r.proc.KillRest(r.tree)
		})
	})
}

func (a *App) killSignal() syscall.Signal {
	if a.spec.KillSignal != "" {
		if sig := unix.SignalNum(a.spec.KillSignal); sig != 0 {
			return sig
		}
	}
	return unix.SignalNum(tend.DefaultKillSignal)
}

// publish stores a snapshot of the slots for Instances. Runs in the actor.
func (a *App) publish() {
	spec, res := a.spec, a.res
	a.specView.Store(&spec)
	a.resView.Store(&res)
	v := make([]instView, len(a.slots))
	for i, s := range a.slots {
		in := tend.Instance{
			ID: s.id, Name: a.spec.Name, Instance: s.index, Status: s.status,
			Restarts: s.restarts, Mode: a.mode(), Port: a.spec.Port, Sched: a.res.Sched, Namespace: a.spec.Namespace,
			LastExit: s.lastExit, Problem: s.problem,
		}
		iv := instView{restartAt: s.restartAt, before: s.handedBefore}
		if r := s.cur; r != nil {
			in.PID, in.Ready = r.proc.PID(), r.ready
			in.Port = cmp.Or(a.spec.Port, r.listenPort)
			iv.started = r.started
		}
		for _, r := range append([]*run{s.cur, s.next}, s.old...) {
			if r != nil {
				iv.wids = append(iv.wids, r.wid)
			}
		}
		iv.Instance = in
		v[i] = iv
	}
	// Store first: a reader that subscribes now and reads the view gets
	// this state, and one that read the old view gets the changes.
	old := a.view.Swap(&v)
	if a.opt.Events != nil && a.opt.Events.Wanted() {
		a.emitChanges(old, v)
	}
}

// emitChanges reports the instances whose state differs between two
// views, and those that left. Runs in the actor.
func (a *App) emitChanges(old *[]instView, cur []instView) {
	now := time.Now()
	var prev []instView
	if old != nil {
		prev = *old
	}
	changed := func(o, in tend.Instance) bool {
		return o.PID != in.PID || o.Status != in.Status || o.Ready != in.Ready ||
			o.Restarts != in.Restarts || o.Problem != in.Problem || o.Port != in.Port ||
			o.LastExit != in.LastExit // a new *Exit on every exit, also of a retired process
	}
	if len(prev) == len(cur) && slices.EqualFunc(prev, cur, func(o, c instView) bool { return o.ID == c.ID }) {
		// The same slots (nearly every change): compare in place.
		for i := range cur {
			if changed(prev[i].Instance, cur[i].Instance) {
				a.opt.Events.Publish(tend.EventOf(cur[i].Instance, tend.EventInstance, now))
			}
		}
		return
	}
	before := make(map[int]tend.Instance, len(prev))
	for _, iv := range prev {
		before[iv.ID] = iv.Instance
	}
	for _, iv := range cur {
		o, ok := before[iv.ID]
		delete(before, iv.ID)
		if !ok || changed(o, iv.Instance) {
			a.opt.Events.Publish(tend.EventOf(iv.Instance, tend.EventInstance, now))
		}
	}
	for _, o := range before {
		a.opt.Events.Publish(tend.EventOf(o, tend.EventRemoved, now))
	}
}

func (a *App) mode() string { return cmp.Or(a.res.Mode, tend.ModeFork) }

// Instances returns the app's instances as of the last change, with uptime
// and backoff computed now. It never waits for the actor.
func (a *App) Instances() []tend.Instance {
	v := *a.view.Load()
	now := time.Now()
	conns := a.share.connections()
	out := make([]tend.Instance, len(v))
	for i, iv := range v {
		in := iv.Instance
		in.Connections = iv.before
		for _, w := range iv.wids {
			in.Connections += conns[w]
		}
		if in.PID != 0 {
			in.UptimeMS = now.Sub(iv.started).Milliseconds()
		}
		if in.Status == tend.StatusWaiting {
			in.NextRestartMS = max(0, iv.restartAt.Sub(now).Milliseconds())
		}
		out[i] = in
	}
	return out
}

// Describe returns the full picture of the app; env values only with withEnv.
func (a *App) Describe(withEnv bool) tend.App {
	out := tend.App{CreatedAt: a.created}
	a.read(func() {
		out.Spec = a.spec
		out.Resolved = tend.Resolved{Mode: a.mode(), Sched: a.res.Sched, ScriptPath: a.res.ScriptPath, Command: a.res.Argv}
		for _, s := range a.slots {
			out.OutLog = append(out.OutLog, s.outPath)
			out.ErrLog = append(out.ErrLog, s.errPath)
			if p := s.sink.Problem(); p != "" {
				out.LogProblems = append(out.LogProblems, fmt.Sprintf("%s[%d]: %s", a.spec.Name, s.index, p))
			}
		}
		out.Exits = slices.Clone(a.exits)
		out.LastReload = a.lastReload
	})
	out.Spec.BaseEnv = nil
	out.Instances = a.Instances()
	for k, v := range out.Spec.Env {
		out.EnvKeys = append(out.EnvKeys, k)
		if withEnv {
			out.EnvValues = append(out.EnvValues, k+"="+v)
		}
	}
	slices.Sort(out.EnvKeys)
	slices.Sort(out.EnvValues)
	if !withEnv {
		out.Spec.Env = nil
	}
	return out
}

// SlotSink is the log sink of one instance slot.
type SlotSink struct {
	ID, Index int
	Sink      *logfile.Sink
}

// Sinks returns the log sinks of the selected slots (all for nil), in
// slot order. Sinks live as long as their slot, across restarts.
func (a *App) Sinks(ids []int) []SlotSink {
	var out []SlotSink
	a.read(func() {
		for _, s := range a.selected(ids) {
			out = append(out, SlotSink{s.id, s.index, s.sink})
		}
	})
	return out
}

// Remove stops the selected instances and removes their slots from the
// app; the remaining instances keep their ids and indexes.
func (a *App) Remove(ctx context.Context, ids []int) error {
	var waits []chan struct{}
	if !a.call(func() {
		for _, s := range a.selected(ids) {
			// From now on nothing starts in it: a restart or a start that
			// comes meanwhile would leave a process in a slot that goes.
			s.removing = true
			waits = append(waits, a.stop(s, "delete")...)
		}
	}) {
		return errClosed(a.Name())
	}
	if err := waitAll(ctx, waits, a.Name()); err != nil {
		return err
	}
	a.awaitOutput(ids)
	a.call(func() {
		a.slots = slices.DeleteFunc(a.slots, func(s *slot) bool {
			if slices.Contains(ids, s.id) {
				s.sink.Close()
				return true
			}
			return false
		})
		a.spec.Instances = len(a.slots)
	})
	return nil
}

// Send delivers msg (JSON) to the selected running instances (all for nil)
// and returns the ids it reached.
func (a *App) Send(ids []int, msg json.RawMessage) ([]int, error) {
	return a.eachRunning(ids, "sending", func(s *slot) error { return a.share.primary.Send(s.cur.wid, msg) })
}

// Signal sends sig to the serving process of the selected running
// instances (all for nil) and returns the ids it reached.
func (a *App) Signal(ids []int, sig syscall.Signal) ([]int, error) {
	// The process alone, as PM2 does: a master such as gunicorn passes
	// it on to its workers as it means to.
	return a.eachRunning(ids, "signalling", func(s *slot) error { return syscall.Kill(s.cur.proc.PID(), sig) })
}

// eachRunning calls f, in the actor, for every selected instance that has
// a process, and returns the ids for which it succeeded; doing names the
// action in errors. No running instance is no error here: the caller
// decides, over every app it reached.
func (a *App) eachRunning(ids []int, doing string, f func(*slot) error) ([]int, error) {
	var done []int
	var errs []string
	a.read(func() {
		for _, s := range a.selected(ids) {
			if s.cur == nil {
				continue
			}
			if err := f(s); err != nil {
				errs = append(errs, fmt.Sprintf("%s[%d]: %v", a.spec.Name, s.index, err))
				continue
			}
			done = append(done, s.id)
		}
	})
	if len(errs) > 0 {
		return done, tend.Errorf(tend.EFAILED, "%s: %s", doing, strings.Join(errs, "; "))
	}
	return done, nil
}
