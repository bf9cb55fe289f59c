package web

import (
	"sync"
	"time"

	"github.com/tendhq/tend"
)

// The charts cover an hour in 10 s steps: 360 points per instance is
// finer than a chart a few hundred pixels wide can show, and ten 1 s
// samples averaged into each point smooth out the sampler's jitter.
const (
	historyStep   = 10 * time.Second
	historyPoints = 360
)

// HistoryBytes is the memory one instance's history takes: its points
// and their bookkeeping, whatever the instance does.
const HistoryBytes = historyPoints*12 + 64

// point is one step: the mean CPU (percent of a core) and memory (KiB;
// 32 bits hold 4 TiB) of its samples, and the connections tend handed
// the instance per second. A step with no sample is a gap.
type point struct {
	cpu   float32
	mem   uint32
	conns float32
}

// gap marks a step without samples (the instance was not running).
const gap = -1

// ring is one instance's history. Step s (Unix time / historyStep) sits
// at pts[s % historyPoints]; cur is the step samples now go into, summed
// until the step ends. Connections come as a count since the slot began
// (tend.Instance.Connections): a step gets what the count grew beyond the
// highest it had been. Within a daemon (and a History) the count never
// begins again (ids are not reused), but it dips for a moment when a
// process exits (tend's proxy forgets it before the slot adds its count)
// and by a few when a handed connection is refused: what comes back is no
// new connection.
type ring struct {
	pts      [historyPoints]point
	cur      int64
	cpuSum   float64
	memSum   uint64
	n        int
	connSum  uint64 // handed out in the current step
	topConns uint64 // the highest count sampled
	last     int64  // when the last sample was taken, Unix nanoseconds
}

// History is the CPU, memory and connections of every instance over the
// last hour, fed by the daemon's sampler. The zero value is empty and
// ready; it is safe for concurrent use.
type History struct {
	mu    sync.Mutex
	rings map[int]*ring // by instance id
}

// Record adds the sample taken at now of every instance in insts (those
// with a pid) and forgets the instances that are no longer listed.
func (h *History) Record(now time.Time, insts []tend.Instance) {
	step := now.UnixNano() / int64(historyStep)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rings == nil {
		h.rings = map[int]*ring{}
	}
	seen := make(map[int]bool, len(insts))
	for _, in := range insts {
		seen[in.ID] = true
		r := h.rings[in.ID]
		if r == nil {
			r = &ring{cur: step, topConns: in.Connections}
			for i := range r.pts {
				r.pts[i].cpu = gap
			}
			h.rings[in.ID] = r
		}
		r.advance(step)
		if in.Connections > r.topConns {
			r.connSum += in.Connections - r.topConns
			r.topConns = in.Connections
		}
		r.last = now.UnixNano()
		if in.PID != 0 {
			r.cpuSum += in.CPU
			r.memSum += in.Memory >> 10
			r.n++
		}
	}
	for id := range h.rings {
		if !seen[id] {
			delete(h.rings, id)
		}
	}
}

// advance closes the steps before step: the current one gets the mean of
// its samples, the ones skipped (no sample came) become gaps.
func (r *ring) advance(step int64) {
	if step <= r.cur {
		return
	}
	p := point{cpu: gap}
	if r.n > 0 {
		p = point{cpu: float32(r.cpuSum / float64(r.n)), mem: uint32(min(r.memSum/uint64(r.n), 1<<32-1)),
			conns: float32(float64(r.connSum) / historyStep.Seconds())}
	}
	r.pts[r.cur%historyPoints] = p
	for s := r.cur + 1; s < step && s < r.cur+historyPoints; s++ {
		r.pts[s%historyPoints] = point{cpu: gap}
	}
	r.cur, r.cpuSum, r.memSum, r.n, r.connSum = step, 0, 0, 0, 0
}

// Point is one step of a chart, as the page receives it: [time in Unix
// milliseconds, CPU percent, memory bytes, connections per second].
type Point [4]float64

// Of returns the points of instance id over the last hour, oldest
// first, gaps left out, the step in progress last (its connections per
// second over the part of the step sampled so far); nil for an instance
// it has no history of.
func (h *History) Of(id int) []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rings[id]
	if r == nil {
		return nil
	}
	pts := []Point{}
	for s := r.cur - historyPoints + 1; s < r.cur; s++ {
		if s < 0 {
			continue
		}
		if p := r.pts[s%historyPoints]; p.cpu != gap {
			pts = append(pts, Point{stepMillis(s), float64(p.cpu), float64(p.mem) * 1024, float64(p.conns)})
		}
	}
	if r.n > 0 {
		// At least a second: the sampler's period, so that the first
		// sample of a step does not divide by nothing.
		span := max(time.Duration(r.last-r.cur*int64(historyStep)), time.Second)
		pts = append(pts, Point{stepMillis(r.cur), r.cpuSum / float64(r.n), float64(r.memSum/uint64(r.n)) * 1024,
			float64(r.connSum) / span.Seconds()})
	}
	return pts
}

func stepMillis(step int64) float64 {
	return float64(time.Duration(step) * historyStep / time.Millisecond)
}
