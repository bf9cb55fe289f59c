package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/keeper"
	"github.com/tendhq/tend/internal/logfile"
	"github.com/tendhq/tend/internal/nodepreload"
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
type Daemon struct {
	home    string
	log     *slog.Logger
	started time.Time
	user    string

	mu     sync.Mutex
	apps   map[string]*supervisor.App // nil value: name reserved by a start in progress
	order  []string                   // creation order, for ls
	nextID int

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
	poller    *logfile.Poller
	hub       eventHub     // instance events for GET /v1/events
	keeper    *keeper.Conn // keeps the apps' processes and sockets; nil under tend run
	keeperAt  int          // the keeper's pid, the daemon's parent
	upgrading string       // the binary this daemon hands over to (tend update)
	limit     limiter      // what apps make the daemon log
	followLog func()       // points stderr at tend.log after a rotation
}

// requestTimeout bounds how long a client may take to send a request,
// headers in a third of it: a start's body is a few KB, and clients that
// send nothing must not hold the daemon's descriptors. An idle
// connection goes after twice as long. The streams (logs -f, events)
// lift the read deadline once their request is in. A variable for tests.
var requestTimeout = 30 * time.Second

// gcPercent is the daemon's GOGC.
const gcPercent = 50

// Run runs a daemon for home in the foreground until it is killed through
// the API or receives SIGINT/SIGTERM; either way every app is stopped first.
// ready, if not nil, is called once the control socket listens, with what
// tells systemd about the daemon (sd_notify: through the keeper, systemd's
// main process, when there is one).
func Run(home string, ready func(sdNotify func(string) error)) (err error) {
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
	readyFD := os.Getenv(ReadyFDEnv)
	os.Unsetenv(ReadyFDEnv)
	keep := []int{}
	for _, v := range []string{readyFD, os.Getenv(keeper.FDEnv)} {
		if n, err := strconv.Atoi(v); err == nil {
			keep = append(keep, n)
		}
	}
	procexec.CloseOnExecAll(keep...)
	report := func(msg string) {
		if n, e := strconv.Atoi(readyFD); e == nil {
			f := os.NewFile(uintptr(n), "ready")
			f.WriteString(msg + "\n")
			f.Close()
			readyFD = ""
		}
	}
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
	if d.preloads, err = nodepreload.Write(tend.Home(home).Run()); err != nil {
		return err
	}
	if d.poller, err = logfile.NewPoller(); err != nil {
		return err
	}
	if addr := os.Getenv(PprofEnv); addr != "" {
		if err := servePprof(addr); err != nil {
			return fmt.Errorf("%s: %w", PprofEnv, err)
		}
	}
	if settings.MetricsAddr != "" {
		if err := d.serveMetrics(settings.MetricsAddr); err != nil {
			return fmt.Errorf("metrics (TEND_METRICS_ADDR or metrics_addr in %s): %w", tend.Home(home).Settings(), err)
		}
	}
	// Last of what can fail: the keeper keeps the control socket from
	// here on, and a keeper with something to keep restarts its daemon.
	l, err := d.controlListener(inv)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", tend.Home(home).Socket(), err)
	}
	d.log.Info("daemon started", "pid", os.Getpid(), "version", tend.Version, "home", home)
	d.resume(inv)
	report("ok")
	if os.Getenv(keeper.StopEnv) != "" {
		// A stop was asked for while no daemon ran: the apps are back,
		// now they stop.
		os.Unsetenv(keeper.StopEnv)
		sigs <- syscall.SIGTERM
	}
	if ready != nil {
		ready(d.sdNotify)
	}
	return d.serve(l, sigs)
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
		apps: map[string]*supervisor.App{}, stats: map[int]procstat.Usage{},
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
			d.log.Info("signal received: stopping every app", "signal", sig)
			d.shutdown()
			d.end()
		case <-d.quit:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d.srv.Shutdown(ctx)
			cancel()
			if d.upgrading == "" {
				os.Remove(tend.Home(d.home).Socket())
				d.log.Info("daemon stopped")
			} else {
				d.log.Info("daemon handed over", "to", d.upgrading)
			}
			return nil
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

func closeAll(apps []*supervisor.App) {
	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Go(func() { a.Close(context.Background()) })
	}
	wg.Wait()
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

