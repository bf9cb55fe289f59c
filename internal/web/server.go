package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/sockets"
)

//go:embed assets
var assets embed.FS

// DefaultAddr is where tend web serves without --addr: loopback, next to
// the metrics port of config.yaml's example (9615).
const DefaultAddr = "127.0.0.1:9617"

// Source is what the live view reads from the daemon.
type Source interface {
	// Subscribe returns the daemon's instance events from now on, and a
	// func that ends the subscription.
	Subscribe() (<-chan tend.Event, func())
	// Instances returns every instance with its latest CPU and memory,
	// as GET /v1/instances does.
	Instances() []tend.Instance
	// Reloads returns the last reloads, oldest first, as GET /v1/reloads
	// does, and a number that moves when a reload is added.
	Reloads() ([]tend.ReloadRecord, uint64)
}

// Server serves the dashboard. Build it with New.
type Server struct {
	api     http.Handler // the daemon's control API
	src     Source
	history *History
	log     *slog.Logger
	auth    *auth
	public  bool // bound beyond loopback (--public)
	ln      net.Listener
	srv     *http.Server
	done    chan struct{} // closed by Close: streams end
	once    sync.Once
	// statsEvery is how often the stream sends the instances' figures:
	// the daemon's sampling period.
	statsEvery time.Duration
}

// Config is what New needs. API, Source and History are required.
type Config struct {
	API        http.Handler // the daemon's control API (/v1/...)
	Source     Source
	History    *History
	Log        *slog.Logger  // nil: slog.Default()
	StatsEvery time.Duration // zero: one second
	// StatePath, if set, is the state file (see State): the sessions a
	// previous daemon left there for the same address go on, and the
	// server writes its own there.
	StatePath string
}

// Listen binds addr for the dashboard: "host:port", ":port" (loopback),
// or "" (DefaultAddr). Any address but a loopback one needs public: the
// dashboard can restart and stop apps, and a token is then all that
// guards it.
func Listen(addr string, public bool) (net.Listener, error) {
	addr, err := Address(addr, public)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	return sockets.ListenFor(sockets.HostNetwork(host), addr, "choose another --addr (or web_addr in config.yaml)")
}

// Address is where Listen(addr, public) listens, with "" for DefaultAddr
// and no host for 127.0.0.1, or why it must not.
func Address(addr string, public bool) (string, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", tend.Errorf(tend.EINVALID, "dashboard address %q is not host:port, such as %s", addr, DefaultAddr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if !public && !isLoopback(host) {
		return "", tend.Errorf(tend.EINVALID, "dashboard address %s is reachable from other machines: add --public (web_public: true in config.yaml) to mean it, or use a loopback address such as 127.0.0.1:%s", addr, port)
	}
	return net.JoinHostPort(host, port), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listener is the listener the server serves.
func (s *Server) Listener() net.Listener { return s.ln }

// New returns a server for ln; public says ln may be reached from other
// machines. Serve starts it.
func New(ln net.Listener, public bool, cfg Config) *Server {
	s := &Server{api: cfg.API, src: cfg.Source, history: cfg.History, log: cfg.Log, auth: newAuth(),
		public: public, ln: ln, done: make(chan struct{}), statsEvery: cfg.StatsEvery}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.statsEvery <= 0 {
		s.statsEvery = time.Second
	}
	if cfg.StatePath != "" {
		s.keepState(cfg.StatePath)
	}
	// No write timeout: the streams live as long as the page. Headers
	// must come quickly, so idle sockets cannot pile up.
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	return s
}

// Serve serves until Close; it returns nil then.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server: the listener, every connection and stream.
// From then on it writes its state file no more (Config.StatePath), so
// that a caller who removes the file after Close (tend web --stop) finds
// it gone for good, whatever handlers are still running.
func (s *Server) Close() error {
	s.once.Do(func() { close(s.done) })
	s.auth.mu.Lock()
	s.auth.persist = nil
	s.auth.mu.Unlock()
	return s.srv.Close()
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Public reports whether the server was bound beyond loopback.
func (s *Server) Public() bool { return s.public }

// Token mints a one-time token, valid for ten minutes, that opens a
// session; a read-only session can look but not act.
func (s *Server) Token(readOnly bool) string { return s.auth.token(readOnly) }

// URL is the address to open with token: the token travels after '#',
// which browsers never send, and the page trades it for a session.
func (s *Server) URL(token string) string {
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/#token=" + token
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("POST /api/session", s.openSession)
	mux.HandleFunc("GET /api/session", s.withSession(false, s.showSession))
	mux.HandleFunc("GET /api/stream", s.withSession(false, s.stream))
	mux.HandleFunc("GET /api/logs", s.withSession(false, s.logs))
	mux.HandleFunc("GET /api/history", s.withSession(false, s.showHistory))
	for _, action := range []string{"restart", "reload", "stop", "start", "scale", "send"} {
		mux.HandleFunc("POST /api/"+action, s.withSession(true, s.act(action)))
	}
	return s.guard(mux)
}

// guard answers only to the Host names the server is for (a loopback
// server: its loopback address or localhost, which defeats DNS
// rebinding), and sets the headers every answer carries.
func (s *Server) guard(h http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.public {
			host, p, err := net.SplitHostPort(r.Host)
			if err != nil || p != port || !isLoopback(host) {
				http.Error(w, "this dashboard answers on loopback addresses only", http.StatusForbidden)
				return
			}
		}
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// sessionInfo is what GET and POST /api/session answer.
type sessionInfo struct {
	CSRF     string `json:"csrf"`
	ReadOnly bool   `json:"read_only"`
}

// openSession trades a one-time token ({"token": ...}) for a session.
func (s *Server) openSession(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		refuse(w, http.StatusForbidden, "cross-site request refused")
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req) != nil || req.Token == "" {
		refuse(w, http.StatusBadRequest, `the body must be {"token": "..."}, the token tend web prints`)
		return
	}
	id, g, ok := s.auth.redeem(req.Token)
	if !ok {
		refuse(w, http.StatusUnauthorized, "this token is unknown, used or expired: run tend web for a new URL")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(s.ln.Addr()), Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second)})
	writeJSON(w, sessionInfo{CSRF: g.csrf, ReadOnly: g.readOnly})
}

