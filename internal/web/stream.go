package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tendhq/tend"
)

// snapshot opens the stream and follows every lost event: the instances
// and the last reloads. The charts' history is asked for apart
// (GET /api/history), one instance at a time: with a thousand instances
// all of it would be 16 MB.
type snapshot struct {
	Instances []tend.Instance     `json:"instances"`
	Reloads   []tend.ReloadRecord `json:"reloads"`
	Now       int64               `json:"now"` // Unix milliseconds
}

// stats is sent once a sampling period: the instances with their latest
// figures, the same list GET /v1/instances answers.
type stats struct {
	Instances []tend.Instance `json:"instances"`
	Now       int64           `json:"now"`
}

// stream is the page's live view, as server-sent events: "snapshot"
// first, then the daemon's instance events ("instance", "removed") as
// they come, "stats" once a sampling period, and "reloads", the whole
// list, at the first period after a reload ended.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, _ grant) {
	events, cancel := s.src.Subscribe() // before the snapshot: nothing falls between
	defer cancel()
	ctx, stop := s.quitContext(r.Context())
	defer stop()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	// A page whose stream ends (the daemon restarts) tries again after a
	// second, not the browser's default of three or so.
	fmt.Fprint(w, "retry: 1000\n\n")
	send := func(kind string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	var seen uint64 // the reloads the page has
	full := func() error {
		var recs []tend.ReloadRecord
		recs, seen = s.src.Reloads()
		return send("snapshot", snapshot{Instances: s.src.Instances(), Reloads: recs, Now: time.Now().UnixMilli()})
	}
	if full() != nil {
		return
	}
	tick := time.NewTicker(s.statsEvery)
	defer tick.Stop()
	for {
		var err error
		select {
		case ev := <-events:
			if ev.Kind == tend.EventLost {
				err = full()
			} else {
				err = send(string(ev.Kind), ev)
			}
		case <-tick.C:
			err = send("stats", stats{Instances: s.src.Instances(), Now: time.Now().UnixMilli()})
			if recs, n := s.src.Reloads(); err == nil && n != seen {
				seen = n
				err = send("reloads", recs)
			}
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// showHistory answers GET /api/history?id=N: the points of instance N
// over the last hour, [] for one without history.
func (s *Server) showHistory(w http.ResponseWriter, r *http.Request, _ grant) {
	id, err := strconv.Atoi(r.URL.Query().Get("id"))
	if err != nil {
		refuse(w, http.StatusBadRequest, "id must be an instance id, such as ?id=0")
		return
	}
	pts := s.history.Of(id)
	if pts == nil {
		pts = []Point{}
	}
	writeJSON(w, pts)
}

// logLines is how many lines of each instance the log view opens with.
const logLines = 200

// logs follows the logs of one target (an app, an instance id, or all)
// as server-sent events, one tend.LogLine each: the daemon's own log
// stream (GET /v1/logs?follow=1), its NDJSON lines turned into events.
func (s *Server) logs(w http.ResponseWriter, r *http.Request, _ grant) {
	target := r.URL.Query().Get("target")
	if target == "" {
		target = "all"
	}
	q := url.Values{"target": {target}, "follow": {"1"}, "lines": {strconv.Itoa(logLines)}}
	ctx, stop := s.quitContext(r.Context())
	defer stop()
	s.callAPI(&sseWriter{ResponseWriter: w}, r.WithContext(ctx), "GET", "/v1/logs?"+q.Encode(), nil)
}

// sseWriter turns the NDJSON a daemon stream writes into server-sent
// events, one per line. An error answer (a status of 300 or more) passes
// through as it is.
type sseWriter struct {
	http.ResponseWriter
	status  int
	partial []byte // a line not yet ended
}

func (s *sseWriter) WriteHeader(status int) {
	s.status = status
	if status < 300 {
		s.Header().Set("Content-Type", "text/event-stream")
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *sseWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	if s.status >= 300 {
		return s.ResponseWriter.Write(b)
	}
	s.partial = append(s.partial, b...)
	var out []byte
	for {
		line, rest, ok := bytes.Cut(s.partial, []byte("\n"))
		if !ok {
			break
		}
		out = append(out, "data: "...)
		out = append(append(out, line...), "\n\n"...)
		s.partial = rest
	}
	s.partial = bytes.Clone(s.partial)
	if len(out) > 0 {
		if _, err := s.ResponseWriter.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Flush passes on, for http.ResponseController.
func (s *sseWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (s *sseWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
