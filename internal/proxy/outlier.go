package proxy

import (
	"fmt"
	"sync"
	"time"
)

// Outlier ejection, as Envoy does it for a cluster's hosts: an instance
// whose connections fail, or that answers far more slowly than the others,
// is taken out of rotation for a while, so that clients stop paying for it
// before a liveness probe (if any) has it replaced. A failure is a
// connection the instance refused or did not accept within DialTimeout,
// or, when SlowAfter is set, an answer that took longer while another
// instance answered in time lately (when every instance is slow, the app
// is, and none is ejected). Latency is opt-in: long polls and slow
// endpoints are some apps' normal. ejectAfter failures in a row eject it for ejectBase, doubled
// for each ejection in a row, up to ejectMax; at most half the instances
// are out at once, never the last one. Back in rotation it is on trial: its
// next connection is the probe, and one failure ejects it again.

const (
	ejectAfter = 5
	ejectBase  = 10 * time.Second
	ejectMax   = 5 * time.Minute
	// fastWindow is how recent another instance's timely answer must be
	// for a slow one to count against this one.
	fastWindow = 30 * time.Second
)

// outlier is a backend's record, guarded by Proxy.mu.
type outlier struct {
	fails     int       // failures in a row
	ejections int       // ejections in a row: a timely answer ends the streak
	until     time.Time // out of rotation until then
	trial     bool      // back from an ejection, not yet answered in time
	fastAt    time.Time // its last timely answer
}

// ejected reports whether b is out of rotation now. Caller holds p.mu.
func (b *backend) ejected(now time.Time) bool {
	if b.until.IsZero() {
		return false
	}
	if now.Before(b.until) {
		return true
	}
	b.until, b.trial = time.Time{}, true
	return false
}

// failed counts a failure of b. Caller holds p.mu.
func (p *Proxy) failed(b *backend, why string) {
	b.fails++
	n := b.fails
	if b.fails < ejectAfter && !b.trial {
		return
	}
	now := time.Now()
	out, others := 0, 0 // ejected, and in rotation besides b
	for _, o := range p.backends {
		switch {
		case o.draining:
		case o.ejected(now):
			out++
		case o != b:
			others++
		}
	}
	if others < 1 || (out+1)*2 > len(p.backends) {
		return // it is needed: at most half out, never the last
	}
	b.ejections++
	base := p.EjectFor
	if base <= 0 {
		base = ejectBase
	}
	d := min(base<<min(b.ejections-1, 10), ejectMax)
	b.until, b.fails, b.trial = now.Add(d), 0, false
	p.logf("proxy: backend %d (%s) ejected for %s: %d failures in a row, the last: %s", b.ID, b.Addr, d, n, why)
}

// answered records how long b took to answer a client's first bytes, or
// that it has not within SlowAfter (late). Caller holds p.mu.
func (p *Proxy) answered(b *backend, took time.Duration, late bool) {
	now := time.Now()
	if !late || p.SlowAfter <= 0 {
		if b.trial || b.ejections > 0 {
			p.logf("proxy: backend %d (%s) answers in time again", b.ID, b.Addr)
		}
		b.fails, b.ejections, b.trial, b.fastAt = 0, 0, false, now
		return
	}
	for _, o := range p.backends {
		if o != b && !o.draining && now.Sub(o.fastAt) < fastWindow {
			p.failed(b, fmt.Sprintf("it took %s to answer, over %s, while others answer in time", took.Round(time.Millisecond), p.SlowAfter))
			return
		}
	}
}

// answerWatch times a connection's first answer: from the client's last
// bytes before it (a slow upload is the client's time, not the backend's)
// to the backend's first bytes. Only an answer is judged: a client that
// sends half a request and waits, or gives up, says nothing of the
// backend.
type answerWatch struct {
	p     *Proxy
	b     *backend
	mu    sync.Mutex
	asked time.Time
	done  bool
}

// sent marks client bytes delivered, before any answer.
func (w *answerWatch) sent() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.asked = time.Now()
	}
}

// answered reports whether the backend has answered.
func (w *answerWatch) answered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done
}

// answer marks the backend's first bytes read, and judges them.
func (w *answerWatch) answer() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	if w.asked.IsZero() {
		return // it spoke first: nothing to time
	}
	took := time.Since(w.asked)
	w.p.mu.Lock()
	w.p.answered(w.b, took, took > w.p.SlowAfter)
	w.p.mu.Unlock()
}
