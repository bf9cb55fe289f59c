package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/testport"
)

// webURL runs tend web with args and returns the URL it prints: the
// page's address and the one-time token.
func (h *harness) webURL(args ...string) (base, token string) {
	h.t.Helper()
	out := h.ok(append([]string{"web"}, args...)...)
	m := regexp.MustCompile(`(http://[^/\s]+)/#token=([A-Za-z0-9_-]+)`).FindStringSubmatch(out)
	if m == nil {
		h.t.Fatalf("tend web printed no URL with a token:\n%s", out)
	}
	return m[1], m[2]
}

// webClient is a client of the dashboard's API as a page would be.
type webClient struct {
	t      *testing.T
	base   string
	cookie *http.Cookie
	csrf   string
}

// do sends a request to the dashboard and returns its status and body.
func (c *webClient) do(method, path, body string, hdr map[string]string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf) // the answers here are small
	b.Write(buf[:n])
	if path == "/api/session" && resp.StatusCode == 200 {
		for _, ck := range resp.Cookies() {
			c.cookie = ck
		}
		var s struct{ CSRF string }
		json.Unmarshal(buf[:n], &s)
		c.csrf = s.CSRF
	}
	return resp.StatusCode, b.String()
}

// login trades token for a session.
func (c *webClient) login(token string) {
	c.t.Helper()
	if code, body := c.do("POST", "/api/session", `{"token":"`+token+`"}`, map[string]string{"Origin": c.base}); code != 200 {
		c.t.Fatalf("opening a session: %d %s", code, body)
	}
	if c.cookie == nil || !c.cookie.HttpOnly || c.cookie.SameSite != http.SameSiteStrictMode || c.csrf == "" {
		c.t.Fatalf("the session cookie is not HttpOnly and SameSite=Strict, or no CSRF token: %+v %q", c.cookie, c.csrf)
	}
}

func TestWebAuthRefusesWhatItMust(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "a", "--listen-timeout", "200ms", "--", "serve")
	before := h.await("a online", allStatus(1, tend.StatusOnline))[0].PID
	port := strconv.Itoa(testport.Free(t))
	base, token := h.webURL("--addr", "127.0.0.1:"+port)
	if base != "http://127.0.0.1:"+port {
		t.Fatalf("URL %s, want one on 127.0.0.1:%s", base, port)
	}
	anon := &webClient{t: t, base: base}
	if code, _ := anon.do("GET", "/", "", nil); code != 200 {
		t.Fatalf("the page: %d, want 200", code)
	}
	stop := `{"targets":["a"]}`

	user := &webClient{t: t, base: base}
	user.login(token)
	ro := &webClient{t: t, base: base}
	_, roToken := h.webURL("--read-only")
	ro.login(roToken)

	// Each case: who asks, what, with which Origin, with the session's
	// own CSRF token or not, and the answer it must get.
	for _, tc := range []struct {
		name         string
		c            *webClient
		method, path string
		body         string
		origin, host string
		csrf         bool
		want         int
	}{
		{"no session reads", anon, "GET", "/api/stream", "", "", "", false, 401},
		{"no session acts", anon, "POST", "/api/stop", stop, base, "", false, 401},
		{"a wrong token", anon, "POST", "/api/session", `{"token":"wrong"}`, base, "", false, 401},
		{"a spent token", anon, "POST", "/api/session", `{"token":"` + token + `"}`, base, "", false, 401},
		{"a cross-origin POST", user, "POST", "/api/stop", stop, "http://evil.example", "", true, 403},
		{"a POST without the CSRF header", user, "POST", "/api/stop", stop, base, "", false, 403},
		{"a read-only session acts", ro, "POST", "/api/stop", stop, base, "", true, 403},
		{"another Host (DNS rebinding)", user, "GET", "/api/session", "", "", "evil.example:" + port, false, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.origin != "" {
				hdr["Origin"] = tc.origin
			}
			if tc.host != "" {
				hdr["Host"] = tc.host
			}
			if tc.csrf {
				hdr["X-Tend-CSRF"] = tc.c.csrf
			}
			c := *tc.c
			c.t = t
			if code, body := c.do(tc.method, tc.path, tc.body, hdr); code != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
			}
		})
	}
	if code, _ := user.do("POST", "/api/stop", stop, map[string]string{"Origin": base, "X-Tend-CSRF": "nope"}); code != 403 {
		t.Fatalf("a wrong CSRF token: %d, want 403", code)
	}
	if in := h.ls()[0]; in.PID != before || in.Status != tend.StatusOnline {
		t.Fatalf("a refused request acted: pid %d (was %d), %s", in.PID, before, in.Status)
	}
	// The read-only session still reads.
	if code, body := ro.do("GET", "/api/session", "", nil); code != 200 || !strings.Contains(body, `"read_only":true`) {
		t.Fatalf("read-only session: %d %s", code, body)
	}
	// The same request, rightly made, acts: the refusals were for cause.
	if code, body := user.do("POST", "/api/restart", stop, map[string]string{"Origin": base, "X-Tend-CSRF": user.csrf}); code != 200 {
		t.Fatalf("restart from the dashboard: %d %s", code, body)
	}
	h.await("a restarted", func(insts []tend.Instance) bool {
		return len(insts) == 1 && insts[0].PID != before && insts[0].PID != 0 && insts[0].Status == tend.StatusOnline
	})
}

