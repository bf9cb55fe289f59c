package supervisor

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/cgroup"
	"github.com/tendhq/tend/internal/logfile"
	"github.com/tendhq/tend/internal/logger"
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
	// Cgroups gives each instance a cgroup of its own, with the app's
	// limits; nil, with CgroupErr saying why, where tend has none.
	Cgroups   *cgroup.Tree
	CgroupErr error
	LogDir    string      // where per-instance log files go unless the spec names them
	RunDir    string      // private directory for NOTIFY_SOCKETs; "" disables sd_notify
	NewID     func() int  // allocates global instance ids; nil counts from 0
	Logf      logger.Logf // the daemon's log; nil discards
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
	// Reported, if set, receives the report of every reload, scale and
	// replacement (watch, cron, memory, health) when it ends, with the
	// context of the call that started it. It must not block.
	Reported func(context.Context, tend.ReloadReport)
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
// mean tend's defaults (tend.DefaultLogMaxSize, tend.DefaultLogRetain, no
// rotation by time).
type LogDefaults struct {
	MaxSize  int64
	Retain   int
	Compress bool
	// RotateInterval is a valid log_rotate_interval (the daemon checked
	// it), or "".
	RotateInterval string
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
	spec           tend.AppSpec
	res            Resolved
	slots          []*slot
	exits          []tend.Exit
	nextWID        int // worker ids: one per process, unique in the app
	reloading      bool
	closing        bool // Close began: nothing starts any more
	schedMu        sync.Mutex
	schedStop      chan struct{} // ends the cron and watch loops of the spec in force
	lastReload     *tend.ReloadReport
	reloads        map[string]int // by outcome
	unhealthyCount int            // instances replaced for failing their probe or watchdog
	ended          []*run         // processes that ended, to release once written down
	written        []byte         // the State last written
	gone           bool           // deleted: its State is removed and not written again
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
	unhealthy    int    // processes replaced as unhealthy in a row, with no passed probe between
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
	cgroup    string // the serving process's cgroup key, "" for none
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
	opt.Logf = opt.Logf.Or()
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
	_, every, err := tend.ParseRotateInterval(cmp.Or(a.spec.LogRotateInterval, d.RotateInterval, "false"))
	if err != nil {
		return nil, tend.Causef(err, tend.EINVALID, "app %s: log_rotate_interval: %v", a.spec.Name, err)
	}
	opt := logfile.Options{
		App: a.spec.Name, Instance: index,
		OutPath: s.outPath, ErrPath: s.errPath,
		TimeLayout: a.spec.LogDateFormat, JSON: a.spec.LogType == "json",
		MaxSize:  cmp.Or(a.spec.LogMaxSize, d.MaxSize, tend.DefaultLogMaxSize),
		Keep:     cmp.Or(a.spec.LogRetain, d.Retain, tend.DefaultLogRetain),
		Compress: a.spec.LogCompress || d.Compress,
	}
	if every != nil {
		opt.RotateAt = every // not a nil cron.Schedule in the interface
	}
	sink, err := logfile.Open(opt)
	if err != nil {
		// Only its options can fail it (a file that cannot be written is
		// a problem the instance shows, not a failed start).
		return nil, tend.Causef(err, tend.EINVALID, "app %s: log settings: %v", a.spec.Name, err)
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

// Answer returns nil once the actor has run an empty operation, or an
// error if it has not before ctx ends (it is stuck): a probe of tend's own
// health. A closed app (deleted meanwhile) is nothing stuck: nil.
func (a *App) Answer(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case a.ops <- op{f: func() {}, done: done, quiet: true}:
	case <-a.quit:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("app %s: its supervisor takes no operation (%w)", a.Name(), ctx.Err())
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("app %s: its supervisor did not finish an operation (%w)", a.Name(), ctx.Err())
	}
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
