package web

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveAt serves a dashboard on addr with its state in path; the test
// closes it.
func serveAt(t *testing.T, addr, path string) *Server {
	t.Helper()
	ln, err := Listen(addr, false)
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, false, Config{API: http.NotFoundHandler(), Source: &hub{}, History: &History{}, StatePath: path})
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s
}

// session asks srv for the session of cookie: its status and CSRF token.
func session(t *testing.T, srv *Server, cookie *http.Cookie) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+srv.Addr().String()+"/api/session", nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var si sessionInfo
	json.NewDecoder(resp.Body).Decode(&si)
	return resp.StatusCode, si.CSRF
}

// A server on the address of the one before it takes its sessions and
// unspent tokens back from the state file; the file holds their hashes
// only; a server elsewhere, or a file tend did not write, starts afresh.
func TestStateKeepsSessionsForTheSameAddress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.json")
	first := serveAt(t, "127.0.0.1:0", path)
	addr := first.Addr().String()
	resp, err := http.Post("http://"+addr+"/api/session", "application/json", strings.NewReader(`{"token":"`+first.Token(false)+`"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("session: %v %v", err, resp)
	}
	cookie := resp.Cookies()[0]
	resp.Body.Close()
	_, csrf := session(t, first, cookie)
	unspent := first.Token(true)
	first.Close()

	b, err := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || strings.Contains(string(b), cookie.Value) || strings.Contains(string(b), unspent) || strings.Contains(string(b), csrf) {
		t.Fatalf("state file (%v, mode %v) holds a secret or is not private:\n%s", err, fi.Mode(), b)
	}
	st, ok, err := LoadState(path)
	if err != nil || !ok || st.Addr != addr || len(st.Sessions) != 1 || len(st.Tokens) != 1 {
		t.Fatalf("LoadState: %+v %v %v", st, ok, err)
	}

	second := serveAt(t, addr, path)
	if code, got := session(t, second, cookie); code != 200 || got != csrf {
		t.Fatalf("the session on the next server: %d, CSRF %q (want 200, %q)", code, got, csrf)
	}
	if _, g, ok := second.auth.redeem(unspent); !ok || !g.readOnly {
		t.Fatal("an unspent read-only token did not survive the restart")
	}
	second.Close()

	elsewhere := serveAt(t, "127.0.0.1:0", path)
	if code, _ := session(t, elsewhere, cookie); code != 401 {
		t.Fatalf("a server on another address took the session: %d", code)
	}
	elsewhere.Close()

	if err := os.WriteFile(path, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadState(path); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("a broken state file: %v, want an error that says what to do", err)
	}
	fresh := serveAt(t, addr, path) // starts, and writes a good file
	if st, ok, err := LoadState(path); err != nil || !ok || st.Addr != fresh.Addr().String() {
		t.Fatalf("after a broken file: %+v %v %v", st, ok, err)
	}
	if err := RemoveState(path); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := LoadState(path); ok || err != nil {
		t.Fatalf("after RemoveState: %v %v", ok, err)
	}
}

// Expired and malformed entries of a state file are not taken back.
func TestRestoreSkipsExpiredAndMalformed(t *testing.T) {
	a := newAuth()
	now := time.Unix(1_000_000, 0)
	a.now = func() time.Time { return now }
	hash := func(secret string) string { k := keyOf(secret); return hex.EncodeToString(k[:]) }
	id := "session-id"
	a.restore(saved{Sessions: []savedGrant{
		{Hash: hash(id), Expires: now.Add(time.Hour)},
		{Hash: hash("old"), Expires: now.Add(-time.Second)},
		{Hash: "zz", Expires: now.Add(time.Hour)},
		{Hash: "abcd", Expires: now.Add(time.Hour)},
	}})
	if len(a.sessions) != 1 {
		t.Fatalf("%d sessions taken back, want 1", len(a.sessions))
	}
	if g, ok := a.session(id); !ok || g.csrf != csrfOf(id) {
		t.Fatalf("the good session: %v %+v", ok, g)
	}
}

// A server that is closed writes its state no more: tend web --stop
// removes the state file, and a token minted or redeemed at the same time
// (tend web racing tend web --stop, a page opening its URL as the server
// closes: http.Server.Close does not wait for handlers) must not write it
// back, or the next daemon serves the dashboard the user stopped, with
// that token and session valid.
func TestClosedServerWritesNoState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.json")
	s := serveAt(t, "127.0.0.1:0", path)
	tok := s.Token(false)
	s.Close()
	if err := RemoveState(path); err != nil {
		t.Fatal(err)
	}
	s.Token(false)     // webRequest mints its token after serveWeb, outside d.web.mu
	s.auth.redeem(tok) // a handler still running after Close
	if st, ok, err := LoadState(path); ok || err != nil {
		t.Fatalf("after Close and RemoveState the state file is back (%v): %+v; the next daemon serves the stopped dashboard", err, st)
	}
}
