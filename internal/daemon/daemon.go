package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/cgroup"
	"github.com/tendhq/tend/internal/keeper"
	"github.com/tendhq/tend/internal/logfile"
	"github.com/tendhq/tend/internal/nodepreload"
	"github.com/tendhq/tend/internal/podhealth"
	"github.com/tendhq/tend/internal/procexec"
	"github.com/tendhq/tend/internal/procstat"
	"github.com/tendhq/tend/internal/supervisor"
)

// ReadyFDEnv names the variable that tells a daemon started by the CLI on
// which fd to report that it is serving ("ok\n") or why it failed.
const ReadyFDEnv = "TEND_DAEMON_READY_FD"

// sampleEvery is how often CPU and memory are measured: once a second, as
// `ls` and `monit` show them, at a cost of one /proc pass.
const sampleEvery = time.Second

// Daemon owns the apps of one tend home.
//
// Locking: mu guards the registry (apps, pending, order, nextID, creating,
// reserved, scaling, quitting). It is never held while an app's actor is
// waited for, so it is always the last lock taken, except for the two
// leaves below it: statsMu (the last CPU and memory sample) and the
// event hub's own lock. saveMu is taken before mu, by save alone. Each app
// is an actor of its own (supervisor.App) and needs no lock here.
//
// Shutdown has three stages, one channel each: quitting is closed when it
// begins (no new work), shutDone when every app is stopped, quit when the
// daemon ends (streams finish, Serve returns).
type Daemon struct {
	home    string
	log     *slog.Logger
	started time.Time
	user    string

	mu      sync.Mutex
	apps    map[string]*supervisor.App // the apps that run, by name
	pending map[string]bool            // names held by starts in flight (claim)
	order   []string                   // creation order, for ls
	nextID  int

	statsMu sync.Mutex
	stats   map[int]procstat.Usage // by pid

	srv      *http.Server
	ln       net.Listener
	stopped  bool                       // shutdown closed ln
	quitting chan struct{}              // closed when shutdown begins; guarded by mu
	shutOnce sync.Once                  // the first shutdown does the work
	shutDone chan struct{}              // closed when the first shutdown is done
	starting sync.WaitGroup             // starts in flight, which shutdown waits for
	creating map[string]*supervisor.App // apps of starts in flight, for logs -f
	reserved int                        // instances starts in flight hold room for; guarded by mu
	scaling  map[*supervisor.App]int    // scales in flight: the count each app goes to; guarded by mu
	quit     chan struct{}              // closed to end the daemon (kill)
	exe      string                     // this binary, the LISTEN_PID shim

	saveMu    sync.Mutex // tend save
	settings  Settings
	preloads  nodepreload.Paths // what Node apps load with --require
	cgroups   *cgroup.Tree      // a cgroup per instance; nil, with cgroupErr, without
	cgroupErr error
	poller    *logfile.Poller
	hub       eventHub          // instance events for GET /v1/events
	hooks     hooks             // the apps' notifications (on_exit, notify_url, ...)
	keeper    *keeper.Conn      // keeps the apps' processes and sockets; nil under tend run
	keeperAt  int               // the keeper's pid, the daemon's parent
	upgrading string            // the binary this daemon hands over to (tend update)
	limit     limiter           // what apps make the daemon log
	pod       Pod               // how it stops on a signal and what it tells probes
	signaled  func()            // RunOptions.Signaled
	health    *podhealth.Server // the probes' judge; nil when not served
	overran   error             // the stop on a signal overran its bound; guarded by mu
	failing   error             // instances failed as the stop on a signal began; guarded by mu
	followLog func()            // points stderr at tend.log after a rotation
	web       webState          // the dashboard, when served
}

// requestTimeout bounds how long a client may take to send a request,
// headers in a third of it: a start's body is a few KB, and clients that
// send nothing must not hold the daemon's descriptors. An idle
// connection goes after twice as long. The streams (logs -f, events)
// lift the read deadline once their request is in. A variable for tests.
var requestTimeout = 30 * time.Second

// gcPercent is the daemon's GOGC.
const gcPercent = 50

// RunOptions are what Run takes beyond the home. The zero value runs a
// plain daemon.
type RunOptions struct {
	// Ready, if not nil, is called once the control socket listens, with
	// what tells systemd about the daemon (sd_notify: through the keeper,
	// systemd's main process, when there is one).
	Ready func(sdNotify func(string) error)
	// Pod: the probes and the stop of a pod's PID 1. Its DrainDelay should
	// be negative unless given (see Pod).
	Pod Pod
	// Signaled, if not nil, is called when SIGINT or SIGTERM arrives,
	// before any app is stopped for it: what fails from then on fails
	// because of the stop.
	Signaled func()
}

