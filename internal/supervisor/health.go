package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/procexec"
)

// An instance's health: its liveness probe, which runs from the time it
// is ready, and the systemd watchdog, which runs from its start. Either
// judging it unhealthy takes it out of rotation at once and replaces it
// as a reload does: the new process starts and gets ready, then the old
// one stops (cause "unhealthy").

// unhealthyBackoffCap bounds how much later than its initial delay the
// probe of a slot that keeps failing begins.
const unhealthyBackoffCap = 5 * time.Minute

// health is one process's: what its probes said.
type health struct {
	state  string        // "" until a probe or ping said anything
	fails  int           // failed probes in a row
	total  int           // failed probes in all
	dogFor time.Duration // its watchdog, as WATCHDOG_USEC told it at spawn
	dog    *time.Timer   // the watchdog's deadline, from readiness
	paused atomic.Bool   // judged unhealthy, or stopping: probes wait
}

// prober is one process's liveness probe.
type prober struct {
	what      string // "GET http://...", for messages
	period    time.Duration
	timeout   time.Duration
	threshold int
	check     func(ctx context.Context) error
}

// watchHealth readies r's probe and watchdog, which start once it is ready
// (startHealth). env is its environment. Runs in the actor.
func (a *App) watchHealth(r *run, env []string) {
	r.health.dogFor = a.spec.Watchdog.D()
	if a.spec.HasLiveness() {
		r.prober = a.newProber(r, env)
	}
}

// startHealth arms r's watchdog (systemd's starts when start-up is done)
// and starts its probe, after the initial delay, until it exits. Runs in
// the actor, when r is ready, or counted online without being so.
func (a *App) startHealth(r *run) {
	if d := r.health.dogFor; d > 0 && r.health.dog == nil {
		r.health.dog = time.AfterFunc(d, func() { a.post(func() { a.dogExpired(r) }) })
	}
	p := r.prober
	if p == nil || r.probing {
		return
	}
	r.probing = true
	// A slot whose processes keep failing is probed later each time, as
	// a crash loop restarts later each time: a broken build is not
	// replaced in a tight loop.
	delay := a.spec.LivenessDelay.D() + backoffFor(p.period, r.slot.unhealthy)
	go func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-r.proc.Done():
				return
			case <-a.quit:
				return
			}
			if !r.health.paused.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
				err := p.check(ctx)
				cancel()
				a.post(func() { a.probed(r, err) })
			}
			t.Reset(p.period)
		}
	}()
}

// backoffFor is the extra wait before the first probe of a slot's
// process after n unhealthy ones in a row: the period, doubled each time,
// up to unhealthyBackoffCap.
func backoffFor(period time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := period
	for range n - 1 {
		if d >= unhealthyBackoffCap {
			break
		}
		d *= 2
	}
	return min(d, unhealthyBackoffCap)
}

// dogExpired handles r's missed watchdog deadline. Runs in the actor.
func (a *App) dogExpired(r *run) {
	if r.exited || r.stopping {
		return
	}
	if r != r.slot.cur {
		// A reload's replacement, not serving yet: judged once it is.
		r.health.dog.Reset(r.health.dogFor)
		return
	}
	a.unhealthy(r, fmt.Sprintf("no WATCHDOG=1 within watchdog (%s)", r.health.dogFor))
}

// pinged handles a WATCHDOG= message of r: "1" pushes its deadline back,
// "trigger" fails it at once, as systemd does. Runs in the actor.
func (a *App) pinged(r *run, value string) {
	if r.health.dogFor == 0 || r.exited || r.stopping {
		return
	}
	if value == "trigger" {
		a.unhealthy(r, "it sent WATCHDOG=trigger")
		return
	}
	if r.health.dog != nil {
		r.health.dog.Reset(r.health.dogFor)
	}
	if r.health.state != tend.HealthUnhealthy {
		r.health.state = tend.HealthOK
		a.healthy(r)
	}
}

// probed records what r's probe said. Runs in the actor.
func (a *App) probed(r *run, err error) {
	if r.exited || r.stopping || r.health.state == tend.HealthUnhealthy {
		return
	}
	if err == nil {
		if r.health.fails > 0 {
			a.opt.Logf("%s[%d] pid %d: liveness %s succeeds again after %d failures", a.spec.Name, r.slot.index, r.proc.PID(), r.prober.what, r.health.fails)
		}
		r.health.state, r.health.fails = tend.HealthOK, 0
		a.healthy(r)
		return
	}
	r.health.fails++
	r.health.total++
	why := fmt.Sprintf("liveness %s failed %d of %d times in a row: %v", r.prober.what, r.health.fails, r.prober.threshold, err)
	if r.health.fails < r.prober.threshold {
		r.health.state = tend.HealthFailing
		if r == r.slot.cur {
			r.slot.problem = why
		}
		return
	}
	a.unhealthy(r, why)
}

// healthy clears what was said of r's slot's health. Runs in the actor.
func (a *App) healthy(r *run) {
	s := r.slot
	s.unhealthy = 0
	if p := s.problem; r == s.cur && (strings.HasPrefix(p, "unhealthy: ") || strings.HasPrefix(p, "liveness ")) {
		s.problem = "" // said of this process, or of the one it replaced
	}
}

