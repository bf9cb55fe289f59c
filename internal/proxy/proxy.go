package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/logger"
	"github.com/tendhq/tend/internal/sticky"
)

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("proxy: closed")

// Defaults for the Proxy's tunables.
const (
	// DefaultHoldTimeout bounds how long a client waits while no instance
	// is up: long enough to cover a restart with backoff's first steps
	// and a slow boot, short enough that a client is not left hanging.
	DefaultHoldTimeout = 5 * time.Second
	// DefaultDialTimeout bounds one connection attempt to an instance. On
	// loopback a dead instance refuses at once; only a wedged one with a
	// full backlog makes a dial wait, and then another instance is better.
	DefaultDialTimeout = 2 * time.Second
)

// Retry pacing while no instance accepts. SetBackends wakes waiting
// clients at once; the timer covers instances that are listed but still
// booting, which come up without any call to SetBackends.
const (
	retryMin = 25 * time.Millisecond
	retryMax = 500 * time.Millisecond
)

// Backend is one instance as the proxy sees it.
type Backend struct {
	ID   int    // the instance's id, stable across SetBackends calls
	Slot int    // its instance number, which sticky scheduling picks
	Addr string // its private address, "127.0.0.1:<PORT>"
}

// Stat is the proxy's count for one backend.
type Stat struct {
	Handed   uint64 // connections forwarded to it, in total
	Active   int    // connections open to it now
	Draining bool   // Drain was called: it gets no new connections
	Ejected  bool   // out of rotation for a while: it failed or answered late (outlier.go)
}

// backend is a Backend with its state, guarded by Proxy.mu.
type backend struct {
	Backend
	draining bool
	failing  bool // the last dial failed; logged once per outage, not per client
	handed   uint64
	active   int
	outlier
}

// Proxy forwards connections from one listener to a set of backends.
// Set HoldTimeout and DialTimeout, if at all, before calling Serve.
type Proxy struct {
	// HoldTimeout is how long a client is held while no backend accepts;
	// zero means DefaultHoldTimeout.
	HoldTimeout time.Duration
	// DialTimeout bounds one attempt to reach a backend; zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// SlowAfter is how long a backend may take to answer a client before
	// the answer counts as late (outlier.go); zero: latency ejects none.
	SlowAfter time.Duration
	// EjectFor is how long a first ejection lasts (outlier.go); zero
	// means 10 s.
	EjectFor time.Duration

	ln     net.Listener
	policy tend.Sched
	logf   logger.Logf
	ctx    context.Context // cancelled by Close, ending dials in progress
	cancel context.CancelFunc
	done   <-chan struct{} // ctx.Done()
	wg     sync.WaitGroup

	mu       sync.Mutex
	backends []*backend            // current set, in the order given
	retired  []*backend            // removed, still with open connections
	next     int                   // round-robin cursor
	changed  chan struct{}         // closed and replaced when backends change
	conns    map[net.Conn]struct{} // open connections, both sides, for Close
	closed   bool
	draining bool // Shutdown closed the listener: Serve's error is expected
}

// New returns a Proxy that accepts on ln and spreads connections by
// policy: tend.SchedRoundRobin ("rr", also for ""), tend.SchedLeastConn
// ("leastconn") or tend.SchedSticky ("sticky": the client's IP address
// picks a backend by its Slot, package sticky). Other policies panic: they are rejected when the app's
// spec is validated, long before this. logf receives one line per event
// worth a look (a backend refusing, a client dropped); nil discards them.
func New(ln net.Listener, policy tend.Sched, logf logger.Logf) *Proxy {
	switch policy {
	case "", tend.SchedRoundRobin:
		policy = tend.SchedRoundRobin
	case tend.SchedLeastConn, tend.SchedSticky:
	default:
		panic(fmt.Sprintf("proxy: unknown policy %q", policy))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		ln:      ln,
		policy:  policy,
		logf:    logf.Or(),
		ctx:     ctx,
		cancel:  cancel,
		done:    ctx.Done(),
		changed: make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
	}
}

// Serve accepts connections and forwards them until Close, then returns
// ErrClosed. Other accept errors end it too, except running out of file
// descriptors, which it waits out as net/http does.
func (p *Proxy) Serve() error {
	var delay time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			draining := p.draining
			p.mu.Unlock()
			select {
			case <-p.done:
				return ErrClosed
			default:
				if draining {
					return ErrClosed
				}
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				p.logf("proxy: accept: %v; retrying in %v", err, delay)
				select {
				case <-time.After(delay):
				case <-p.done:
					return ErrClosed
				}
				continue
			}
			return err
		}
		delay = 0
		if !p.track(c) {
			c.Close()
			return ErrClosed
		}
		go p.handle(c)
	}
}

