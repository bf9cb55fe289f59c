package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
// wait in a bounded queue, run a few at a time, and a hook that hangs is
// killed after hookTimeout.

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
	hookQueue    = 64               // notifications waiting; more are dropped and counted
	hookWorkers  = 2                // hooks run at once
	hookTimeout  = 30 * time.Second // a hook or a post that takes longer is killed or abandoned
	hookLogLines = 20
	hookRetries  = 3 // posts to notify_url after the first, hk.retry apart, doubling
)

// hooks delivers notifications for the daemon's apps.
type hooks struct {
	d       *Daemon
	once    sync.Once
	queue   chan job
	prev    map[int]tend.Event // the last state of each instance, to see changes
	post    func(ctx context.Context, url string, body []byte) error
	ctx     context.Context // ends with the daemon
	cancel  context.CancelCauseFunc
	running sync.WaitGroup // the workers
	retry   time.Duration  // the first wait between posts; doubles
}

// job is one hook to run, or one post to make.
type job struct {
	spec tend.AppSpec
	cmd  string // "" for the post
	h    Hook
}

// watch starts delivering notifications, the first time an app that asks
// for them starts: until then no event is even made for them.
func (hk *hooks) watch(d *Daemon) {
	hk.once.Do(func() {
		hk.d = d
		hk.queue = make(chan job, hookQueue)
		hk.prev = map[int]tend.Event{}
		if hk.post == nil {
			hk.post = postJSON
		}
		if hk.retry == 0 {
			hk.retry = 500 * time.Millisecond
		}
		// Hooks still running when the daemon ends are killed with it
		// (stop).
		hk.ctx, hk.cancel = context.WithCancelCause(context.Background())
		sub, _ := d.hub.subscribe() // for the daemon's life
		// What runs already is where changes start from.
		for _, a := range d.snapshotApps() {
			for _, in := range a.Instances() {
				hk.prev[in.ID] = tend.EventOf(in, tend.EventInstance, time.Now())
			}
		}
		go hk.read(sub.ch)
		for range hookWorkers {
			hk.running.Go(hk.work)
		}
	})
}

// stop kills the hooks that run and drops those that wait, as the daemon
// ends, and returns once they are gone: none outlives it.
func (hk *hooks) stop() {
	if hk.cancel == nil {
		return // never started
	}
	hk.cancel(errors.New("the daemon stopped"))
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
			h.Log = lastLines(a, ev.ID)
			hk.enqueue(spec, h)
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
	if ev.Health == "unhealthy" && prev.Health != "unhealthy" {
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

// enqueue queues the app's hook for h and its post, dropping them when
// the queue is full rather than waiting.
func (hk *hooks) enqueue(spec tend.AppSpec, h Hook) {
	var jobs []job
	if cmd := map[string]string{"exit": spec.OnExit, "errored": spec.OnErrored, "unhealthy": spec.OnUnhealthy}[h.Event]; cmd != "" {
		jobs = append(jobs, job{spec: spec, cmd: cmd, h: h})
	}
	if spec.NotifyURL != "" {
		jobs = append(jobs, job{spec: spec, h: h})
	}
	for _, j := range jobs {
		select {
		case hk.queue <- j:
		default:
			hk.d.log.Warn("notifications: the queue is full; dropped one", "app", h.App, "event", h.Event)
		}
	}
}

// work runs queued hooks and posts, one at a time.
func (hk *hooks) work() {
	for {
		var j job
		select {
		case j = <-hk.queue:
		case <-hk.ctx.Done():
			return
		}
		var err error
		what := "notify_url"
		if j.cmd != "" {
			what = "on_" + j.h.Event
			err = hk.runHook(j.spec, j.cmd, j.h)
		} else {
			err = hk.deliver(j.spec.NotifyURL, j.h)
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

// lastLines are the last lines instance id wrote.
func lastLines(a *supervisor.App, id int) []string {
	out := []string{}
	for _, k := range a.Sinks([]int{id}) {
		for _, l := range k.Sink.Tail(hookLogLines) {
			out = append(out, l.Text)
		}
	}
	return out
}

// runHook runs cmd for h in the app's directory, with the app's
// environment and what h says, killed after hookTimeout.
func (hk *hooks) runHook(spec tend.AppSpec, cmd string, h Hook) error {
	ctx, cancel := context.WithTimeoutCause(hk.ctx, hookTimeout, fmt.Errorf("on_%s ran over %s", h.Event, hookTimeout))
	defer cancel()
	return supervisor.RunCommand(ctx, cmd, append(slices.Clone(spec.BaseEnv), hookEnv(spec, h)...), spec.Cwd)
}

// hookEnv is what a hook is told: the app's variables, then TEND_*.
func hookEnv(spec tend.AppSpec, h Hook) []string {
	env := make([]string, 0, len(spec.Env)+10)
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	code := ""
	if h.Code != nil {
		code = strconv.Itoa(*h.Code)
	}
	log := strings.Join(h.Log, "\n")
	if len(log) > 8<<10 {
		log = log[len(log)-8<<10:] // environments are bounded
	}
	return append(env, "TEND_EVENT="+h.Event, "TEND_APP="+h.App, "TEND_INSTANCE="+strconv.Itoa(h.Instance),
		"TEND_ID="+strconv.Itoa(h.ID), "TEND_PID="+strconv.Itoa(h.PID), "TEND_EXIT_CODE="+code,
		"TEND_SIGNAL="+h.Signal, "TEND_REASON="+h.Reason, "TEND_LOG_LINES="+log)
}

// deliver posts h to url, retrying with a doubling wait: a receiver that
// is down for a moment still hears of it.
func (hk *hooks) deliver(url string, h Hook) error {
	body, err := json.Marshal(h)
	if err != nil {
		return err
	}
	wait := hk.retry
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(hk.ctx, hookTimeout/3)
		err = hk.post(ctx, url, body)
		cancel()
		if err == nil || try == hookRetries || hk.ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(wait):
		case <-hk.ctx.Done():
		}
		wait *= 2
	}
}

// postJSON POSTs body to url and wants a 2xx answer.
func postJSON(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tend/"+tend.Version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
