package daemon

import (
	"encoding/json"
	"net/http"
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

// selectEvents resolves target for the streams: the apps it selects and
// which events concern it. "" or "all" selects every app, apps started
// later too, and is no error when none runs; an app name selects the app
// and its later instances; an id selects that instance. Lost events
// always match.
func (d *Daemon) selectEvents(target string) ([]selection, func(tend.Event) bool, error) {
	if target == "" || target == "all" {
		var sels []selection
		for _, a := range d.snapshotApps() {
			sels = append(sels, selection{app: a})
		}
		return sels, func(tend.Event) bool { return true }, nil
	}
	sels, err := d.resolve([]string{target})
	if err != nil {
		return nil, nil, err
	}
	apps, ids := map[string]bool{}, map[int]bool{}
	for _, s := range sels {
		if s.ids == nil {
			apps[s.app.Name()] = true
		}
		for _, id := range s.ids {
			ids[id] = true
		}
	}
	return sels, func(ev tend.Event) bool { return ev.Kind == tend.EventLost || apps[ev.App] || ids[ev.ID] }, nil
}

// events streams instance events as JSON lines: first the current state
// of every instance target selects (an app name, an instance id, or all;
// apps started later are included), then each change as it happens. After
// a "lost" event the current state follows again.
func (d *Daemon) events(w http.ResponseWriter, r *http.Request) {
	_, match, err := d.selectEvents(r.URL.Query().Get("target"))
	if err != nil {
		reply[any](w, nil, err)
		return
	}
	// Subscribe before taking the snapshot: a change in between shows
	// twice rather than never.
	sub, cancel := d.hub.subscribe()
	defer cancel()
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{}) // a stream lives as long as its reader
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	snapshot := func() {
		now := time.Now()
		for _, in := range d.instances() {
			if ev := tend.EventOf(in, tend.EventInstance, now); match(ev) {
				enc.Encode(ev)
			}
		}
	}
	write := func(ev tend.Event) error {
		if !match(ev) {
			return nil
		}
		if err := enc.Encode(ev); err != nil {
			return err
		}
		if ev.Kind == tend.EventLost {
			snapshot()
		}
		return nil
	}
	snapshot()
	rc.Flush()
	// 100 ms on kill: enough for a reader to take the last events.
	defer d.deadlineOnQuit(rc, 100*time.Millisecond)()
	for {
		select {
		case ev := <-sub.ch:
			if write(ev) != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-d.quit:
			// What the last moments published (the removals of kill).
			for {
				select {
				case ev := <-sub.ch:
					if write(ev) != nil {
						return
					}
				default:
					rc.Flush()
					return
				}
			}
		}
	}
}

// deadlineOnQuit gives the writes of a stream a deadline once the daemon
// is killed, so that a reader that stopped reading (even one a write is
// blocked on) cannot hold up the daemon's exit. Call the returned func
// when the stream ends.
func (d *Daemon) deadlineOnQuit(rc *http.ResponseController, grace time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-d.quit:
			rc.SetWriteDeadline(time.Now().Add(grace))
		case <-done:
		}
	}()
	return func() { close(done) }
}
