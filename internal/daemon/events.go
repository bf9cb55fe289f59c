package daemon

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tendhq/tend"
)

// eventBuffer is how many events a slow reader may fall behind before
// they are dropped (and counted in an EventLost).
const eventBuffer = 256

// eventHub fans instance events out to the readers of GET /v1/events.
// publish never blocks: the apps' actors call it.
type eventHub struct {
	readers atomic.Int32 // len(subs), read without the lock by Wanted
	mu      sync.Mutex
	subs    map[*eventSub]struct{}
}

// Wanted reports whether anyone reads events.
func (h *eventHub) Wanted() bool { return h.readers.Load() > 0 }

type eventSub struct {
	ch   chan tend.Event
	lost int // events dropped since the last one delivered; guarded by eventHub.mu
}

// Publish hands ev to every reader that has room for it.
func (h *eventHub) Publish(ev tend.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.lost > 0 {
			select {
			case s.ch <- tend.Event{Time: ev.Time, Kind: tend.EventLost, Lost: s.lost}:
				s.lost = 0
			default:
				s.lost++
				continue
			}
		}
		select {
		case s.ch <- ev:
		default:
			s.lost++
		}
	}
}

func (h *eventHub) subscribe() (*eventSub, func()) {
	s := &eventSub{ch: make(chan tend.Event, eventBuffer)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*eventSub]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.readers.Store(int32(len(h.subs)))
	h.mu.Unlock()
	return s, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.readers.Store(int32(len(h.subs)))
		h.mu.Unlock()
	}
}

// events streams instance events as JSON lines: first the current state
// of every instance target selects (an app name, an instance id, or all;
// apps started later are included), then each change as it happens.
func (d *Daemon) events(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("target")
	match := func(ev tend.Event) bool { return true }
	if target != "" && target != "all" {
		if _, err := d.resolve([]string{target}); err != nil {
			reply(w, nil, err)
			return
		}
		id, err := strconv.Atoi(target)
		match = func(ev tend.Event) bool {
			if ev.Kind == tend.EventLost {
				return true
			}
			if err == nil {
				return ev.ID == id
			}
			return ev.App == target
		}
	}
	// Subscribe before taking the snapshot: a change in between shows
	// twice rather than never.
	sub, cancel := d.hub.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	now := time.Now()
	for _, in := range d.instances() {
		if ev := tend.EventOf(in, tend.EventInstance, now); match(ev) {
			enc.Encode(ev)
		}
	}
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	for {
		select {
		case ev := <-sub.ch:
			if !match(ev) {
				continue
			}
			if enc.Encode(ev) != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		case <-r.Context().Done():
			return
		case <-d.quit:
			return
		}
	}
}