// instances returns every instance with its latest CPU and memory.
func (d *Daemon) instances() []tend.Instance {
	out := []tend.Instance{}
	for _, a := range d.snapshotApps() {
		out = append(out, a.Instances()...)
	}
	return d.withStats(out)
}

// withStats fills in the latest CPU, memory and user of instances.
func (d *Daemon) withStats(out []tend.Instance) []tend.Instance {
	d.statsMu.Lock()
	for i := range out {
		out[i].User = d.user
		if u, ok := d.stats[out[i].PID]; ok && out[i].PID != 0 {
			out[i].CPU, out[i].Memory = u.CPU, u.Memory
		}
	}
	d.statsMu.Unlock()
	return out
}

func (d *Daemon) sampleLoop() {
	s := procstat.NewSampler()
	problems := map[string]string{}
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		var pids []int
		for _, a := range d.snapshotApps() {
			for _, in := range a.Instances() {
				if in.PID != 0 {
					pids = append(pids, in.PID)
				}
			}
		}
		var u map[int]procstat.Usage
		if len(pids) > 0 {
			u = s.Sample(pids)
		}
		d.statsMu.Lock()
		d.stats = u
		d.statsMu.Unlock()
		d.enforceMemory(u)
		problems = d.checkLogs(problems)
		if d.followLog != nil {
			d.followLog()
		}
		select {
		case <-t.C:
		case <-d.quit:
			return
		}
	}
}

// newID allocates an instance id. Caller holds mu.
func (d *Daemon) newID() int {
	d.nextID++
	return d.nextID - 1
}

// start registers and launches the apps of req. Every spec is checked
// before anything starts: a bad one starts none.
func (d *Daemon) start(ctx context.Context, req tend.StartRequest) (notes []string, err error) {
	if len(req.Apps) == 0 {
		return nil, tend.Errorf(tend.EINVALID, "nothing to start")
	}
	res := make([]supervisor.Resolved, len(req.Apps))
	seen := map[string]bool{}
	for i := range req.Apps {
		spec := &req.Apps[i]
		if err := normalize(spec); err != nil {
			return nil, err
		}
		if seen[spec.Name] {
			return nil, tend.Errorf(tend.EINVALID, "two apps are named %q: names must be unique", spec.Name)
		}
		seen[spec.Name] = true
		r, err := supervisor.Resolve(spec)
		if err != nil {
			return nil, err
		}
		if err := chooseMode(spec, &r); err != nil {
			return nil, err
		}
		note, err := d.checkNodeCluster(spec, &r)
		if err != nil {
			return nil, err
		}
		for _, n := range []string{note, readyURLWarning(spec, r.Mode)} {
			if n != "" {
				notes = append(notes, n)
			}
		}
		res[i] = r
	}
	// Reserve the names, replacing existing apps only with force.
	d.mu.Lock()
	if d.isQuitting() {
		d.mu.Unlock()
		return nil, errQuitting
	}
	d.starting.Add(1)
	defer d.starting.Done()
	var replaced []*supervisor.App
	for _, spec := range req.Apps {
		a, exists := d.apps[spec.Name]
		if !exists {
			continue
		}
		if a == nil || !req.Force {
			d.mu.Unlock()
			return nil, tend.Errorf(tend.ECONFLICT, "an app named %q already exists: pick another --name, use `tend restart %s`, or --force to replace it", spec.Name, spec.Name)
		}
		replaced = append(replaced, a)
	}
	for _, spec := range req.Apps {
		if spec.Port == 0 {
			continue
		}
		for _, a := range d.apps {
			if a != nil && a.Spec().Port == spec.Port && !slices.Contains(replaced, a) {
				d.mu.Unlock()
				return nil, tend.Errorf(tend.ECONFLICT, "port %d is already used by the tend app %s (it keeps its port while stopped): tend delete %s, or choose another --port", spec.Port, a.Name(), a.Name())
			}
		}
	}
	held, err := d.reserveStart(req.Apps, replaced)
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	if len(d.apps) == 0 {
		d.nextID = 0
	}
	for _, spec := range req.Apps {
		if _, exists := d.apps[spec.Name]; !exists {
			d.order = append(d.order, spec.Name)
		}
		d.apps[spec.Name] = nil
	}
	d.mu.Unlock()
	// The replaced apps stop first: the new ones may need their port.
	var previous []tend.AppSpec
	for _, a := range replaced {
		previous = append(previous, a.Spec())
	}
	closeAll(replaced)

	var started []*supervisor.App
	fail := func(err error) error {
		closeAll(started)
		d.mu.Lock()
		d.reserved -= held
		for _, spec := range req.Apps {
			delete(d.apps, spec.Name)
			delete(d.creating, spec.Name)
			d.order = slices.DeleteFunc(d.order, func(n string) bool { return n == spec.Name })
		}
		quitting := d.isQuitting()
		d.mu.Unlock()
		if len(previous) > 0 && !quitting {
			// Nothing the user started is lost: what --force was to
			// replace comes back as it was.
			if _, rerr := d.start(context.WithoutCancel(ctx), tend.StartRequest{Apps: previous}); rerr != nil {
				d.log.Error("restoring the apps --force was replacing", "err", rerr)
				return tend.Errorf(tend.ErrorCode(err), "%v; additionally, restoring the previous app failed: %v", err, rerr)
			}
			return tend.Errorf(tend.ErrorCode(err), "%v; the previous app was restored", err)
		}
		return err
	}
	for i, spec := range req.Apps {
		a, err := supervisor.New(spec, res[i], d.appOptions(spec.Name))
		if err != nil {
			return nil, fail(err)
		}
		started = append(started, a)
		d.mu.Lock()
		d.creating[a.Name()] = a
		d.mu.Unlock()
		stopped, restoring := req.Stopped[spec.Name]
		if err := a.Start(ctx, toStart(a, spec, stopped, restoring)); err != nil {
			return nil, fail(err)
		}
	}
	d.mu.Lock()
	if d.isQuitting() {
		// A signal or kill came while these started: shutdown did not
		// see them, so they stop here, before the daemon ends.
		d.mu.Unlock()
		return nil, fail(errQuitting)
	}
	d.reserved -= held
	for _, a := range started {
		d.apps[a.Name()] = a
		delete(d.creating, a.Name())
	}
	d.mu.Unlock()
	now := time.Now()
	for _, a := range started {
		d.log.Info("app started", "name", a.Name(), "instances", len(a.Instances()))
		if d.hub.Wanted() {
			// A reader that subscribed while the app started got neither
			// its first events (its actor published before anyone could
			// find it) nor the app in its snapshot: its state now.
			for _, in := range a.Instances() {
				d.hub.Publish(tend.EventOf(in, tend.EventInstance, now))
			}
		}
	}
	return notes, nil
}