func (s *Server) showSession(w http.ResponseWriter, r *http.Request, g grant) {
	writeJSON(w, sessionInfo{CSRF: g.csrf, ReadOnly: g.readOnly})
}

// withSession lets through requests of a session; acting ones (POST)
// also need the same origin, the session's CSRF token and a session that
// may act.
func (s *Server) withSession(acts bool, h func(http.ResponseWriter, *http.Request, grant)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName(s.ln.Addr()))
		if err != nil {
			refuse(w, http.StatusUnauthorized, "no session: open the URL tend web prints")
			return
		}
		g, ok := s.auth.session(c.Value)
		if !ok {
			refuse(w, http.StatusUnauthorized, "the session is unknown or expired: open a new URL from tend web")
			return
		}
		if acts {
			switch {
			case !sameOrigin(r):
				refuse(w, http.StatusForbidden, "cross-site request refused")
				return
			case r.Header.Get(CSRFHeader) != g.csrf:
				refuse(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header")
				return
			case g.readOnly:
				refuse(w, http.StatusForbidden, "this session is read-only (tend web --read-only): it cannot act")
				return
			}
		}
		h(w, r, g)
	}
}

// actionBody is what the page may send: targets, or an app and a count.
// Nothing else passes to the daemon, so the page cannot change what an
// app runs (a reload's specs, environment).
type actionBody struct {
	Targets  []string        `json:"targets"`
	App      string          `json:"app"`
	Count    int             `json:"count"`
	Relative bool            `json:"relative"`
	Message  json.RawMessage `json:"message"` // send: a JSON value, as tend send takes it
}

// act forwards an action to the daemon's API handler for it, the one the
// CLI's request reaches: start is what tend start does with an app that
// exists (restart), scale takes an app and a count, send targets and a
// message, the rest targets.
func (s *Server) act(action string) func(http.ResponseWriter, *http.Request, grant) {
	return func(w http.ResponseWriter, r *http.Request, _ grant) {
		var b actionBody
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&b); err != nil {
			refuse(w, http.StatusBadRequest, "bad request body: "+err.Error())
			return
		}
		var body any = tend.ActionRequest{Targets: b.Targets}
		path := "/v1/" + action
		switch action {
		case "start":
			path = "/v1/restart"
		case "reload":
			body = tend.ReloadRequest{Targets: b.Targets}
		case "scale":
			body = tend.ScaleRequest{App: b.App, Count: b.Count, Relative: b.Relative}
		case "send":
			if len(b.Message) == 0 || string(b.Message) == "null" {
				refuse(w, http.StatusBadRequest, "no message: give a JSON value to send")
				return
			}
			body = tend.SendRequest{Targets: b.Targets, Message: b.Message}
		}
		if action != "scale" && len(b.Targets) == 0 {
			refuse(w, http.StatusBadRequest, "no targets: name an app, an instance id or all")
			return
		}
		buf, _ := json.Marshal(body)
		s.log.Info("dashboard action", "action", action, "targets", b.Targets, "app", b.App, "remote", r.RemoteAddr)
		s.callAPI(w, r, "POST", path, buf)
	}
}

// callAPI serves r with the daemon's handler of method and path
// (with its query), as if the CLI had asked.
func (s *Server) callAPI(w http.ResponseWriter, r *http.Request, method, pathQuery string, body []byte) {
	req, err := http.NewRequestWithContext(r.Context(), method, "http://tend"+pathQuery, bytes.NewReader(body))
	if err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	req.Header.Set(tend.VersionHeader, tend.Version)
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = r.RemoteAddr
	s.api.ServeHTTP(w, req)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// quitContext is ctx, ended also when the server closes.
func (s *Server) quitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