func TestWebBadInput(t *testing.T) {
	h := newHarness(t)
	port := strconv.Itoa(testport.Free(t))
	if e := h.fail(2, "web", "--addr", "0.0.0.0:"+port); !strings.Contains(e, "--public") {
		t.Fatalf("a public address without --public: %s", e)
	}
	if e := h.fail(2, "web", "--addr", "nonsense"); !strings.Contains(e, "host:port") {
		t.Fatalf("a bad address: %s", e)
	}
	if e := h.fail(2, "web", "--stop", "--read-only"); !strings.Contains(e, "--stop") {
		t.Fatalf("--stop with another flag: %s", e)
	}
	base, _ := h.webURL("--addr", "127.0.0.1:"+port)
	other := strconv.Itoa(testport.Free(t))
	if e := h.fail(1, "web", "--addr", "127.0.0.1:"+other); !strings.Contains(e, "already serves on 127.0.0.1:"+port) {
		t.Fatalf("a second address: %s", e)
	}
	// Without --addr, tend web mints a token for where it serves.
	if again, _ := h.webURL(); again != base {
		t.Fatalf("tend web again: %s, want %s", again, base)
	}
	h.ok("ping") // the daemon took all that in its stride
	h.ok("web", "--stop")
	if _, err := http.Get(base + "/"); err == nil {
		t.Fatalf("the dashboard still answers after tend web --stop")
	}
}

