package logfile

import "time"

// entry is one line held by a ring. Its text lives in the ring's byte buffer.
type entry struct {
	time    time.Time
	stream  Stream
	partial bool
	inFile  bool // the line reached the file; Tail uses it to match memory to files
	off, n  int  // text position in ring.text, possibly wrapping around
}

// ring is the in-memory tail: the last lines, bounded both in count and in
// bytes. Texts are copied into one circular byte buffer, so adding a line
// allocates nothing once the buffer has grown to its working size, and the
// memory held never exceeds maxBytes however long the lines are.
type ring struct {
	entries  []entry // circular, len = max lines
	first, n int     // oldest entry and number of entries
	text     []byte  // circular; grows by doubling up to maxBytes
	tstart   int     // offset of the oldest entry's text
	used     int     // bytes of text held
	maxBytes int
}

// ringStartBytes is the initial text buffer. Idle or quiet instances (most
// of them) never need more: 200 lines of 90 bytes is 18 KiB.
const ringStartBytes = 4 << 10

func newRing(lines, maxBytes int) *ring {
	return &ring{entries: make([]entry, lines), maxBytes: maxBytes}
}

// add appends a line, evicting the oldest ones as needed. b must not be
// longer than maxBytes (pieces are at most MaxLine).
func (r *ring) add(e entry, b []byte) {
	if len(r.entries) == 0 {
		return
	}
	for r.n > 0 && (r.n == len(r.entries) || r.used+len(b) > r.maxBytes) {
		r.evict()
	}
	if r.used+len(b) > len(r.text) {
		r.grow(r.used + len(b))
	}
	e.off = (r.tstart + r.used) % max(len(r.text), 1)
	e.n = len(b)
	if len(b) > 0 {
		k := copy(r.text[e.off:], b)
		copy(r.text, b[k:])
	}
	r.used += len(b)
	r.entries[(r.first+r.n)%len(r.entries)] = e
	r.n++
}

func (r *ring) evict() {
	e := &r.entries[r.first]
	r.tstart = (r.tstart + e.n) % max(len(r.text), 1)
	r.used -= e.n
	r.first = (r.first + 1) % len(r.entries)
	r.n--
	if r.n == 0 {
		r.tstart, r.used = 0, 0
	}
}

// grow reallocates the text buffer, laying the held texts out from offset 0.
func (r *ring) grow(need int) {
	size := max(len(r.text), ringStartBytes)
	for size < need {
		size *= 2
	}
	size = min(size, r.maxBytes)
	text := make([]byte, size)
	off := 0
	for i := 0; i < r.n; i++ {
		e := &r.entries[(r.first+i)%len(r.entries)]
		r.copyText(text[off:off+e.n], e)
		e.off = off
		off += e.n
	}
	r.text, r.tstart = text, 0
}

func (r *ring) copyText(dst []byte, e *entry) {
	k := copy(dst, r.text[e.off:min(e.off+e.n, len(r.text))])
	copy(dst[k:], r.text)
}

// at returns the i-th held entry, oldest first.
func (r *ring) at(i int) *entry { return &r.entries[(r.first+i)%len(r.entries)] }

// textOf returns a copy of e's text as a string.
func (r *ring) textOf(e *entry) string {
	b := make([]byte, e.n)
	r.copyText(b, e)
	return string(b)
}

func (r *ring) reset() { r.first, r.n, r.tstart, r.used = 0, 0, 0, 0 }
