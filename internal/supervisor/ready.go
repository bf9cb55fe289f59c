package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/logfile"
	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/notify"
	"github.com/tendhq/tend/internal/procexec"
	"github.com/tendhq/tend/internal/sockets"
)

// run is one process of a slot, from spawn to exit.
type run struct {
	slot       *slot
	proc       Proc
	wid        int // worker id in the Node primary, backend id in the proxy
	started    time.Time
	ready      bool
	readyBy    string // what said so: listening, ready, notify, tcp, http, timeout
	readyAt    time.Time
	listenPort int    // the port a Node worker reported listening on
	probe      string // proxy mode: the private address it listens on
	stopping   bool
	stopCause  string // why it is stopped: stop, restart, delete, reload, scale
	left       bool   // a Node worker that disconnected by itself (exitedAfterDisconnect)
	exited     bool
	tree       []procexec.Ref // descendants seen when the stop began
	stopBegan  time.Time      // when the stop signal (or disconnect) went out
	killTimer  *time.Timer
	out        chan struct{}   // closed once its output is all read
	readyURL   string          // the ready_url probed, $VARs expanded
	marker     string          // procexec.MarkerEnv: finds what it spawned that left its tree
	waiters    []chan struct{} // closed at exit
	onReady    []chan error    // told once: nil when ready, why not otherwise
	notify     *notify.Server
	prober     *prober // its liveness probe, nil without one
	probing    bool    // its probe loop runs
	health     health
	cgroup     bool // it has a cgroup of its own (cgroupKey)
}

func (r *run) done() {
	for _, w := range r.waiters {
		close(w)
	}
	r.waiters = nil
}

func (r *run) failReady(err error) {
	for _, c := range r.onReady {
		c <- err
	}
	r.onReady = nil
}

func (r *run) closeNotify() {
	if r.notify != nil {
		r.notify.Close()
		os.Remove(r.notify.Path())
		r.notify = nil
	}
}

// readyWait returns a channel that receives nil once r is ready, or why
// it never will be. Runs in the actor.
func (r *run) readyWait() chan error {
	c := make(chan error, 1)
	switch {
	case r.ready:
		c <- nil
	case r.exited || r.stopping:
		c <- fmt.Errorf("it is gone")
	default:
		r.onReady = append(r.onReady, c)
	}
	return c
}

// readySignal names what makes an instance of this app ready, "" when
// nothing is configured: then listen_timeout expiring does (or READY=1
// on NOTIFY_SOCKET, which every instance may send).
func (a *App) readySignal() string {
	switch {
	case a.spec.ReadyURL != "":
		if strings.HasPrefix(a.spec.ReadyURL, "tcp://") {
			return "tcp"
		}
		return "http"
	case a.spec.WaitReady:
		return "ready"
	case a.res.Mode == tend.ModeCluster:
		return "listening"
	case a.res.Mode == tend.ModeProxy:
		return "tcp"
	}
	return ""
}

func (a *App) listenTimeout() time.Duration {
	if d := a.spec.ListenTimeout.D(); d > 0 {
		return d
	}
	return tend.DefaultListenTimeout.D()
}

// listenNotify gives r its own NOTIFY_SOCKET, so READY=1 from the app
// (sd_notify) marks exactly this process ready. With a keeper, the socket
// is also held there, as heldNotify: the duplicate it returns is the
// caller's to close once the process started.
func (a *App) listenNotify(r *run, c *procexec.Cmd) *os.File {
	if a.opt.RunDir == "" {
		return nil
	}
	srv, err := notify.Listen(a.notifyPath(r), a.notifyPeers()...)
	if err != nil {
		a.opt.Logf("%s: no NOTIFY_SOCKET for this instance: %v", a.spec.Name, err)
		return nil
	}
	c.Env = append(c.Env, "NOTIFY_SOCKET="+srv.Path())
	a.serveNotify(r, srv)
	if a.opt.Store == nil {
		return nil
	}
	dup, err := sockets.DupFD(srv)
	if err != nil {
		return nil
	}
	c.Hold = append(c.Hold, procexec.Held{Name: heldNotify, FD: int(dup.Fd())})
	return dup
}

// notifyPath is r's NOTIFY_SOCKET: in tend's private run directory, or,
// for an instance of another user, who could not reach it there, an
// abstract socket that only that user may send to, named with r's random
// marker so that nobody can take the name first.
func (a *App) notifyPath(r *run) string {
	if a.res.Cred != nil {
		return "@" + filepath.Join(a.opt.RunDir, fmt.Sprintf("%d-%d-%s.sock", r.slot.id, r.wid, r.marker))
	}
	return filepath.Join(a.opt.RunDir, fmt.Sprintf("%d-%d.sock", r.slot.id, r.wid))
}

// notifyPeers are the users besides tend's own who may notify: the app's.
func (a *App) notifyPeers() []uint32 {
	if a.res.Cred == nil {
		return nil
	}
	return []uint32{a.res.Cred.UID}
}

// serveNotify makes srv r's notify socket and acts on what it receives.
func (a *App) serveNotify(r *run, srv *notify.Server) {
	r.notify = srv
	go func() {
		for m := range srv.Messages() {
			if m.Ready {
				a.post(func() { a.markReady(r, "notify") })
			}
			if v := m.Fields["WATCHDOG"]; v != "" {
				a.post(func() { a.pinged(r, v) })
			}
		}
	}()
}

// watchReady arms what will make r ready: probes, and the listen_timeout.
// Runs in the actor.
func (a *App) watchReady(r *run, env []string) {
	if a.spec.ReadyURL != "" {
		r.readyURL = expandArgs([]string{a.spec.ReadyURL}, env)[0]
	}
	a.armReady(r)
}

