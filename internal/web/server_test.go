package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// hub is a Source with one subscriber at a time, for the stream's tests.
type hub struct {
	mu    sync.Mutex
	ch    chan tend.Event
	insts []tend.Instance
	rel   Reloads
}

func (h *hub) Subscribe() (<-chan tend.Event, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ch = make(chan tend.Event, 8)
	return h.ch, func() {}
}

func (h *hub) publish(ev tend.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ch <- ev
}

func (h *hub) Reloads() ([]tend.ReloadRecord, uint64) { return h.rel.List() }

func (h *hub) Instances() []tend.Instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.insts
}

// The stream sends the snapshot, each event as it comes, the figures
// every period, and ends when the server closes.
func TestStreamSnapshotEventsStatsAndClose(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	src := &hub{insts: []tend.Instance{{ID: 0, Name: "a", PID: 42, Status: tend.StatusOnline}}}
	var hist History
	hist.Record(time.Now(), src.insts)
	s := New(ln, false, Config{API: http.NotFoundHandler(), Source: src, History: &hist, StatsEvery: 20 * time.Millisecond})
	go s.Serve()
	defer s.Close()

	base := "http://" + ln.Addr().String()
	resp, err := http.Post(base+"/api/session", "application/json", strings.NewReader(`{"token":"`+s.Token(false)+`"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("session: %v %v", err, resp)
	}
	cookie := resp.Cookies()[0]
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/stream", nil)
	req.AddCookie(cookie)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", err, resp)
	}
	defer resp.Body.Close()
	events := make(chan [2]string, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var kind string
		for sc.Scan() {
			line := sc.Text()
			if k, ok := strings.CutPrefix(line, "event: "); ok {
				kind = k
			} else if d, ok := strings.CutPrefix(line, "data: "); ok {
				events <- [2]string{kind, d}
			}
		}
	}()
	next := func(want string) string {
		t.Helper()
		for ev := range events {
			if ev[0] == want {
				return ev[1]
			}
		}
		t.Fatalf("the stream ended before a %q event", want)
		return ""
	}
	var snap snapshot
	if err := json.Unmarshal([]byte(next("snapshot")), &snap); err != nil || len(snap.Instances) != 1 {
		t.Fatalf("snapshot: %v %+v", err, snap)
	}
	src.publish(tend.Event{Kind: tend.EventInstance, App: "a", ID: 0, PID: 43, Status: tend.StatusLaunching})
	if d := next("instance"); !strings.Contains(d, `"pid":43`) {
		t.Fatalf("instance event: %s", d)
	}
	if d := next("stats"); !strings.Contains(d, `"pid":42`) {
		t.Fatalf("stats: %s", d)
	}
	s.Close()
	ended := make(chan struct{})
	go func() {
		for range events {
		}
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second): // the request's own deadline is 20 s
		t.Fatal("the stream did not end when the server closed")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("the server still accepts after Close")
	}
}
