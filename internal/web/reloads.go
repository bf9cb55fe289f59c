package web

import (
	"slices"
	"sync"

	"github.com/tendhq/tend"
)

// MaxReloads is how many reload reports Reloads keeps: a screenful. A
// report holds a step per instance, about 100 bytes of JSON each, so the
// ring is a few KB for apps of a few dozen instances and about 2 MB when
// every report is of 1,000 (which the page then shows folded).
const MaxReloads = 20

// Reloads is the daemon's most recent reloads, scales and replacements,
// whoever started them. The zero value is empty and ready; it is safe for
// concurrent use.
type Reloads struct {
	mu   sync.Mutex
	recs []tend.ReloadRecord // oldest first, at most MaxReloads
	seq  uint64              // counts Adds: the page's copy is stale when it moved
}

// Add records rec, dropping the oldest record beyond MaxReloads.
func (r *Reloads) Add(rec tend.ReloadRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	if n := len(r.recs) - MaxReloads; n > 0 {
		r.recs = slices.Delete(r.recs, 0, n)
	}
	r.seq++
}

// List returns the records, oldest first, and how many Adds there were.
func (r *Reloads) List() ([]tend.ReloadRecord, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.recs)
	if out == nil {
		out = []tend.ReloadRecord{}
	}
	return out, r.seq
}
