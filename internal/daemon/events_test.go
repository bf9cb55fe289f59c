package daemon

import (
	"testing"

	"github.com/tendhq/tend"
)

// A reader that falls behind loses events, never blocks the publisher,
// and is told how many it lost before the next one it gets.
func TestEventHubCountsLostEvents(t *testing.T) {
	var h eventHub
	sub, cancel := h.subscribe()
	if !h.Wanted() {
		t.Fatal("a reader, and events are not wanted")
	}
	defer cancel()
	for i := range eventBuffer + 44 {
		h.Publish(tend.Event{Kind: tend.EventInstance, ID: i})
	}
	for i := range eventBuffer {
		if ev := <-sub.ch; ev.ID != i {
			t.Fatalf("event %d has id %d", i, ev.ID)
		}
	}
	h.Publish(tend.Event{Kind: tend.EventInstance, ID: 1000})
	if ev := <-sub.ch; ev.Kind != tend.EventLost || ev.Lost != 44 {
		t.Fatalf("after the gap: %+v, want 44 lost", ev)
	}
	if ev := <-sub.ch; ev.ID != 1000 {
		t.Fatalf("then %+v, want id 1000", ev)
	}
	cancel()
	h.Publish(tend.Event{ID: 1001}) // no reader: nothing blocks
	if h.Wanted() || len(h.subs) != 0 {
		t.Errorf("%d readers after cancel", len(h.subs))
	}
}
