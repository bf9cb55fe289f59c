package daemon

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/keeper"
	"github.com/tendhq/tend/internal/sockets"
	"github.com/tendhq/tend/internal/web"
)

// webState is the dashboard: the history its charts draw and the last
// reloads, kept whether or not it is served (web.HistoryBytes per
// instance, web.MaxReloads reports), and its server while it is served.
type webState struct {
	history web.History
	reloads web.Reloads
	mu      sync.Mutex
	srv     *web.Server // nil: not served
	// held is the listener the keeper held for the previous daemon's
	// dashboard, until it is served again or let go.
	held net.Listener
	kept bool // the keeper holds a copy of srv's listener
}

// webName is the keeper's store entry for the dashboard's listening
// socket. Held while one daemon gives way to the next, the port is never
// free for another process to take (and catch the page's session cookie
// as it reconnects), and the page's requests wait for the next daemon.
const webName = "web"

// webSource is what the dashboard reads: the event hub and the instances.
type webSource struct{ d *Daemon }

func (s webSource) Subscribe() (<-chan tend.Event, func()) {
	sub, cancel := s.d.hub.subscribe()
	return sub.ch, cancel
}

func (s webSource) Instances() []tend.Instance { return s.d.instances() }

func (s webSource) Reloads() ([]tend.ReloadRecord, uint64) { return s.d.web.reloads.List() }

// byKey marks the context of a request the dashboard makes of the API.
type byKey struct{}

// fromDashboard is api, marking each request as the dashboard's, so
// that the reloads it starts say so.
func fromDashboard(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), byKey{}, "dashboard")))
	})
}

// envChangesKey marks the context of a reload with the variables it
// changes (tend.ReloadReport.EnvChanges), which the daemon, not the
// supervisor, knows.
type envChangesKey struct{}

// byAction names what tend replaced instances for, by the action of
// their report.
var byAction = map[string]string{"watch restart": "watch", "cron restart": "cron", "memory restart": "memory", "unhealthy restart": "health"}

// reported keeps the report of a reload, scale or replacement for
// GET /v1/reloads and the dashboard; ctx is the call's that started it.
func (d *Daemon) reported(ctx context.Context, rep tend.ReloadReport) {
	by, ok := byAction[rep.Action]
	if !ok {
		by, ok = ctx.Value(byKey{}).(string)
	}
	if !ok {
		by = "command"
	}
	if ch, ok := ctx.Value(envChangesKey{}).([]string); ok && rep.EnvChanges == nil {
		rep.EnvChanges = ch
	}
	d.web.reloads.Add(tend.ReloadRecord{ReloadReport: rep, By: by})
}

// recallReloads fills the list of reloads, after the daemon took its apps
// back, with the last report of each: who started them is not known.
func (d *Daemon) recallReloads() {
	var reps []tend.ReloadReport
	for _, a := range d.snapshotApps() {
		if r := a.Describe(false).LastReload; r != nil {
			reps = append(reps, *r)
		}
	}
	slices.SortFunc(reps, func(a, b tend.ReloadReport) int { return a.Time.Compare(b.Time) })
	for _, r := range reps[max(0, len(reps)-web.MaxReloads):] {
		d.web.reloads.Add(tend.ReloadRecord{ReloadReport: r})
	}
}

// listReloads answers GET /v1/reloads.
func (d *Daemon) listReloads(w http.ResponseWriter, _ *http.Request) {
	recs, _ := d.web.reloads.List()
	reply(w, recs, nil)
}

// serveWeb serves the dashboard on addr, unless it is served already:
// then addr must be "" or where it is.
func (d *Daemon) serveWeb(addr string, public bool) (*web.Server, error) {
	d.web.mu.Lock()
	defer d.web.mu.Unlock()
	if srv := d.web.srv; srv != nil {
		if addr != "" && addr != srv.Addr().String() {
			return nil, tend.Errorf(tend.ECONFLICT, "the dashboard already serves on %s: use that address, or tend web --stop first", srv.Addr())
		}
		if public && !srv.Public() {
			return nil, tend.Errorf(tend.ECONFLICT, "the dashboard serves on %s, loopback only: tend web --stop, then tend web --public --addr <address>", srv.Addr())
		}
		return srv, nil
	}
	ln, err := d.webListener(addr, public)
	if err != nil {
		return nil, err
	}
	srv := web.New(ln, public, web.Config{API: fromDashboard(d.routes()), Source: webSource{d}, History: &d.web.history, Log: d.log,
		StatsEvery: sampleEvery, StatePath: tend.Home(d.home).Web()})
	d.web.srv = srv
	d.log.Info("serving the dashboard", "addr", ln.Addr().String(), "public", public)
	served := make(chan struct{})
	go func() {
		if err := srv.Serve(); err != nil {
			d.log.Warn("the dashboard stopped serving", "err", err)
		}
		close(served)
	}()
	go func() {
		select {
		case <-d.quit:
			d.stopWeb(false)
		case <-served:
			// Serve failed by itself: the dashboard is gone, and its
			// port with it; the state file brings it back with the next
			// daemon, or tend web now.
			d.web.mu.Lock()
			if d.web.srv == srv {
				d.web.srv = nil
				d.dropWeb()
			}
			d.web.mu.Unlock()
		}
	}()
	return srv, nil
}