// SetBackends replaces the set of backends. A backend whose ID and Addr
// are unchanged keeps its counters and drain state; one whose Addr changed
// (the instance restarted on a new port) starts afresh. Removed backends
// get no new connections; their open connections go on until they end.
// Clients held while no backend was up are retried at once.
func (p *Proxy) SetBackends(bs []Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.backends
	p.backends = make([]*backend, 0, len(bs))
	for _, b := range bs {
		i := slices.IndexFunc(old, func(o *backend) bool { return o != nil && o.Backend == b })
		if i >= 0 {
			p.backends = append(p.backends, old[i])
			old[i] = nil
		} else {
			p.backends = append(p.backends, &backend{Backend: b})
		}
	}
	for _, o := range old {
		if o != nil && o.active > 0 {
			p.retired = append(p.retired, o)
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// Drain stops new connections to backend id; open ones go on. Used before
// stopping an instance, so that it only has to finish what it has.
func (p *Proxy) Drain(id int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.backends {
		if b.ID == id {
			b.draining = true
		}
	}
}

// SetSlowAfter changes SlowAfter while the proxy serves (a reload).
func (p *Proxy) SetSlowAfter(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.SlowAfter = d
}

// Undrain puts backend id back in rotation after Drain.
func (p *Proxy) Undrain(id int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.backends {
		if b.ID == id {
			b.draining = false
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// Stats returns the counts per backend id: the current backends, and
// removed ones while they still have open connections.
func (p *Proxy) Stats() map[int]Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int]Stat{}
	for _, b := range slices.Concat(p.retired, p.backends) {
		s := out[b.ID]
		s.Handed += b.handed
		s.Active += b.active
		s.Draining = b.draining
		s.Ejected = !b.until.IsZero() && time.Now().Before(b.until)
		out[b.ID] = s
	}
	return out
}

// Close stops accepting, closes every forwarded connection and waits for
// their goroutines. Serve then returns ErrClosed.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
	return err
}

// Shutdown stops accepting and waits for the forwarded connections to
// end by themselves, until ctx ends; then it closes what is left, as
// Close does. Closing the listener here closes only the proxy's own
// descriptor: a daemon handing over to its successor keeps the socket
// itself open elsewhere (tend's keeper), so new clients wait in its
// backlog meanwhile.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.draining = true
	p.mu.Unlock()
	err := p.ln.Close()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		open := len(p.conns)
		p.mu.Unlock()
		if open == 0 {
			break
		}
		select {
		case <-ctx.Done():
			p.Close()
			return err
		case <-t.C:
		}
	}
	p.Close()
	return err
}

// track registers an open connection so that Close can close it; it
// reports false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pick returns the backends to try for a client with sticky key, best
// first, and the channel that signals the next change of the set.
func (p *Proxy) pick(key uint64) ([]*backend, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var up, out []*backend
	now := time.Now()
	for _, b := range p.backends {
		switch {
		case b.draining:
		case b.ejected(now):
			out = append(out, b)
		default:
			up = append(up, b)
		}
	}
	if len(up) == 0 {
		return out, p.changed // ejected ones, as a last resort
	}
	// Rotate for round robin; leastconn uses the rotation to break ties,
	// so that idle backends share the load instead of the first taking all.
	start := p.next % len(up)
	p.next++
	order := append(up[start:len(up):len(up)], up[:start]...)
	switch p.policy {
	case tend.SchedLeastConn:
		slices.SortStableFunc(order, func(a, b *backend) int { return a.active - b.active })
	case tend.SchedSticky:
		// Best first, then the next-best: if the client's backend does
		// not answer, it goes where it would go with that slot gone.
		slices.SortFunc(order, func(a, b *backend) int {
			if a == b {
				return 0
			}
			if sticky.Better(key, a.candidate(), b.candidate()) {
				return -1
			}
			return 1
		})
	}
	return append(order, out...), p.changed
}

// handle forwards one client connection.
func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	defer client.Close()

	hold := p.HoldTimeout
	if hold <= 0 {
		hold = DefaultHoldTimeout
	}
	giveUp := time.NewTimer(hold)
	defer giveUp.Stop()
	retry := retryMin
	held := false
	var key uint64
	if p.policy == tend.SchedSticky {
		key = sticky.KeyOf(client.RemoteAddr())
	}
	for {
		order, changed := p.pick(key)
		for _, b := range order {
			if bc := p.dial(b); bc != nil {
				p.pipe(client, bc, b)
				return
			}
		}
		if !held {
			held = true
			p.logf("proxy: no backend accepts; holding %v for up to %v", client.RemoteAddr(), hold)
		}
		t := time.NewTimer(retry)
		select {
		case <-changed:
		case <-t.C:
			retry = min(2*retry, retryMax)
		case <-giveUp.C:
			t.Stop()
			p.logf("proxy: no backend came up within %v; closing %v", hold, client.RemoteAddr())
			return
		case <-p.done:
			t.Stop()
			return
		}
		t.Stop()
	}
}

