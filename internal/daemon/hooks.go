package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/supervisor"
)

// Notifications: an app's on_exit, on_errored and on_unhealthy commands
// and its notify_url hear of what happens to its instances. They run
// beside supervision, never in its way: the hooks read the event stream as
// any `tend events` does (a slow reader loses events, never delays them),
// wait in bounded queues (commands and posts apart, so a slow receiver
// holds up no command), run a few at a time, and a hook that hangs is
// killed after hookTimeout; a post gives up after hookTimeout, retries
// included.

// Hook is what a notification says, as a hook's environment (TEND_*) and
// as the JSON notify_url receives.
type Hook struct {
	Event    string    `json:"event"` // "exit", "errored" or "unhealthy"
	Time     time.Time `json:"time"`
	App      string    `json:"app"`
	Instance int       `json:"instance"`
	ID       int       `json:"id"`
	PID      int       `json:"pid,omitempty"`
	Code     *int      `json:"exit_code,omitempty"`
	Signal   string    `json:"signal,omitempty"`
	Reason   string    `json:"reason"`
	Log      []string  `json:"log"` // its last lines, stdout and stderr
}

const (
	hookQueue    = 64               // notifications waiting, per queue; past it the oldest exit is dropped
	hookWorkers  = 2                // commands (and posts) run at once
	hookTimeout  = 30 * time.Second // a hook that takes longer is killed; a post, retries included, given up
	hookLogLines = 20
	hookRetries  = 3 // posts to notify_url after the first, hk.retry apart, doubling
)

// hooks delivers notifications for the daemon's apps.
type hooks struct {
	d      *Daemon
	once   sync.Once
	prev   map[int]tend.Event // the last state of each instance, to see changes
	post   func(ctx context.Context, url string, body []byte) error
	retry  time.Duration // the first wait between posts; doubles
	cmds   jobQueue
	posts  jobQueue
	mu     sync.Mutex // guards ctx and cancel, set once by watch
	ctx    context.Context
	cancel context.CancelCauseFunc
	// running counts the workers.
	running sync.WaitGroup
}

// job is one hook to run, or one post to make.
type job struct {
	a   *supervisor.App
	cmd string // "" for the post
	h   Hook
}

// watch starts delivering notifications, the first time an app that asks
// for them starts: until then no event is even made for them.
func (hk *hooks) watch(d *Daemon) {
	hk.once.Do(func() {
		hk.d = d
		hk.prev = map[int]tend.Event{}
		if hk.post == nil {
			hk.post = postJSON
		}
		if hk.retry == 0 {
			hk.retry = 500 * time.Millisecond
		}
		// Hooks still running when the daemon ends are killed with it
		// (stop).
		hk.mu.Lock()
		hk.ctx, hk.cancel = context.WithCancelCause(context.Background())
		hk.mu.Unlock()
		hk.cmds.ready = make(chan struct{}, 1)
		hk.posts.ready = make(chan struct{}, 1)
		sub, _ := d.hub.subscribe() // for the daemon's life
		// What runs already is where changes start from.
		for _, a := range d.snapshotApps() {
			for _, in := range a.Instances() {
				hk.prev[in.ID] = tend.EventOf(in, tend.EventInstance, time.Now())
			}
		}
		go hk.read(sub.ch)
		for range hookWorkers {
			hk.running.Go(func() { hk.work(&hk.cmds) })
			hk.running.Go(func() { hk.work(&hk.posts) })
		}
	})
}

// stop kills the hooks that run and drops those that wait, as the daemon
// ends, and returns once they are gone: none outlives it.
func (hk *hooks) stop() {
	hk.mu.Lock()
	cancel := hk.cancel
	hk.mu.Unlock()
	if cancel == nil {
		return // never started
	}
	cancel(errors.New("the daemon stopped"))
	done := make(chan struct{})
	go func() { hk.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second): // RunCommand's WaitDelay is 1 s
	}
}

