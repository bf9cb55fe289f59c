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
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/nodecluster"
)

// An instance's health: its liveness probe, which runs from the time it
// is ready, and the systemd watchdog, which runs from its start. Either
// judging it unhealthy takes it out of rotation at once and replaces it
// as a reload does: the new process starts and gets ready, then the old
// one stops (cause "unhealthy").

// unhealthyBackoffCap bounds how much later than its initial delay the
// probe of a slot that keeps failing begins.
const unhealthyBackoffCap = 5 * time.Minute

// Health states of tend.Instance.Health.
const (
	healthOK        = "healthy"
	healthFailing   = "failing" // failed probes, fewer than the threshold
	healthUnhealthy = "unhealthy"
)

// health is one process's: what its probes said.
type health struct {
	state string      // "" until a probe or ping said anything
	fails int         // failed probes in a row
	total int         // failed probes in all
	dog   *time.Timer // the watchdog's deadline
}

// prober is one process's liveness probe.
type prober struct {
	what      string // "http http://...", for messages
	period    time.Duration
	timeout   time.Duration
	threshold int
	check     func(ctx context.Context) error
}

// watchHealth arms r's watchdog, and readies its liveness probe for when
// it is ready. env is its environment. Runs in the actor.
func (a *App) watchHealth(r *run, env []string) {
	if d := a.spec.Watchdog.D(); d > 0 {
		r.health.dog = time.AfterFunc(d, func() {
			a.post(func() { a.unhealthy(r, fmt.Sprintf("no WATCHDOG=1 within watchdog (%s)", d)) })
		})
	}
	if a.spec.HasLiveness() {
		r.prober = a.newProber(r, env)
	}
}

// pinged handles a WATCHDOG= message of r: "1" pushes its deadline back,
// "trigger" fails it at once, as systemd does. Runs in the actor.
func (a *App) pinged(r *run, value string) {
	if r.health.dog == nil || r.exited || r.stopping {
		return
	}
	if value == "trigger" {
		a.unhealthy(r, "it sent WATCHDOG=trigger")
		return
	}
	r.health.dog.Reset(a.spec.Watchdog.D())
	if r.health.state != healthUnhealthy {
		r.health.state = healthOK
	}
}

// startProbes runs r's liveness probe from now (it is ready), after the
// initial delay, until it exits. Runs in the actor.
func (a *App) startProbes(r *run) {
	p := r.prober
	if p == nil {
		return
	}
	// A slot whose processes keep failing is probed later each time, as
	// a crash loop restarts later each time: a broken build is not
	// replaced in a tight loop.
	delay := a.spec.LivenessDelay.D()
	if n := r.slot.unhealthy; n > 0 {
		delay += min(p.period<<min(n-1, 16), unhealthyBackoffCap)
	}
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
			ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			err := p.check(ctx)
			cancel()
			a.post(func() { a.probed(r, err) })
			t.Reset(p.period)
		}
	}()
}

// probed records what r's probe said. Runs in the actor.
func (a *App) probed(r *run, err error) {
	if r.exited || r.stopping || r.health.state == healthUnhealthy {
		return
	}
	if err == nil {
		if r.health.fails > 0 {
			a.opt.Logf("%s[%d] pid %d: liveness %s succeeds again after %d failures", a.spec.Name, r.slot.index, r.proc.PID(), r.prober.what, r.health.fails)
		}
		if p := r.slot.problem; r == r.slot.cur && (strings.HasPrefix(p, "unhealthy: ") || strings.HasPrefix(p, "liveness ")) {
			r.slot.problem = "" // said of this process, or of the one it replaced
		}
		r.health.state, r.health.fails = healthOK, 0
		r.slot.unhealthy = 0
		return
	}
	r.health.fails++
	r.health.total++
	why := fmt.Sprintf("liveness %s failed %d of %d times in a row: %v", r.prober.what, r.health.fails, r.prober.threshold, err)
	if r.health.fails < r.prober.threshold {
		r.health.state = healthFailing
		if r == r.slot.cur {
			r.slot.problem = why
		}
		return
	}
	a.unhealthy(r, why)
}

// unhealthy takes r out of rotation and replaces it. Runs in the actor.
func (a *App) unhealthy(r *run, why string) {
	s := r.slot
	if r.exited || r.stopping || r.health.state == healthUnhealthy || r != s.cur {
		return
	}
	r.health.state = healthUnhealthy
	s.problem = "unhealthy: " + why
	s.unhealthy++
	a.unhealthyCount++
	a.share.drain(r.wid) // recycle says so in the log
	go func() {
		if busy := a.recycle(context.Background(), []int{s.id}, "unhealthy restart", "unhealthy", why); busy {
			// A reload or scale is under way: it may replace r anyway;
			// if not, the next failed probe tries again.
			a.post(func() {
				if !r.exited && !r.stopping {
					r.health.state, r.health.fails = healthFailing, r.prober.threshold-1
					a.share.ready(r.wid, r.probe)
				}
			})
		}
	}()
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
		client := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
		p.check = func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
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
		penv := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
			k, _, _ := strings.Cut(kv, "=")
			return slices.Contains(stripped, k) || k == "NODE_OPTIONS" && a.nodePreload() != ""
		})
		p.check = func(ctx context.Context) error { return RunCommand(ctx, line, penv, dir) }
	}
	return p
}

// proberDial is how r's probe connects: in cluster mode, to a port the
// worker listens on through tend, by a connection handed to that worker
// (nodecluster.Primary.Dial), so that the probe judges it and no other;
// anywhere else, directly (in proxy mode $PORT is the instance's own).
func (a *App) proberDial(r *run) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	primary, wid := a.share.primary, r.wid
	cluster := a.res.Mode == tend.ModeCluster
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if cluster {
			if _, p, err := net.SplitHostPort(addr); err == nil {
				port, _ := strconv.Atoi(p)
				c, err := primary.Dial(ctx, wid, port)
				if !errors.Is(err, nodecluster.ErrNotListening) {
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