// toStart returns the ids of a's instances that start now: all (nil) but
// the indexes in stopped. Restoring a saved state (resurrect) follows it;
// otherwise autostart off starts none.
func toStart(a *supervisor.App, spec tend.AppSpec, stopped []int, restoring bool) []int {
	if !restoring && !spec.AutostartOn() {
		return []int{}
	}
	if len(stopped) == 0 {
		return nil
	}
	ids := []int{}
	for _, in := range a.Instances() {
		if !slices.Contains(stopped, in.Instance) {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// selection is what a list of targets picked: per app, the instance ids
// (nil for the whole app).
type selection struct {
	app *supervisor.App
	ids []int
}

// resolve maps targets (ids, names, "all") to apps and instance ids. A
// target that matches nothing is an error.
func (d *Daemon) resolve(targets []string) ([]selection, error) {
	if len(targets) == 0 {
		return nil, tend.Errorf(tend.EINVALID, "no target given: name an app, an instance id, or all")
	}
	apps := d.snapshotApps()
	var out []selection
	add := func(a *supervisor.App, ids []int) {
		for i := range out {
			if out[i].app == a {
				if out[i].ids == nil || ids == nil {
					out[i].ids = nil
				} else {
					out[i].ids = append(out[i].ids, ids...)
				}
				return
			}
		}
		out = append(out, selection{a, ids})
	}
	for _, t := range targets {
		if strings.TrimSpace(t) == "" {
			return nil, tend.Errorf(tend.EINVALID, "an empty target: name an app, an instance id, a namespace, or all")
		}
		if t == "all" {
			if len(apps) == 0 {
				return nil, tend.Errorf(tend.ENOTFOUND, "no app is running: all matches nothing")
			}
			for _, a := range apps {
				add(a, nil)
			}
			continue
		}
		found := false
		for _, a := range apps {
			if a.Name() == t {
				add(a, nil)
				found = true
			}
		}
		if id, err := strconv.Atoi(t); err == nil && !found {
			for _, a := range apps {
				for _, in := range a.Instances() {
					if in.ID == id {
						add(a, []int{id})
						found = true
					}
				}
			}
		}
		if !found {
			// A namespace: every app in it.
			for _, a := range apps {
				if ns := a.Spec().Namespace; ns != "" && ns == t {
					add(a, nil)
					found = true
				}
			}
		}
		if !found {
			return nil, tend.Errorf(tend.ENOTFOUND, "no app, instance id or namespace matches %q (see tend ls)", t)
		}
	}
	return out, nil
}

// act runs a stop, restart or delete on targets.
func (d *Daemon) act(ctx context.Context, action string, targets []string) (tend.ActionResult, error) {
	sels, err := d.resolve(targets)
	if err != nil {
		return tend.ActionResult{}, err
	}
	var affected []int
	for _, s := range sels {
		for _, in := range s.app.Instances() {
			if s.ids == nil || slices.Contains(s.ids, in.ID) {
				affected = append(affected, in.ID)
			}
		}
	}
	errs := make([]error, len(sels))
	var wg sync.WaitGroup
	for i, s := range sels {
		wg.Go(func() {
			switch action {
			case "stop":
				errs[i] = s.app.Stop(ctx, s.ids)
			case "restart":
				errs[i] = s.app.Restart(ctx, s.ids)
			case "delete":
				errs[i] = d.delete(ctx, s)
			case "flush":
				for _, k := range s.app.Sinks(s.ids) {
					if err := k.Sink.Flush(); err != nil {
						errs[i] = err
					}
				}
			}
		})
	}
	wg.Wait()
	return tend.ActionResult{Affected: affected, Instances: d.instances()}, errors.Join(errs...)
}

// delete removes a whole app, or stops and deletes single instances.
// Deleting every instance of an app deletes the app.
func (d *Daemon) delete(ctx context.Context, s selection) error {
	if s.ids != nil && len(s.ids) < len(s.app.Instances()) {
		return s.app.Remove(ctx, s.ids)
	}
	d.mu.Lock()
	if d.apps[s.app.Name()] == s.app {
		delete(d.apps, s.app.Name())
		d.order = slices.DeleteFunc(d.order, func(n string) bool { return n == s.app.Name() })
	}
	d.mu.Unlock()
	d.log.Info("app deleted", "name", s.app.Name())
	return s.app.Close(ctx)
}

// reload replaces the instances targets select, app by app. specs, when
// given, are the new settings of the apps of those names.
func (d *Daemon) reload(ctx context.Context, req tend.ReloadRequest) (tend.ReloadResult, error) {
	out := tend.ReloadResult{Reports: []tend.ReloadReport{}}
	sels, err := d.resolve(req.Targets)
	if err != nil {
		return out, err
	}
	type update struct {
		spec *tend.AppSpec
		res  *supervisor.Resolved
	}
	updates := map[string]update{}
	for i := range req.Apps {
		spec := &req.Apps[i]
		if err := normalize(spec); err != nil {
			return out, err
		}
		r, err := supervisor.Resolve(spec)
		if err != nil {
			return out, err
		}
		d.mu.Lock()
		cur := d.apps[spec.Name]
		d.mu.Unlock()
		if err := chooseMode(spec, &r); err != nil {
			return out, err
		}
		if cur != nil && cur.Resolved().Mode == tend.ModeFork && spec.ExecMode == "" && spec.Port == 0 && spec.Instances <= 1 {
			// Started in fork mode (by a tend from before `instances: 1`
			// made a Node app a cluster, or after its check of Node's
			// cluster protocol failed): a reload keeps the mode.
			r.Mode, r.Sched = tend.ModeFork, ""
		}
		updates[spec.Name] = update{spec, &r}
	}
	var errs []error
	for _, s := range sels {
		u, fromFile := updates[s.app.Name()]
		var changes []string
		if fromFile || req.ShellEnv != nil || len(req.Env) > 0 || len(req.UnsetEnv) > 0 {
			cur := s.app.Spec()
			next := cur
			if fromFile {
				next = *u.spec
			}
			changes = updateEnv(cur, &next, req)
			u.spec = &next
		}
		rep, err := s.app.Reload(ctx, s.ids, u.spec, u.res, req.Parallel)
		rep.EnvChanges = changes
		out.Reports = append(out.Reports, rep)
		if err != nil {
			errs = append(errs, err)
			d.log.Warn("reload failed", "app", s.app.Name(), "err", err)
		} else {
			d.log.Info("app reloaded", "app", s.app.Name(), "ms", rep.DurationMS)
		}
	}
	out.Instances = d.instances()
	out.Affected = affected(out.Reports)
	return out, errors.Join(errs...)
}

// affected returns the ids of the instances reports replaced.
func affected(reports []tend.ReloadReport) []int {
	ids := []int{}
	for _, r := range reports {
		for _, st := range r.Steps {
			if st.Error == "" {
				ids = append(ids, st.ID)
			}
		}
	}
	return ids
}

// updateEnv gives next, the settings of a reload of cur, its environment:
// the one cur was started from, updated by the caller's (req.ShellEnv, or
// the environment a reloaded file comes with), and the app's own variables
// (the file's, or cur's with req.Env set); only req.UnsetEnv removes a
// variable. A reload run from a cron job or a CI runner thus keeps the
// PORT the app was started with. It returns what changed for the app, by
// name: "+KEY", "~KEY", "-KEY".
func updateEnv(cur tend.AppSpec, next *tend.AppSpec, req tend.ReloadRequest) []string {
	base := envMap(cur.BaseEnv)
	shell := req.ShellEnv
	if shell == nil && next.BaseEnv != nil {
		shell = next.BaseEnv // from a reloaded file: the CLI's environment
	}
	maps.Copy(base, envMap(shell))
	own := maps.Clone(next.Env)
	if own == nil {
		own = map[string]string{}
	}
	maps.Copy(own, req.Env)
	for _, k := range req.UnsetEnv {
		delete(base, k)
		delete(own, k)
	}
	next.BaseEnv = make([]string, 0, len(base))
	for _, k := range slices.Sorted(maps.Keys(base)) {
		next.BaseEnv = append(next.BaseEnv, k+"="+base[k])
	}
	next.Env = own
	before, after := envMap(cur.BaseEnv), maps.Clone(base)
	maps.Copy(before, cur.Env)
	maps.Copy(after, own)
	var changes []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if v, ok := before[k]; !ok {
			changes = append(changes, "+"+k)
		} else if v != after[k] {
			changes = append(changes, "~"+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			changes = append(changes, "-"+k)
		}
	}
	return changes
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// reopenLogs reopens every log file (after an external rotation).
func (d *Daemon) reopenLogs() {
	n := 0
	for _, a := range d.snapshotApps() {
		for _, k := range a.Sinks(nil) {
			if err := k.Sink.Reopen(); err != nil {
				d.log.Warn("reopening logs", "app", a.Name(), "instance", k.Index, "err", err)
			}
			n++
		}
	}
	d.log.Info("log files reopened", "instances", n)
}

// enforceMemory replaces instances over their app's max_memory_restart.
// PM2 checks every 30 s; this runs on every sample (1 s), so a leak is
// caught before the machine runs out.
func (d *Daemon) enforceMemory(usage map[int]procstat.Usage) {
	for _, a := range d.snapshotApps() {
		limit := a.Spec().MaxMemoryRestart
		if limit <= 0 {
			continue
		}
		for _, in := range a.Instances() {
			if u, ok := usage[in.PID]; ok && in.PID != 0 && in.Status == tend.StatusOnline && u.Memory > uint64(limit) {
				go a.RestartForMemory(context.Background(), in.ID, u.Memory)
			}
		}
	}
}

// checkLogs reports in the daemon's log when an instance's log stops or
// starts being written again (full disk, unwritable directory); describe
// shows the current problem. It returns the problems now.
func (d *Daemon) checkLogs(before map[string]string) map[string]string {
	now := map[string]string{}
	for _, a := range d.snapshotApps() {
		for _, k := range a.Sinks(nil) {
			key := fmt.Sprintf("%s[%d]", a.Name(), k.Index)
			p := k.Sink.Problem()
			if p != "" {
				now[key] = p
			}
			switch {
			case p != "" && before[key] == "":
				d.log.Warn("logs cannot be written; the app keeps running", "instance", key, "problem", p)
			case p == "" && before[key] != "":
				d.log.Info("logs are written again", "instance", key)
			}
		}
	}
	return now
}