// The dashboard's actions are the CLI's: each reaches the daemon's
// handler and does what the same tend command does; bad input is the
// daemon's own error, and the daemon goes on.
func TestWebActions(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "a", "--listen-timeout", "200ms", "--", "serve")
	before := h.await("a online", allStatus(1, tend.StatusOnline))[0].PID
	base, token := h.webURL("--addr", "127.0.0.1:"+strconv.Itoa(testport.Free(t)))
	c := &webClient{t: t, base: base}
	c.login(token)
	act := func(action, body string, want int) string {
		t.Helper()
		code, out := c.do("POST", "/api/"+action, body, map[string]string{"Origin": base, "X-Tend-CSRF": c.csrf})
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", action, body, code, out, want)
		}
		return out
	}
	act("scale", `{"app":"a","count":2}`, 200)
	h.await("a scaled to 2", allStatus(2, tend.StatusOnline))
	if out := act("scale", `{"app":"a","count":0}`, 400); !strings.Contains(out, "at least 1 instance") {
		t.Fatalf("scale to 0: %s", out)
	}
	if out := act("stop", `{"targets":[]}`, 400); !strings.Contains(out, "no targets") {
		t.Fatalf("no targets: %s", out)
	}
	act("stop", `{"targets":["nosuchapp"]}`, 404)
	act("stop", `{"targets":["a"]}`, 200)
	h.await("a stopped", allStatus(2, tend.StatusStopped))
	act("start", `{"targets":["a"]}`, 200)
	started := h.await("a started", allStatus(2, tend.StatusOnline))
	act("reload", `{"targets":["a"]}`, 200)
	for i, in := range h.await("a online", allStatus(2, tend.StatusOnline)) {
		if in.PID == started[i].PID || in.PID == before {
			t.Fatalf("a[%d] kept pid %d through the reload", i, in.PID)
		}
	}
	// A message reaches the app's channel, as tend send's does.
	h.ok("start", h.self, "--name", "ch", "--", "channel")
	h.await("ch online", func(in []tend.Instance) bool {
		return slices.ContainsFunc(in, func(i tend.Instance) bool { return i.Name == "ch" && i.Status == tend.StatusOnline })
	})
	act("send", `{"targets":["ch"],"message":{"reload_config":true}}`, 200)
	h.awaitLog("ch", `{"reload_config":true}`)
	if out := act("send", `{"targets":["ch"]}`, 400); !strings.Contains(out, "no message") {
		t.Fatalf("send without a message: %s", out)
	}
	h.ok("ping")
}

// web_addr in config.yaml serves the dashboard from the daemon's start;
// tend web then mints tokens for it. A public web_addr needs web_public.
func TestWebFromConfig(t *testing.T) {
	h := newHarness(t)
	addr := "127.0.0.1:" + strconv.Itoa(testport.Free(t))
	os.WriteFile(filepath.Join(h.home, "config.yaml"), []byte("web_addr: "+addr+"\n"), 0o600)
	h.ok("ping")
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("the dashboard of web_addr does not answer: %v", err)
	}
	resp.Body.Close()
	if base, token := h.webURL(); base != "http://"+addr {
		t.Fatalf("tend web: %s, want the address of web_addr, %s", base, addr)
	} else {
		(&webClient{t: t, base: base}).login(token)
	}

	h = newHarness(t)
	os.WriteFile(filepath.Join(h.home, "config.yaml"), []byte("web_addr: 0.0.0.0:"+strconv.Itoa(testport.Free(t))+"\n"), 0o600)
	if e := h.fail(1, "ping"); !strings.Contains(e, "web_addr") || !strings.Contains(e, "web_public: true") {
		t.Fatalf("a public web_addr without web_public: %s", e)
	}
}

// GET /v1/reloads lists the last reloads, scales and replacements, with
// who started them: the CLI, and tend itself for a watched file.
func TestReloadsSaysWhoStartedThem(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.ok("start", h.self, "--name", "w", "--cwd", dir, "--watch", "--watch-delay", "100ms", "--listen-timeout", "100ms", "--", "serve")
	first := h.await("w online", allStatus(1, tend.StatusOnline))[0].PID
	c := client.New(h.home)
	if recs, err := c.Reloads(context.Background()); err != nil || len(recs) != 0 {
		t.Fatalf("reloads before any: %v %v, want none", recs, err)
	}
	h.ok("reload", "w")
	second := h.ls()[0].PID
	h.ok("scale", "w", "2")
	if err := os.WriteFile(conf, []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	var recs []tend.ReloadRecord
	h.poll("the watch restart listed", func() bool {
		var err error
		recs, err = c.Reloads(context.Background())
		return err == nil && len(recs) == 3
	})
	for i, want := range []struct{ action, by string }{{"reload", "command"}, {"scale", "command"}, {"watch restart", "watch"}} {
		if r := recs[i]; r.App != "w" || r.Action != want.action || r.By != want.by || !r.OK {
			t.Errorf("reload %d: %s of %s by %q ok=%v, want %s of w by %q, ok", i, r.Action, r.App, r.By, r.OK, want.action, want.by)
		}
	}
	if st := recs[0].Steps; len(st) != 1 || st[0].OldPID != first || st[0].NewPID != second {
		t.Errorf("the reload's steps %+v, want %d → %d", st, first, second)
	}
}

// A reload's record in GET /v1/reloads (and the dashboard's Reloads)
// names the variables it changed, as tend reload prints them.
func TestReloadsSayWhatEnvironmentChanged(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "w", "--listen-timeout", "100ms", "--", "serve")
	h.await("w online", allStatus(1, tend.StatusOnline))
	env := h.env
	h.env = append(env, "ADDED=1")
	h.ok("reload", "w", "--update-env")
	h.env = env
	recs, err := client.New(h.home).Reloads(context.Background())
	if err != nil || len(recs) != 1 {
		t.Fatalf("reloads: %+v %v, want one", recs, err)
	}
	if !slices.Contains(recs[0].EnvChanges, "+ADDED") {
		t.Fatalf("the reload's record says no environment change (env_changes %q); tend reload said +ADDED", recs[0].EnvChanges)
	}
}

