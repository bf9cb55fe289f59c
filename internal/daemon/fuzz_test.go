package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/supervisor"
)

// fuzzTargets are the requests fuzzed through the daemon's handler as
// they come; start and resurrect, which run processes, are fuzzed as far
// as their checks (fuzzStart), and kill and update end the daemon.
var fuzzTargets = []string{
	"POST /v1/stop", "POST /v1/restart", "POST /v1/delete", "POST /v1/flush", "POST /v1/send",
	"POST /v1/signal", "POST /v1/reload", "POST /v1/scale", "POST /v1/save",
	"GET /v1/describe", "GET /v1/logs", "GET /v1/instances", "GET /v1/ping",
}

// FuzzRequest: no request body or query makes the daemon panic or answer
// 5xx, and it answers ping afterwards.
func FuzzRequest(f *testing.F) {
	for i, body := range []string{
		`{"targets":["all"]}`, `{"targets":[""]}`, `{"app":"web","count":-2147483648,"relative":true}`,
		`{"targets":["web"],"message":{"a":1}}`, `{"signal":"SIGKILL","targets":["0"]}`,
		`{"apps":[{"name":"a","script":"x","instances":1000000000,"cwd":"/"}]}`, `{"targets":["web"],"parallel":-1}`,
		`{"force":true}`, `[`, `null`, "",
	} {
		f.Add(uint8(i), []byte(body), "target=web&lines=-1&follow=0")
	}
	home, err := os.MkdirTemp("", "tendf")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(home) })
	if err := EnsureHome(home); err != nil {
		f.Fatal(err)
	}
	d := New(home)
	h := d.routes()
	f.Fuzz(func(t *testing.T, which uint8, body []byte, query string) {
		target := fuzzTargets[int(which)%len(fuzzTargets)]
		method, path, _ := bytes.Cut([]byte(target), []byte(" "))
		vals, err := url.ParseQuery(query)
		if err != nil {
			vals = nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, string(method), string(path)+"?"+vals.Encode(), bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", target, body, rec.Code, rec.Body)
		}
		fuzzStart(body)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/ping", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("ping after %s %q: %d", target, body, rec.Code)
		}
	})
}

// fuzzStart runs a start request's checks, short of starting anything.
func fuzzStart(body []byte) {
	var req tend.StartRequest
	if json.Unmarshal(body, &req) != nil {
		return
	}
	for i := range req.Apps {
		spec := &req.Apps[i]
		if normalize(spec) != nil {
			continue
		}
		if r, err := supervisor.Resolve(spec); err == nil {
			chooseMode(spec, &r)
		}
	}
}