// read turns instance events into notifications.
func (hk *hooks) read(events <-chan tend.Event) {
	for ev := range events {
		switch ev.Kind {
		case tend.EventRemoved:
			delete(hk.prev, ev.ID)
			continue
		case tend.EventLost:
			hk.d.log.Warn("notifications: events were lost under load; some hooks did not run", "lost", ev.Lost)
			continue
		}
		prev, seen := hk.prev[ev.ID]
		hk.prev[ev.ID] = ev
		if !seen || prev.App != ev.App {
			continue
		}
		a := hk.app(ev.App)
		if a == nil {
			continue
		}
		spec := a.Spec()
		if !spec.HasHooks() {
			continue
		}
		for _, h := range changes(prev, ev) {
			hk.enqueue(a, spec, h)
		}
	}
}

// changes are the notifications the change from prev to ev makes.
func changes(prev, ev tend.Event) []Hook {
	base := Hook{Time: ev.Time, App: ev.App, Instance: ev.Instance, ID: ev.ID, PID: ev.PID}
	var out []Hook
	if x := ev.LastExit; x != nil && (prev.LastExit == nil || !x.Time.Equal(prev.LastExit.Time)) && byItself(x.Cause) {
		h := base
		h.Event, h.PID, h.Signal = "exit", prev.PID, x.Signal
		if x.Signal == "" {
			code := x.Code
			h.Code = &code
		}
		h.Reason = fmt.Sprintf("%s after %s", exitText(x), time.Duration(x.UptimeMS)*time.Millisecond)
		out = append(out, h)
	}
	if ev.Status == tend.StatusErrored && prev.Status != tend.StatusErrored {
		h := base
		h.Event, h.Reason = "errored", ev.Problem
		out = append(out, h)
	}
	if ev.Health == tend.HealthUnhealthy && prev.Health != tend.HealthUnhealthy {
		h := base
		h.Event, h.Reason = "unhealthy", ev.Problem
		out = append(out, h)
	}
	return out
}

// byItself reports whether an exit of that cause was the app's doing, not
// a stop, restart or replacement that tend or the user asked for.
func byItself(cause string) bool {
	return cause == "crash" || cause == "exit" || cause == "disconnect"
}

func exitText(x *tend.Exit) string {
	if x.Signal != "" {
		return "killed by " + x.Signal
	}
	return "exit code " + strconv.Itoa(x.Code)
}

// enqueue queues the app's hook for h and its post.
func (hk *hooks) enqueue(a *supervisor.App, spec tend.AppSpec, h Hook) {
	if cmd := map[string]string{"exit": spec.OnExit, "errored": spec.OnErrored, "unhealthy": spec.OnUnhealthy}[h.Event]; cmd != "" {
		hk.queue(&hk.cmds, job{a: a, cmd: cmd, h: h})
	}
	if spec.NotifyURL != "" {
		hk.queue(&hk.posts, job{a: a, h: h})
	}
}

func (hk *hooks) queue(q *jobQueue, j job) {
	if dropped, ok := q.push(j); ok {
		hk.d.log.Warn("notifications: a queue is full; dropped the oldest", "app", dropped.h.App, "event", dropped.h.Event)
	}
}

// work runs the jobs of q, one at a time.
func (hk *hooks) work(q *jobQueue) {
	for {
		j, ok := q.pop(hk.ctx)
		if !ok {
			return
		}
		// What the process wrote before it ended is all in the log.
		j.a.AwaitExited(j.h.ID)
		if hk.ctx.Err() != nil {
			return
		}
		j.h.Log = lastLines(j.a, j.h.ID, j.h.Time)
		spec := j.a.Spec()
		var err error
		what := "notify_url"
		if j.cmd != "" {
			what = "on_" + j.h.Event
			err = hk.runHook(j.a, spec, j.cmd, j.h)
		} else {
			err = hk.deliver(spec.NotifyURL, j.h)
		}
		if err != nil {
			hk.d.appLogf(j.h.App)("%s: %s of %s[%d] failed: %v", j.h.App, what, j.h.Event, j.h.Instance, err)
		}
	}
}

// app finds a registered app by name.
func (hk *hooks) app(name string) *supervisor.App {
	hk.d.mu.Lock()
	defer hk.d.mu.Unlock()
	return hk.d.apps[name]
}