// While the daemon is killed and the keeper starts the next one, the
// dashboard's port stays bound (the keeper holds it): no other process
// can take it and collect the cookies of a page that reconnects. The
// next daemon serves it again, and the session goes on. tend web --stop
// lets the port go.
func TestWebPortHeldThroughDaemonRestart(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "alpha", "--", "serve")
	h.await("online", allStatus(1, tend.StatusOnline))
	addr := "127.0.0.1:" + strconv.Itoa(testport.Free(t))
	base, token := h.webURL("--addr", addr)
	wc := &webClient{t: t, base: base}
	wc.login(token)
	before := h.ping().PID
	syscall.Kill(before, syscall.SIGKILL)
	// Until the next daemon serves the page, every try to bind the port
	// fails; a request meanwhile waits in the port's queue.
	quick := http.Client{Timeout: 500 * time.Millisecond}
	h.poll("the next daemon serving the dashboard", func() bool {
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			t.Fatalf("%s could be bound while the daemon restarted", addr)
		}
		resp, err := quick.Get(base + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return h.ping().PID != before
	})
	if code, body := wc.do("GET", "/api/session", "", nil); code != 200 {
		t.Errorf("the session after the restart: %d %s", code, body)
	}
	h.ok("web", "--stop")
	h.poll("the port free after tend web --stop", func() bool {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
		}
		return err == nil
	})
}

// web_addr spelled with a host name (localhost) names the port the keeper
// holds (on 127.0.0.1): the next daemon serves it again rather than fail
// to bind it, and a daemon that fails is not started again and again.
func TestWebAddrByNameThroughDaemonRestart(t *testing.T) {
	h := newHarness(t)
	port := strconv.Itoa(testport.Free(t))
	os.WriteFile(filepath.Join(h.home, "config.yaml"), []byte("web_addr: localhost:"+port+"\n"), 0o600)
	h.ok("start", h.self, "--name", "alpha", "--", "serve")
	h.await("online", allStatus(1, tend.StatusOnline))
	h.killDaemon()
	resp, err := http.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatalf("the dashboard after the restart: %v", err)
	}
	resp.Body.Close()
}

// web_addr changed to another host on the same port: the next daemon
// binds it once the keeper has let the held one go.
func TestWebAddrMovedThroughDaemonRestart(t *testing.T) {
	h := newHarness(t)
	port := strconv.Itoa(testport.Free(t))
	conf := filepath.Join(h.home, "config.yaml")
	os.WriteFile(conf, []byte("web_addr: 127.0.0.1:"+port+"\n"), 0o600)
	h.ok("start", h.self, "--name", "alpha", "--", "serve")
	h.await("online", allStatus(1, tend.StatusOnline))
	os.WriteFile(conf, []byte("web_addr: 0.0.0.0:"+port+"\nweb_public: true\n"), 0o600)
	h.killDaemon()
	if base, _ := h.webURL(); !strings.HasSuffix(base, ":"+port) {
		t.Fatalf("tend web: %s, want the dashboard on port %s", base, port)
	}
}