// armReady starts r's probes and its listen_timeout. Runs in the actor.
func (a *App) armReady(r *run) {
	signal := a.readySignal()
	ready := func(by string) func() {
		return func() { a.post(func() { a.markReady(r, by) }) }
	}
	// In cluster mode the probe's connection goes to this worker, as a
	// liveness probe's does: on the port every worker shares, another one
	// would answer for it.
	dial := a.proberDial(r)
	switch {
	case r.readyURL != "":
		target := r.readyURL
		if rest, ok := strings.CutPrefix(target, "tcp://"); ok {
			go probeTCP(rest, dial, r.proc.Done(), ready("tcp"))
		} else {
			go probeHTTP(target, dial, r.proc.Done(), ready("http"))
		}
	case signal == "tcp" && r.probe != "":
		go probeTCP(r.probe, dial, r.proc.Done(), ready("tcp"))
	}
	timeout := a.listenTimeout()
	time.AfterFunc(timeout, func() {
		a.post(func() {
			if r.ready || r.exited || r.stopping {
				return
			}
			if signal == "" {
				a.markReady(r, "timeout")
				return
			}
			err := fmt.Errorf("not ready within listen_timeout (%s): no %s", timeout, signalText(signal))
			r.failReady(err)
			if s := r.slot; r == s.cur {
				// Counted online, as PM2 does, but said plainly; its
				// health is watched as if it were ready.
				s.status = tend.StatusOnline
				s.problem = err.Error()
				a.startHealth(r)
			}
		})
	})
}

func signalText(signal string) string {
	switch signal {
	case "listening":
		return "listen() on a port"
	case "ready":
		return "process.send('ready') or READY=1"
	case "tcp":
		return "connection accepted on its port"
	case "http":
		return "2xx answer from its ready URL"
	}
	return signal
}

// markReady records that r is ready. Runs in the actor.
func (a *App) markReady(r *run, by string) {
	if r.ready || r.exited || r.stopping {
		return
	}
	r.ready, r.readyBy, r.readyAt = true, by, time.Now()
	a.share.ready(r.wid, r.slot.index, r.probe)
	a.startHealth(r)
	r.failReady(nil)
	if s := r.slot; r == s.cur && s.status == tend.StatusLaunching {
		s.status = tend.StatusOnline
	}
}

// probeEvery is how often a launching instance is probed: quick enough
// that a fast app joins within a few ms, cheap for a slow one.
const probeEvery = 10 * time.Millisecond

// dialFunc connects a probe.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// probeTCP calls ready once addr accepts a connection, unless done closes
// first (the process died).
func probeTCP(addr string, dial dialFunc, done <-chan struct{}, ready func()) {
	probe(done, ready, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := dial(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// probeHTTP calls ready once u answers 2xx.
func probeHTTP(u string, dial dialFunc, done <-chan struct{}, ready func()) {
	if _, err := url.Parse(u); err != nil {
		return
	}
	probe(done, ready, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		tr := &http.Transport{DisableKeepAlives: true,
			DialContext: func(_ context.Context, network, addr string) (net.Conn, error) { return dial(ctx, network, addr) }}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 300
	})
}

func probe(done <-chan struct{}, ready func(), ok func() bool) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		if ok() {
			ready()
			return
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// forwardEvents feeds the events of the apps' message channels to the actor.
func (a *App) forwardEvents() {
	for {
		select {
		case ev := <-a.share.events:
			a.post(func() { a.nodeEvent(ev) })
		case <-a.quit:
			return
		}
	}
}

// runOf finds the live process with worker id wid.
func (a *App) runOf(wid int) *run {
	for _, s := range a.slots {
		for _, r := range append([]*run{s.cur, s.next}, s.old...) {
			if r != nil && r.wid == wid {
				return r
			}
		}
	}
	return nil
}

// nodeEvent handles what a process said on its channel. Runs in the actor.
func (a *App) nodeEvent(ev nodecluster.Event) {
	r := a.runOf(ev.Worker)
	if r == nil || r.exited {
		return
	}
	s := r.slot
	switch ev.Kind {
	case nodecluster.Listening:
		if r.listenPort == 0 {
			r.listenPort = ev.Port
		}
		if p := a.spec.Port; p > 0 && ev.Port != p && ev.Port > 0 {
			s.problem = fmt.Sprintf("listens on port %d, not on --port %d", ev.Port, p)
			a.opt.Logf("%s[%d]: %s", a.spec.Name, s.index, s.problem)
		}
		if a.readySignal() == "listening" {
			a.markReady(r, "listening")
		}
	case nodecluster.Ready:
		a.markReady(r, "ready")
	case nodecluster.Error:
		where := fmt.Sprintf("port %d", ev.Port)
		if ev.Port <= 0 && ev.Address != "" {
			where = ev.Address // a unix socket's path
		}
		s.problem = fmt.Sprintf("listen on %s failed: %v", where, ev.Err)
		a.opt.Logf("%s[%d]: %s", a.spec.Name, s.index, s.problem)
	case nodecluster.Leaving:
		r.left = true
	case nodecluster.Message:
		// What an app sends shows in tend logs, next to its output.
		s.sink.ReadFrom(logfile.Stdout, strings.NewReader("[message] "+string(ev.Msg)+"\n"))
	case nodecluster.Disconnected:
		if ev.Err != nil && !r.stopping {
			// Refused, not silently dropped: the app's own log says so.
			s.problem = fmt.Sprintf("its message channel was closed: %v", ev.Err)
			a.opt.Logf("%s[%d] pid %d: %s", a.spec.Name, s.index, r.proc.PID(), s.problem)
			s.sink.ReadFrom(logfile.Stderr, strings.NewReader("[tend] "+s.problem+"\n"))
		}
	}
}