// Run runs a daemon for home in the foreground until it is killed through
// the API or receives SIGINT/SIGTERM; either way every app is stopped first.
// After a signal it returns an error wrapping ErrStopOverrun if the apps
// did not stop within StopBound, and one wrapping ErrFailing if some
// instance was errored or crash-looping when the signal came.
func Run(home string, opt RunOptions) (err error) {
	tuneRuntime()
	report := readyReporter()
	defer func() {
		if err != nil {
			report(err.Error())
		}
	}()
	if err := EnsureHome(home); err != nil {
		return err
	}
	settings, err := LoadSettings(home)
	if err != nil {
		return err
	}
	// Signals are caught from the start: one that comes while the apps
	// are taken back or started stops them.
	sigs := notifySignals()
	defer signal.Stop(sigs)
	d := New(home)
	d.settings = settings
	d.followLog = d.rotateOwnLog()
	d.pod = opt.Pod
	d.signaled = opt.Signaled
	inv, err := d.connectKeeper()
	if err != nil {
		return err
	}
	lock, err := lockHome(home)
	if err != nil {
		return err
	}
	defer lock.Close()
	// Orphans the apps leave behind are reparented to the daemon, when it
	// is their parent (tend run), and reaped here instead of escaping to
	// init. Under a keeper, the keeper does this.
	if err := procexec.SetSubreaper(); err != nil {
		slog.Warn("cannot become a child subreaper", "err", err)
	}
	d.takeHeldWeb(inv)
	if err := d.openServices(); err != nil {
		return err
	}
	// Last of what can fail: the keeper keeps the control socket from
	// here on, and a keeper with something to keep restarts its daemon.
	l, err := d.controlListener(inv)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", tend.Home(home).Socket(), err)
	}
	d.log.Info("daemon started", "pid", os.Getpid(), "version", tend.Version, "home", home)
	d.resume(inv)
	d.resumeWeb() // after the apps are back: a page that reconnects sees them
	report("ok")
	if os.Getenv(keeper.StopEnv) != "" {
		// A stop was asked for while no daemon ran: the apps are back,
		// now they stop.
		os.Unsetenv(keeper.StopEnv)
		sigs <- syscall.SIGTERM
	}
	if opt.Ready != nil {
		opt.Ready(d.sdNotify)
	}
	return d.serve(l, sigs)
}

// tuneRuntime sets the daemon's GC target and Ps, unless the environment
// does.
func tuneRuntime() {
	// The daemon's live heap is a megabyte or two and it idles most of the
	// time, so Go's default target (collect at twice the live heap, 4 MB at
	// least) would keep about as much garbage as data resident. Half of
	// that keeps ~2 MB less for a few more short collections while apps
	// flood their logs (BENCHMARKS.md). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	// One P, like Node's single-threaded primary: the daemon's work comes
	// in small events (a connection to hand off, a line of output, an API
	// call), and on a second P each one costs a cross-thread wake-up and
	// work stealing. Side by side on 2 cores this cut the CPU per
	// round-robin hand-off by a sixth and made proxy mode faster too
	// (BENCHMARKS.md). Blocking syscalls still run beside it: Go hands the
	// P on. GOMAXPROCS in the environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// readyReporter takes the fd a CLI that started the daemon waits on
// (ReadyFDEnv), closes every other inherited fd but the keeper's, and
// returns what reports to the CLI once: "ok" or why the start failed.
func readyReporter() func(msg string) {
	readyFD := os.Getenv(ReadyFDEnv)
	os.Unsetenv(ReadyFDEnv)
	keep := []int{}
	for _, v := range []string{readyFD, os.Getenv(keeper.FDEnv)} {
		if n, err := strconv.Atoi(v); err == nil {
			keep = append(keep, n)
		}
	}
	procexec.CloseOnExecAll(keep...)
	return func(msg string) {
		if n, e := strconv.Atoi(readyFD); e == nil {
			f := os.NewFile(uintptr(n), "ready")
			f.WriteString(msg + "\n")
			f.Close()
			readyFD = ""
		}
	}
}

// openServices writes the Node preloads, starts the log poller, finds
// the cgroups, and starts the pprof, metrics and web servers when asked
// for.
func (d *Daemon) openServices() (err error) {
	if d.preloads, err = nodepreload.Write(tend.Home(d.home).Run()); err != nil {
		return err
	}
	if d.poller, err = logfile.NewPoller(); err != nil {
		return err
	}
	d.openCgroups()
	if addr := os.Getenv(PprofEnv); addr != "" {
		if err := servePprof(addr); err != nil {
			return fmt.Errorf("%s: %w", PprofEnv, err)
		}
	}
	if err := d.openHealth(); err != nil {
		return err
	}
	if d.settings.MetricsAddr != "" {
		if err := d.serveMetrics(d.settings.MetricsAddr); err != nil {
			return fmt.Errorf("metrics (TEND_METRICS_ADDR or metrics_addr in %s): %w", tend.Home(d.home).Settings(), err)
		}
	}
	if d.settings.WebAddr != "" {
		if _, err := d.serveWeb(d.settings.WebAddr, d.settings.WebPublic); err != nil {
			return fmt.Errorf("dashboard (web_addr in %s): %w", tend.Home(d.home).Settings(), err)
		}
	}
	return nil
}

// notifySignals catches what the daemon acts on: SIGINT and SIGTERM stop
// it, SIGCHLD reaps orphans, SIGUSR1 and SIGHUP reopen the log files.
func notifySignals() chan os.Signal {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD, syscall.SIGUSR1, syscall.SIGHUP)
	return sigs
}