func (b *backend) candidate() sticky.Candidate { return sticky.Candidate{Slot: b.Slot, ID: b.ID} }

// dial connects to b, counting the attempt as an active connection from
// the start so that concurrent leastconn picks see it.
func (p *Proxy) dial(b *backend) net.Conn {
	p.mu.Lock()
	b.active++
	p.mu.Unlock()
	timeout := p.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", b.Addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		b.active--
		p.failed(b, "connecting: "+err.Error())
		if !b.failing {
			b.failing = true
			p.logf("proxy: backend %d (%s) is down, trying others: %v", b.ID, b.Addr, err)
		}
		return nil
	}
	if b.failing {
		b.failing = false
		p.logf("proxy: backend %d (%s) is up again", b.ID, b.Addr)
	}
	if p.closed {
		b.active--
		c.Close()
		return nil
	}
	b.handed++
	p.conns[c] = struct{}{}
	return c
}

// pipe copies both ways until both directions have ended, forwarding
// half-closes, then releases the backend.
func (p *Proxy) pipe(client, bc net.Conn, b *backend) {
	defer func() {
		bc.Close()
		p.mu.Lock()
		delete(p.conns, bc)
		b.active--
		if b.active == 0 {
			p.retired = slices.DeleteFunc(p.retired, func(r *backend) bool { return r == b })
		}
		p.mu.Unlock()
	}()
	w := &answerWatch{p: p, b: b}
	up := make(chan struct{})
	go func() {
		defer close(up)
		copyUp(bc, client, w)
	}()
	copyHalf(client, bc, w.answer)
	<-up
}

// bufs hold the first chunk of each direction, which copyHalf copies by
// hand to see it go by.
var bufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// copyHalf copies src to dst, calling first once the first bytes are
// through. A clean end of src becomes a half-close of dst, so the other
// side sees EOF but can still answer; an error closes both, so the other
// direction ends too instead of waiting forever. After the first chunk
// io.Copy takes over (splice(2) between two TCP connections).
func copyHalf(dst, src net.Conn, first func()) {
	err := copyFirst(dst, src, first)
	if err == nil {
		_, err = io.Copy(dst, src)
	}
	endHalf(dst, src, err)
}

// endHalf ends a direction: a clean end (err nil) half-closes dst, an
// error closes both.
func endHalf(dst, src net.Conn, err error) {
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	src.Close()
}

// copyUp copies the client's bytes to the backend, telling w of each chunk
// until the backend answers (by hand until then, io.Copy after), then
// ends as copyHalf does.
func copyUp(dst, src net.Conn, w *answerWatch) {
	var err error
	for err == nil && !w.answered() {
		var n int
		bp := bufs.Get().(*[]byte)
		n, err = src.Read(*bp)
		if n > 0 {
			w.sent() // before the write: an answer can come at once
			if _, werr := dst.Write((*bp)[:n]); werr != nil {
				err = werr
			}
		}
		bufs.Put(bp)
	}
	if err == io.EOF {
		err = nil
	}
	if err == nil {
		_, err = io.Copy(dst, src)
	}
	endHalf(dst, src, err)
}

// copyFirst copies src's first chunk to dst and calls first. io.EOF from
// src is a clean end.
func copyFirst(dst, src net.Conn, first func()) error {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	n, err := src.Read(*bp)
	if n > 0 {
		first()
		if _, werr := dst.Write((*bp)[:n]); werr != nil {
			return werr
		}
	}
	if err == io.EOF {
		return nil
	}
	return err
}
