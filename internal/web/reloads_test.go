package web

import (
	"testing"

	"github.com/tendhq/tend"
)

// The ring keeps the last MaxReloads, oldest first, and counts every Add.
func TestReloadsKeepsTheLast(t *testing.T) {
	var r Reloads
	if recs, n := r.List(); len(recs) != 0 || recs == nil || n != 0 {
		t.Fatalf("empty ring: %v %d, want [] 0", recs, n)
	}
	for i := range MaxReloads + 5 {
		r.Add(tend.ReloadRecord{ReloadReport: tend.ReloadReport{App: "a", DurationMS: int64(i)}, By: "command"})
	}
	recs, n := r.List()
	if n != MaxReloads+5 || len(recs) != MaxReloads {
		t.Fatalf("%d records, seq %d; want %d, %d", len(recs), n, MaxReloads, MaxReloads+5)
	}
	for i, rec := range recs {
		if rec.DurationMS != int64(i+5) {
			t.Fatalf("record %d is the %dth added, want the %dth", i, rec.DurationMS, i+5)
		}
	}
}