// unhealthy takes r out of rotation and replaces it. Runs in the actor.
func (a *App) unhealthy(r *run, why string) {
	s := r.slot
	if r.exited || r.stopping || r.health.state == tend.HealthUnhealthy || r != s.cur {
		return
	}
	r.health.state = tend.HealthUnhealthy
	r.health.paused.Store(true)
	s.problem = "unhealthy: " + why
	s.unhealthy++
	a.share.drain(r.wid) // recycle says so in the log
	go func() {
		busy, err := a.recycle(context.Background(), []int{s.id}, "unhealthy restart", "unhealthy", why)
		a.post(func() {
			if busy || err != nil {
				a.keepUnhealthy(r, busy, err)
				return
			}
			a.unhealthyCount++
		})
	}()
}

// keepUnhealthy puts r back when its replacement could not be made: a
// reload or scale was under way (busy), or the new process did not get
// ready. It serves again, and is judged again from scratch. Runs in the
// actor.
func (a *App) keepUnhealthy(r *run, busy bool, err error) {
	if r.exited || r.stopping {
		return
	}
	if !busy {
		a.opt.Logf("%s[%d] pid %d: its replacement failed (%v); it goes on serving, and is judged again", a.spec.Name, r.slot.index, r.proc.PID(), err)
	}
	r.health.state, r.health.fails = tend.HealthFailing, 0
	r.health.paused.Store(false)
	if r.health.dog != nil {
		r.health.dog.Reset(r.health.dogFor)
	}
	a.share.undrain(r.wid)
}

// Unhealthy counts the instances the app replaced because they were
// unhealthy.
func (a *App) Unhealthy() int {
	n := 0
	a.read(func() { n = a.unhealthyCount })
	return n
}

// newProber builds r's liveness probe from the spec, with r's variables
// ($PORT) expanded.
func (a *App) newProber(r *run, env []string) *prober {
	p := &prober{
		period:    cmpDur(a.spec.LivenessPeriod, tend.DefaultLivenessPeriod),
		timeout:   cmpDur(a.spec.LivenessTimeout, tend.DefaultLivenessTimeout),
		threshold: a.spec.LivenessFailures,
	}
	if p.threshold <= 0 {
		p.threshold = tend.DefaultLivenessFailures
	}
	dial := a.proberDial(r)
	switch {
	case a.spec.LivenessHTTP != "":
		u := expandArgs([]string{a.spec.LivenessHTTP}, env)[0]
		p.what = "GET " + u
		p.check = func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
			if err != nil {
				return err
			}
			// A transport per probe, dialling with the probe's own
			// context: net/http dials with one of its own, which would
			// not end a Dial of a worker that never answers.
			tr := &http.Transport{DisableKeepAlives: true,
				DialContext: func(_ context.Context, network, addr string) (net.Conn, error) { return dial(ctx, network, addr) }}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				return unwrapURL(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return fmt.Errorf("it answered %s", resp.Status)
			}
			return nil
		}
	case a.spec.LivenessTCP != "":
		addr := strings.TrimPrefix(expandArgs([]string{a.spec.LivenessTCP}, env)[0], "tcp://")
		p.what = "tcp " + addr
		p.check = func(ctx context.Context) error {
			c, err := dial(ctx, "tcp", addr)
			if err == nil {
				c.Close()
			}
			return err
		}
	default:
		line, dir := a.spec.LivenessExec, a.spec.Cwd
		p.what = "exec " + line
		// The instance's variables, but not its channel, sockets or
		// preloads: those are the instance's alone.
		preload := a.nodePreload()
		penv := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
			k, v, _ := strings.Cut(kv, "=")
			return slices.Contains(InstanceOnly, k) || k == "NODE_OPTIONS" && preload != "" && strings.Contains(v, preload)
		})
		cred := a.res.Cred
		p.check = func(ctx context.Context) error { return RunCommand(ctx, line, penv, dir, true, cred) }
	}
	return p
}

// InstanceOnly are the variables of an instance that belong to its
// process alone: a probe or hook run beside it must not take its channel,
// its sockets or its notify socket for its own.
var InstanceOnly = []string{
	"NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE", "NODE_UNIQUE_ID", "TEND_CHANNEL_FD",
	"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
	procexec.MarkerEnv,
}

// proberDial is how r's probe connects: in cluster mode, to a port the
// worker listens on through tend, by a connection handed to that worker
// (nodecluster.Primary.Dial), so that the probe judges it and no other;
// anywhere else, directly (in proxy mode $PORT is the instance's own).
func (a *App) proberDial(r *run) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	primary, wid := a.share.primary, r.wid
	cluster, shared := a.res.Mode == tend.ModeCluster, a.spec.Port
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if cluster {
			if _, p, err := net.SplitHostPort(addr); err == nil {
				port, _ := strconv.Atoi(p)
				c, err := primary.Dial(ctx, wid, port)
				// Not listening on --port, which tend holds: it is not
				// there yet, whatever answers on the port.
				if !errors.Is(err, nodecluster.ErrNotListening) || port == shared {
					return c, err
				}
			}
		}
		return d.DialContext(ctx, network, addr)
	}
}

func cmpDur(d, def tend.Duration) time.Duration {
	if d > 0 {
		return d.D()
	}
	return def.D()
}

// unwrapURL drops the "Get URL:" net/http puts before a transport error:
// the probe's description says it.
func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		return ue.Unwrap()
	}
	return err
}
