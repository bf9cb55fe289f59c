package daemon

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPprofHandler(t *testing.T) {
	srv := httptest.NewServer(pprofHandler())
	defer srv.Close()
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	gzipMagic := []byte{0x1f, 0x8b} // pprof's format is gzipped protobuf
	if code, b := get("/debug/pprof/heap"); code != 200 || !bytes.HasPrefix(b, gzipMagic) {
		t.Errorf("heap: %d, % x...", code, b[:min(len(b), 8)])
	}
	if code, b := get("/debug/pprof/profile?seconds=1"); code != 200 || !bytes.HasPrefix(b, gzipMagic) {
		t.Errorf("profile: %d, % x...", code, b[:min(len(b), 8)])
	}
	if code, b := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(string(b), "goroutine profile: total") {
		t.Errorf("goroutine?debug=1: %d, %.80q", code, b)
	}
	if code, b := get("/debug/pprof/"); code != 200 || !strings.Contains(string(b), "/debug/pprof/heap") {
		t.Errorf("index: %d, %q", code, b)
	}
	if code, _ := get("/debug/pprof/nothing"); code != 404 {
		t.Errorf("unknown profile: %d, want 404", code)
	}
}
