package web

import (
	"testing"
	"time"
	"unsafe"

	"github.com/tendhq/tend"
)

func inst(id, pid int, cpu float64, mem uint64) tend.Instance {
	return tend.Instance{ID: id, PID: pid, CPU: cpu, Memory: mem}
}

func TestHistoryMeansPerStep(t *testing.T) {
	var h History
	t0 := time.Unix(1_000_000, 0) // on a step boundary
	h.Record(t0, []tend.Instance{inst(1, 10, 10, 1<<20)})
	h.Record(t0.Add(time.Second), []tend.Instance{inst(1, 10, 20, 3<<20)})
	h.Record(t0.Add(historyStep), []tend.Instance{inst(1, 10, 30, 1<<20)})
	got := h.Of(1)
	want := []Point{{float64(t0.UnixMilli()), 15, 2 << 20}, {float64(t0.Add(historyStep).UnixMilli()), 30, 1 << 20}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("series %v, want %v", got, want)
	}
}

func TestHistoryGapsAndStopped(t *testing.T) {
	var h History
	t0 := time.Unix(1_000_000, 0)
	h.Record(t0, []tend.Instance{inst(1, 10, 5, 1<<20)})
	h.Record(t0.Add(5*historyStep), []tend.Instance{inst(1, 0, 0, 0)}) // stopped: no sample
	h.Record(t0.Add(6*historyStep), []tend.Instance{inst(1, 11, 7, 1<<20)})
	got := h.Of(1)
	if len(got) != 2 || got[0][1] != 5 || got[1][1] != 7 {
		t.Fatalf("series %v, want the two steps with samples only", got)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	var h History
	t0 := time.Unix(1_000_000, 0)
	end := t0.Add(2 * time.Hour)
	for now := t0; now.Before(end); now = now.Add(time.Second) {
		h.Record(now, []tend.Instance{inst(1, 10, 1, 1<<20), inst(2, 20, 2, 2<<20)})
	}
	for _, id := range []int{1, 2} {
		pts := h.Of(id)
		if len(pts) > historyPoints {
			t.Fatalf("instance %d: %d points, more than %d", id, len(pts), historyPoints)
		}
		if oldest := time.UnixMilli(int64(pts[0][0])); end.Sub(oldest) > time.Hour {
			t.Fatalf("instance %d: a point from %s, more than an hour before %s", id, oldest, end)
		}
	}
	if size := unsafe.Sizeof(ring{}); size > HistoryBytes {
		t.Fatalf("a ring takes %d bytes, HistoryBytes says %d", size, HistoryBytes)
	}
	// An instance that is no longer listed is forgotten.
	h.Record(end, []tend.Instance{inst(2, 20, 2, 2<<20)})
	if h.Of(1) != nil || len(h.rings) != 1 {
		t.Fatalf("instance 1 is still kept after it left")
	}
}

// A step's connections are what the count grew by, per second; a count
// that dips adds nothing that step.
func TestHistoryConnectionsPerSecond(t *testing.T) {
	var h History
	t0 := time.Unix(1_000_000, 0)
	at := func(d time.Duration, conns uint64) {
		h.Record(t0.Add(d), []tend.Instance{{ID: 1, PID: 10, Connections: conns}})
	}
	at(0, 500) // the count before the history began is not this step's
	at(time.Second, 520)
	at(5*time.Second, 600)
	at(historyStep, 650)              // the next step: 50 so far
	at(historyStep+4*time.Second, 10) // a dip (see TestHistoryConnectionsThroughADip): nothing
	at(historyStep+5*time.Second, 670)
	got := h.Of(1)
	if len(got) != 2 {
		t.Fatalf("series %v, want two steps", got)
	}
	if got[0][3] != 10 { // 100 in 10 s
		t.Errorf("first step: %v connections/s, want 10", got[0][3])
	}
	if got[1][3] != 14 { // 70 in the 5 s sampled so far
		t.Errorf("step in progress: %v connections/s, want 14", got[1][3])
	}
}

// An instance's count dips for a moment when its process exits: the
// supervisor adds the process's count to the slot's once the actor
// publishes its view, but tend's proxy forgets the backend at once
// (share.exited), so a sample in between sees the slot without it. The
// count coming back is no new connection: a step gets what the count grew
// beyond the highest it had been.
func TestHistoryConnectionsThroughADip(t *testing.T) {
	var h History
	t0 := time.Unix(1_000_000, 0)
	at := func(d time.Duration, conns uint64) {
		h.Record(t0.Add(d), []tend.Instance{{ID: 1, PID: 10, Connections: conns}})
	}
	at(0, 100_000)
	at(time.Second, 100_010)
	at(2*time.Second, 40)      // the exited process's 99,970 missing for a moment
	at(3*time.Second, 100_020) // back, with 10 new
	at(historyStep, 100_020)
	if got := h.Of(1); len(got) != 2 || got[0][3] != 2 { // 20 in 10 s
		t.Fatalf("series %v: the first step charts %v connections/s, want 2", got, got[0][3])
	}
}
