package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSSEWriterFramesLines(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &sseWriter{ResponseWriter: rec}
	w.Header().Set("Content-Type", "application/x-ndjson")
	for _, chunk := range []string{`{"a":1}` + "\n" + `{"b"`, `:2}`, "\n"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("write %q: %d %v", chunk, n, err)
		}
	}
	if got, want := rec.Body.String(), "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestSSEWriterPassesErrorsThrough(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &sseWriter{ResponseWriter: rec}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"message":"no app named x"}` + "\n"))
	if rec.Code != 404 || rec.Body.String() != `{"message":"no app named x"}`+"\n" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
	}
}