// webListener is the dashboard's listener on addr: the one the keeper held
// for the previous daemon, when it is on addr; else a new one. Called with
// d.web.mu held.
func (d *Daemon) webListener(addr string, public bool) (net.Listener, error) {
	want, err := web.Address(addr, public)
	if err != nil {
		return nil, err
	}
	if held := d.web.held; held != nil {
		if sameAddr(held.Addr(), want) {
			d.web.held = nil
			d.web.kept = true
			return held, nil
		}
		// Elsewhere: the keeper's copy goes before the bind, since want
		// may share the held port (another host, 0.0.0.0 for 127.0.0.1).
		d.dropWeb()
	}
	return web.Listen(addr, public)
}

// sameAddr reports whether a listener on have serves want, which may name
// its host (localhost) where have has the address.
func sameAddr(have net.Addr, want string) bool {
	if have.String() == want {
		return true
	}
	ta, ok := have.(*net.TCPAddr)
	host, _, err := net.SplitHostPort(want)
	if !ok || err != nil {
		return false
	}
	wa, err := net.ResolveTCPAddr(sockets.HostNetwork(host), want)
	return err == nil && wa.Port == ta.Port && wa.IP.Equal(ta.IP)
}

// holdWeb has the keeper hold a copy of the dashboard's listener, unless
// it does already: from now on the port stays bound while daemons come
// and go. It waits until the daemon is up (resumeWeb), since a keeper
// that holds something restarts a daemon that fails to start.
func (d *Daemon) holdWeb() {
	d.web.mu.Lock()
	defer d.web.mu.Unlock()
	if d.keeper == nil || d.web.srv == nil || d.web.kept {
		return
	}
	f, err := sockets.DupFD(d.web.srv.Listener().(syscall.Conn))
	if err == nil {
		err = d.keeper.Put(webName, int(f.Fd()))
		f.Close()
	}
	if err != nil {
		d.log.Warn("the keeper does not hold the dashboard's port: it is free while the daemon restarts", "err", err)
		return
	}
	d.web.kept = true
}

// dropWeb closes the keeper's copy of the dashboard's listener, and the
// one the daemon took over but did not use. Called with d.web.mu held.
func (d *Daemon) dropWeb() {
	kept := d.web.kept || d.web.held != nil
	if d.web.held != nil {
		d.web.held.Close()
		d.web.held = nil
	}
	if kept && d.keeper != nil {
		if err := d.keeper.Drop(webName); err != nil {
			d.log.Warn("the keeper's copy of the dashboard's port stays open", "err", err)
		}
	}
	d.web.kept = false
}

// takeHeldWeb takes the dashboard's listener that the keeper held for the
// previous daemon, for serveWeb to serve again.
func (d *Daemon) takeHeldWeb(inv *keeper.Inventory) {
	if inv == nil {
		return
	}
	for _, f := range inv.Files[webName] {
		if l, err := net.FileListener(f); err == nil && d.web.held == nil {
			d.web.held = l
		} else if err == nil {
			l.Close()
		}
		f.Close()
	}
}

// stopWeb stops serving the dashboard. With forget, its state file goes
// too, and its sessions end, and the keeper lets its port go; else the
// next daemon serves it again, and its sessions go on.
func (d *Daemon) stopWeb(forget bool) error {
	d.web.mu.Lock()
	defer d.web.mu.Unlock()
	// Closed first: a closed server writes its state no more, so the
	// file removed after it stays removed.
	if d.web.srv != nil {
		d.web.srv.Close()
		d.log.Info("dashboard stopped", "addr", d.web.srv.Addr().String())
		d.web.srv = nil
	}
	if forget {
		d.dropWeb()
		if err := web.RemoveState(tend.Home(d.home).Web()); err != nil {
			d.log.Warn("the dashboard's state file stays: the next daemon serves the dashboard again", "err", err)
			return tend.Errorf(tend.EFAILED, "the dashboard stopped, but its state file stays, and the next daemon would serve it again: remove %s (%v)", tend.Home(d.home).Web(), err)
		}
	}
	return nil
}

// resumeWeb serves the dashboard again where the previous daemon served
// it (its state file says where), unless web_addr in config.yaml says
// where to serve. A dashboard that cannot come back is not worth failing
// the daemon for: the log says why.
func (d *Daemon) resumeWeb() {
	if d.settings.WebAddr == "" {
		st, ok, err := web.LoadState(tend.Home(d.home).Web())
		if err == nil && ok {
			_, err = d.serveWeb(st.Addr, st.Public)
		}
		if err != nil {
			d.log.Warn("the dashboard the previous daemon served does not come back: run tend web", "err", err)
		}
	}
	d.web.mu.Lock()
	if d.web.held != nil { // not served again: its port goes
		d.dropWeb()
	}
	d.web.mu.Unlock()
	d.holdWeb()
}

// webRequest answers tend web: serve the dashboard and mint a token for
// it, or stop it.
func (d *Daemon) webRequest(req tend.WebRequest) (tend.WebResult, error) {
	if req.Stop {
		return tend.WebResult{}, d.stopWeb(true)
	}
	if d.isQuitting() {
		return tend.WebResult{}, errQuitting
	}
	srv, err := d.serveWeb(req.Addr, req.Public)
	if err != nil {
		return tend.WebResult{}, err
	}
	d.holdWeb()
	return tend.WebResult{Addr: srv.Addr().String(), URL: srv.URL(srv.Token(req.ReadOnly)), ReadOnly: req.ReadOnly, Public: srv.Public()}, nil
}