// New returns a daemon for home that serves nothing yet.
func New(home string) *Daemon {
	d := &Daemon{
		home: home, log: slog.Default(), started: time.Now(),
		apps: map[string]*supervisor.App{}, pending: map[string]bool{}, stats: map[int]procstat.Usage{},
		quit: make(chan struct{}), quitting: make(chan struct{}), shutDone: make(chan struct{}),
		creating: map[string]*supervisor.App{},
		scaling:  map[*supervisor.App]int{},
	}
	d.settings.MaxInstances = defaultMaxInstances()
	if u, err := user.Current(); err == nil {
		d.user = u.Username
	}
	d.exe, _ = os.Executable()
	return d
}

// Serve serves the API on l until the daemon is killed.
func (d *Daemon) Serve(l net.Listener) error {
	sigs := notifySignals()
	defer signal.Stop(sigs)
	return d.serve(l, sigs)
}

func (d *Daemon) serve(l net.Listener, sigs chan os.Signal) error {
	d.ln = l
	d.srv = &http.Server{Handler: d.routes(), ReadHeaderTimeout: requestTimeout / 3, ReadTimeout: requestTimeout, IdleTimeout: 2 * requestTimeout}
	go d.sampleLoop()
	errc := make(chan error, 1)
	go func() { errc <- d.srv.Serve(l) }()
	var skip chan struct{} // closed by a second stop signal
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGCHLD:
				procexec.Reap()
				continue
			case syscall.SIGUSR1, syscall.SIGHUP:
				// An external rotator moved the files: write new ones.
				d.reopenLogs()
				continue
			}
			if skip != nil { // a second signal: stop without waiting more
				select {
				case <-skip:
				default:
					d.log.Info("signal received again: the apps stop now", "signal", sig)
					close(skip)
				}
				continue
			}
			d.log.Info("signal received: stopping every app", "signal", sig)
			if d.signaled != nil {
				d.signaled()
			}
			skip = make(chan struct{})
			go d.stopOnSignal(skip)
		case <-d.quit:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d.srv.Shutdown(ctx)
			cancel()
			d.hooks.stop()
			nodepreload.RemovePublic() // the next daemon writes its own
			if d.upgrading == "" {
				os.Remove(tend.Home(d.home).Socket())
				if d.cgroups != nil {
					d.cgroups.Close() // what is empty: every app stopped
				}
				d.log.Info("daemon stopped")
			} else {
				d.log.Info("daemon handed over", "to", d.upgrading)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			return errors.Join(d.overran, d.failing)
		case err := <-errc:
			if d.closing() || errors.Is(err, http.ErrServerClosed) {
				continue // the listener was closed on purpose
			}
			return err
		}
	}
}

// shutdown stops every app, stops accepting connections (so no client
// reaches a daemon on its way out) and ends Serve. A second call (a signal
// during tend kill) returns once the first is done, so that nothing ends
// the daemon while apps are still stopping.
func (d *Daemon) shutdown() {
	d.shutOnce.Do(func() {
		d.mu.Lock()
		if !d.isQuitting() { // an update may have begun
			close(d.quitting) // no start begins from now on
		}
		apps := d.allApps()
		d.apps, d.order = map[string]*supervisor.App{}, nil
		d.mu.Unlock()
		d.stopWeb(true) // tend stops: the dashboard does not come back
		closeAll(apps)
		// Starts in flight close what they started when they find the
		// daemon quitting.
		d.starting.Wait()
		d.mu.Lock()
		d.stopped = true
		if d.ln != nil {
			d.ln.Close()
			os.Remove(tend.Home(d.home).Socket())
		}
		d.mu.Unlock()
		if d.keeper != nil {
			// The keeper closes its copy of the control socket and exits
			// after this daemon: tend is stopping.
			d.keeper.Drop(controlName)
			d.keeper.Quit()
		}
		close(d.shutDone)
	})
	<-d.shutDone
}

// isQuitting reports whether shutdown has begun. Caller holds mu.
func (d *Daemon) isQuitting() bool {
	select {
	case <-d.quitting:
		return true
	default:
		return false
	}
}

// errQuitting refuses work once shutdown has begun.
var errQuitting = tend.Errorf(tend.EFAILED, "the daemon is stopping")

// closing reports whether shutdown closed the listener.
func (d *Daemon) closing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

// end makes Serve return. Safe to call more than once.
func (d *Daemon) end() {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.quit:
	default:
		close(d.quit)
	}
}

// closeAll stops apps and ends them, dependents before their
// dependencies (depends_on), the others all at once.
func closeAll(apps []*supervisor.App) {
	inReverse(apps, func(a *supervisor.App) { a.Close(context.Background()) })
}

// allApps returns the registered apps in creation order. Caller holds mu.
func (d *Daemon) allApps() []*supervisor.App {
	var out []*supervisor.App
	for _, n := range d.order {
		if a := d.apps[n]; a != nil {
			out = append(out, a)
		}
	}
	return out
}

func (d *Daemon) snapshotApps() []*supervisor.App {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.allApps()
}