// lastLines are the last lines instance id wrote up to the event at t
// (and the moment its output takes to be read): not those of the process
// that replaced it since, when the queue was slow.
func lastLines(a *supervisor.App, id int, t time.Time) []string {
	out := []string{}
	for _, k := range a.Sinks([]int{id}) {
		for _, l := range k.Sink.Tail(4 * hookLogLines) {
			if l.Time.IsZero() || !l.Time.After(t.Add(time.Second)) {
				out = append(out, l.Text)
			}
		}
	}
	return out[max(0, len(out)-hookLogLines):]
}

// runHook runs cmd for h in the app's directory, as the app's user, with
// the app's environment and what h says, killed after hookTimeout. The command line
// is not expanded by tend: what comes from the app (its log lines, the
// reason) reaches the hook as variables only, never as code; a shell
// expands "$TEND_APP" where the hook asks it to.
func (hk *hooks) runHook(a *supervisor.App, spec tend.AppSpec, cmd string, h Hook) error {
	ctx, cancel := context.WithTimeoutCause(hk.ctx, hookTimeout, fmt.Errorf("on_%s ran over %s", h.Event, hookTimeout))
	defer cancel()
	return supervisor.RunCommand(ctx, cmd, hookEnv(a, spec, h), spec.Cwd, false, a.Resolved().Cred)
}

// hookEnv is what a hook is told: the app's environment (the shell's, its
// env_file, its own variables; none of an instance's own sockets), then
// TEND_*.
func hookEnv(a *supervisor.App, spec tend.AppSpec, h Hook) []string {
	vars := tend.EnvMap(spec.BaseEnv)
	maps.Copy(vars, a.Resolved().UserEnv)
	maps.Copy(vars, a.Resolved().FileEnv)
	maps.Copy(vars, spec.Env)
	for _, k := range supervisor.InstanceOnly {
		delete(vars, k)
	}
	code := ""
	if h.Code != nil {
		code = strconv.Itoa(*h.Code)
	}
	log := strings.Join(h.Log, "\n")
	if len(log) > 8<<10 {
		log = log[len(log)-8<<10:] // environments are bounded
	}
	for k, v := range map[string]string{"TEND_EVENT": h.Event, "TEND_APP": h.App, "TEND_INSTANCE": strconv.Itoa(h.Instance),
		"TEND_ID": strconv.Itoa(h.ID), "TEND_PID": strconv.Itoa(h.PID), "TEND_EXIT_CODE": code,
		"TEND_SIGNAL": h.Signal, "TEND_REASON": h.Reason, "TEND_LOG_LINES": log} {
		vars[k] = v
	}
	env := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+strings.ReplaceAll(vars[k], "\x00", "")) // a NUL cannot be in an environment
	}
	return env
}

// jobQueue is a bounded queue of notifications. Full, it drops its oldest
// exit notice (errored and unhealthy ones are rarer and matter more), or
// else its oldest.
type jobQueue struct {
	mu    sync.Mutex
	jobs  []job
	ready chan struct{} // a 1-buffered signal that jobs is not empty
}

// push adds j, and returns what it dropped to make room.
func (q *jobQueue) push(j job) (dropped job, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) >= hookQueue {
		i := slices.IndexFunc(q.jobs, func(j job) bool { return j.h.Event == "exit" })
		i = max(i, 0)
		dropped, ok = q.jobs[i], true
		q.jobs = slices.Delete(q.jobs, i, i+1)
	}
	q.jobs = append(q.jobs, j)
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped, ok
}

// pop takes the oldest job, waiting for one until ctx ends.
func (q *jobQueue) pop(ctx context.Context) (job, bool) {
	for {
		if ctx.Err() != nil {
			return job{}, false // the daemon stops: what waits is dropped
		}
		q.mu.Lock()
		if len(q.jobs) > 0 {
			j := q.jobs[0]
			q.jobs = q.jobs[1:]
			more := len(q.jobs) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.ready <- struct{}{}: // the other worker's turn
				default:
				}
			}
			return j, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			return job{}, false
		}
	}
}
