package nodecluster

import (
	"encoding/json"
	"net"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// maxHeld bounds the connections tend holds per listener (queued for a free
// worker or in flight). Past it, tend stops accepting and clients wait in
// the kernel's backlog, so a stalled app cannot run the daemon out of fds.
const maxHeld = 256

// listener is one bound socket, shared by every worker that listens on its
// key, for as long as the Primary lives.
type listener struct {
	key     string
	keyJSON []byte // key as a JSON string, for newconn messages
	ln      Socket
	acc     *os.File        // RR: a duplicate of ln's socket that tend accepts on
	accRC   syscall.RawConn // RR: acc's, for accept4 under Go's poller
	address string          // bound address, or a unix socket's path
	port    int
	family  string    // "IPv4" or "IPv6"; "" for a unix socket
	path    string    // a unix socket's path, removed when it closes
	sock    *sockPath // path's directory and inode, for removing it safely
	udp     bool      // a dgram socket: always shared, as under Node
	data    []byte    // the first worker's server data (TLS ticket keys)

	members  map[int]bool   // workers with this server open
	free     []int          // RR: members with no newconn in flight
	last     int            // RR: the worker that got the previous connection
	turns    map[int]uint64 // RR: connections given to each member, from a level start (see join)
	skipped  map[int]bool   // RR: busy members the last grace expired for
	refusals map[int]int    // RR: connections each member refused in a row
	grace    *time.Timer    // RR: running while a connection waits for a lagging busy worker
	queue    []int          // RR: accepted sockets, waiting for a free worker
	held     chan struct{}  // RR: one token per connection tend holds
	idle     chan struct{}  // RR: a worker may be free with nothing queued: accept
	quiet    chan struct{}  // RR: closed by Quiesce: accept no more
	handed   map[int]uint64 // RR: connections handed to each worker and not refused
	refused  uint64         // RR: hand-offs refused (a worker at maxConnections, or closing)
	keys     map[int]uint64 // sticky: the client key (sticky.Key) of each socket tend holds, by fd
	holding  bool           // reuseport: ln no longer listens, it only holds the port (Primary.hold)
	done     chan struct{}  // closed by close
}

func newListener(key string, ln Socket) *listener {
	keyJSON, _ := json.Marshal(key) // a string always encodes
	l := &listener{key: key, keyJSON: keyJSON, ln: ln,
		members: map[int]bool{}, turns: map[int]uint64{}, skipped: map[int]bool{}, refusals: map[int]int{},
		held:   make(chan struct{}, maxHeld),
		idle:   make(chan struct{}, 1),
		quiet:  make(chan struct{}),
		handed: map[int]uint64{}, keys: map[int]uint64{}, done: make(chan struct{})}
	var ip net.IP
	switch a := sockAddr(ln).(type) {
	case *net.TCPAddr:
		ip, l.port = a.IP, a.Port
	case *net.UDPAddr:
		ip, l.port, l.udp = a.IP, a.Port, true
	case *net.UnixAddr:
		l.address, l.path = a.Name, a.Name
		l.sock = newSockPath(a.Name)
	}
	if ip != nil {
		l.address, l.family = ip.String(), "IPv6"
		if ip.To4() != nil {
			l.family = "IPv4"
		}
	}
	return l
}

// accepts reports whether tend accepts l's connections and hands them
// out: in RR and sticky, but for UDP, which Node always shares.
func (l *listener) accepts(sched string) bool {
	return (sched == SchedRR || sched == SchedSticky) && !l.udp
}

// handleType is how Node's channel names l's socket when it is sent.
func (l *listener) handleType() string {
	if l.udp {
		return "dgram.Native"
	}
	return "net.Native"
}

// close closes the socket and the connections waiting in tend. Caller holds
// p.mu. Connections in flight are closed when their worker answers.
func (l *listener) close() {
	close(l.done)
	if l.grace != nil {
		l.grace.Stop()
	}
	l.ln.Close()
	l.sock.remove()
	if l.acc != nil {
		l.acc.Close()
	}
	for _, fd := range l.queue {
		syscall.Close(fd)
		<-l.held
	}
	l.queue = nil
	clear(l.keys)
}

// requeue puts a connection that a worker did not take back at the front
// of the queue, or closes it if the listener is closed. Caller holds p.mu.
func (l *listener) requeue(fd int) {
	select {
	case <-l.done:
		syscall.Close(fd)
		delete(l.keys, fd)
		<-l.held
	default:
		l.queue = slices.Insert(l.queue, 0, fd)
	}
}

// startAccepting makes l an RR listener: tend accepts its connections and
// hands them out. Caller holds p.mu.
func (p *Primary) startAccepting(l *listener) error {
	// tend never reads an accepted connection, only passes its fd on, so it
	// accepts with accept4 itself on a duplicate of the socket registered
	// with Go's poller (net's own listener offers no raw read): no poller
	// registration, address lookups or finalizer for each connection.
	f, err := l.ln.File()
	if err != nil {
		return err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	l.acc, l.accRC = f, rc
	p.accepting.Add(1)
	go p.acceptLoop(l)
	return nil
}

// accept returns the next connection on l's socket as a non-blocking,
// close-on-exec fd, waiting for one.
func (l *listener) accept() (int, error) {
	fd, aerr := -1, error(nil)
	err := l.accRC.Read(func(s uintptr) bool {
		for {
			r, e := accept4(int(s))
			switch e {
			case 0:
				fd = r
				return true
			case syscall.EINTR, syscall.ECONNABORTED: // as net's Accept does
				continue
			case syscall.EAGAIN:
				return false // wait until readable, then come back here
			default:
				aerr = e
				return true
			}
		}
	})
	if err != nil {
		return -1, err
	}
	return fd, aerr
}

// acceptLoop accepts for an RR listener until it is closed. It accepts
// only while a worker is free to take the connection at once, so that
// under load connections wait in the kernel's backlog rather than in
// tend: one that tend holds when its daemon dies is lost, while one in the
// backlog is served once tend's next daemon takes the socket back from
// the keeper. Node's primary accepts whatever comes and queues it.
func (p *Primary) acceptLoop(l *listener) {
	defer p.accepting.Done()
	delay := 5 * time.Millisecond
	for {
		p.mu.Lock()
		ready := p.canTake(l) && len(l.queue) == 0
		p.mu.Unlock()
		if !ready {
			select {
			case <-l.idle:
			case <-l.done:
				return
			case <-l.quiet:
				return
			}
			continue
		}
		select {
		case l.held <- struct{}{}:
		case <-l.done:
			return
		case <-l.quiet:
			return
		}
		fd, err := l.accept()
		if err != nil {
			<-l.held
			select {
			case <-l.done:
				return
			case <-l.quiet:
				return
			default:
			}
			// EMFILE and the like: back off instead of spinning; the
			// clients wait in the backlog meanwhile.
			p.logf("accept on %s: %v", l.key, err)
			select {
			case <-time.After(delay):
			case <-l.done:
				return
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		var key uint64
		if p.sched == SchedSticky {
			key = peerKey(fd)
		}
		p.mu.Lock()
		select {
		case <-l.done: // closed while accepting
			syscall.Close(fd)
			<-l.held
		default:
			l.queue = append(l.queue, fd)
			if p.sched == SchedSticky {
				l.keys[fd] = key
			}
			p.dispatch(l)
		}
		p.mu.Unlock()
	}
}

// makeFree puts w back in l's rotation if it still belongs there. Caller
// holds p.mu.
func (p *Primary) makeFree(l *listener, w *worker) {
	if w.out || !l.members[w.id] || slices.Contains(l.free, w.id) || p.workers[w.id] != w {
		return
	}
	for _, h := range p.pending {
		if h.l == l && h.w == w.id {
			return // still busy with a connection: one in flight per worker
		}
	}
	l.free = append(l.free, w.id)
	delete(l.skipped, w.id)
}

// Balance. The free worker with the fewest turns (connections given since
// it joined, see join) gets the next connection, ties going in id order
// after the previous pick, so sequential connections alternate exactly and
// under load no worker falls behind for long. Node's round robin gives it
// to the longest-idle worker instead, which depends on the order in which
// answers are processed.
//
// A worker that is behind but busy with its previous connection is waited
// for only when its answer has already reached tend (nodeipc's Unread):
// that is the sequential client, who connects again as soon as the
// previous response arrives, which the worker sends after its answer. A
// worker still working on its answer is not waited for: under load the
// connection goes to a free worker at once, since waiting would cost every
// client latency, and the busy worker forfeits that turn. Turns thus never
// drift apart by more than one, and a worker that was slow under load does
// not get a run of connections afterwards to catch up.

// turnGrace bounds the wait for an answer that has reached tend: it only
// absorbs goroutine scheduling. A worker that lets it expire is not waited
// for again until it answers.
const turnGrace = time.Millisecond

// pick removes and returns the free worker that gets the next connection,
// or returns -1 when the connection waits for a busy worker (the grace
// timer is then running). Caller holds p.mu; l.free is not empty.
func (p *Primary) pick(l *listener) int {
	best := l.free[0]
	for _, id := range l.free[1:] {
		if l.turns[id] < l.turns[best] || l.turns[id] == l.turns[best] && l.before(id, best) {
			best = id
		}
	}
	var lagging []int // busy workers behind best whose answer is in: wait for them
	for id := range l.members {
		w := p.workers[id]
		if w == nil || w.out || l.turns[id] >= l.turns[best] {
			continue
		}
		if !l.skipped[id] && w.ch.Unread() {
			lagging = append(lagging, id)
		} else {
			// Still working on its answer: it forfeits the turn it
			// misses, so that it does not claim a run of connections
			// later to catch up.
			l.turns[id] = l.turns[best]
		}
	}
	if len(lagging) > 0 {
		if l.grace == nil {
			var t *time.Timer
			t = time.AfterFunc(turnGrace, func() {
				p.mu.Lock()
				defer p.mu.Unlock()
				if l.grace != t {
					return // a pick happened meanwhile
				}
				l.grace = nil
				for _, id := range lagging {
					l.skipped[id] = true // until it answers (makeFree)
				}
				p.dispatch(l)
			})
			l.grace = t
		}
		return -1
	}
	if l.grace != nil {
		l.grace.Stop()
		l.grace = nil
	}
	l.free = slices.DeleteFunc(l.free, func(id int) bool { return id == best })
	l.last = best
	l.turns[best]++
	return best
}

// join adds worker id to l's members, level with the member that has had
// the fewest turns, so that a new worker does not get every connection
// until it has caught up with workers that served for hours. Caller holds
// p.mu.
func (p *Primary) join(l *listener, id int) {
	if l.members[id] {
		return
	}
	first, least := true, uint64(0)
	for m := range l.members {
		if w := p.workers[m]; w != nil && !w.out && (first || l.turns[m] < least) {
			first, least = false, l.turns[m]
		}
	}
	l.members[id] = true
	l.turns[id] = least
}

// leave removes worker id from l's members and rotation. Caller holds p.mu.
func (l *listener) leave(id int) {
	delete(l.members, id)
	delete(l.turns, id)
	delete(l.skipped, id)
	delete(l.refusals, id)
	l.free = slices.DeleteFunc(l.free, func(m int) bool { return m == id })
}

// before reports whether worker a's turn comes before b's: ids after the
// previous pick first, in increasing order, then the rest from the lowest.
func (l *listener) before(a, b int) bool {
	if (a > l.last) != (b > l.last) {
		return a > l.last
	}
	return a < b
}

// dispatch hands queued connections to free workers, at most one in flight
// per worker, like Node's RoundRobinHandle. Caller holds p.mu; sends only
// queue, so holding it is fine.
func (p *Primary) dispatch(l *listener) {
	if p.sched == SchedSticky {
		p.dispatchSticky(l)
		return
	}
	for len(l.queue) > 0 && len(l.free) > 0 {
		id := p.pick(l)
		if id < 0 {
			return
		}
		w := p.workers[id]
		if w == nil || w.out || !l.members[id] {
			continue
		}
		fd := l.queue[0]
		l.queue = l.queue[1:]
		p.handOff(l, w, fd)
	}
	if len(l.free) > 0 && len(l.queue) == 0 {
		select {
		case l.idle <- struct{}{}:
		default:
		}
	}
}

// handOff sends the connection fd to worker w ("newconn"); it reports
// false, with fd back at the front of l's queue, if the channel would not
// take it. Caller holds p.mu.
func (p *Primary) handOff(l *listener, w *worker, fd int) bool {
	seq := p.seq.Add(1)
	p.pending[seq] = &handoff{l: l, w: w.id, fd: fd}
	l.handed[w.id]++ // counted now, so `tend ls` agrees with what clients saw
	err := w.ch.SendFD(l.newconn(seq), fd, "net.Native", func(err error) {
		if err != nil {
			p.undelivered(seq, err)
		}
	})
	if err != nil {
		p.logf("worker %d: handing over a connection: %v", w.id, err)
		delete(p.pending, seq)
		l.handed[w.id]--
		l.queue = slices.Insert(l.queue, 0, fd)
		return false
	}
	return true
}

// newconn encodes {"cmd":"NODE_CLUSTER","act":"newconn","key":…,"seq":seq},
// as encoding clusterMsg would, without reflection: once per connection.
func (l *listener) newconn(seq int64) []byte {
	b := make([]byte, 0, 64+len(l.keyJSON))
	b = append(b, `{"cmd":"NODE_CLUSTER","act":"newconn","key":`...)
	b = append(b, l.keyJSON...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, '}')
}

// answered handles a worker's {ack, accepted} for a newconn.
func (p *Primary) answered(w *worker, seq int64, accepted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.probeAnswered(seq, accepted) {
		return
	}
	h := p.pending[seq]
	if h == nil || h.w != w.id {
		return
	}
	delete(p.pending, seq)
	l := h.l
	if accepted {
		syscall.Close(h.fd) // the worker has its own copy now
		delete(l.keys, h.fd)
		<-l.held
		delete(l.refusals, w.id)
		p.makeFree(l, w)
		p.dispatch(l)
		return
	}
	// The worker is closing that server or is at maxConnections: the
	// connection goes to another. Node's primary offers the refusing
	// worker the next one at once, so when every worker is at
	// maxConnections it hands one connection around as fast as it can,
	// and tend's daemon serves every app. tend offers this worker
	// another only after a wait that doubles with each refusal in a row,
	// from 1 ms to refusalWait: the connection waits in the queue
	// meanwhile, for whichever worker has room first.
	l.handed[w.id]--
	l.refused++
	l.requeue(h.fd)
	n := l.refusals[w.id]
	l.refusals[w.id] = n + 1
	l.skipped[w.id] = true // not waited for by pick meanwhile
	time.AfterFunc(min(time.Millisecond<<min(n, 10), refusalWait), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.sched == SchedSticky {
			delete(l.skipped, w.id) // its clients come back to it
		}
		p.makeFree(l, w)
		p.dispatch(l)
	})
	p.dispatch(l)
}

// refusalWait bounds the wait before a worker that keeps refusing
// connections is offered another.
const refusalWait = 100 * time.Millisecond

// undelivered requeues a connection whose fd never reached the worker
// (NACKed on every retransmission, or the channel closed first). The
// worker stays out of l's rotation: it cannot take handles.
func (p *Primary) undelivered(seq int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.pending[seq]
	if h == nil {
		return
	}
	delete(p.pending, seq)
	p.logf("worker %d: connection not delivered: %v", h.w, err)
	h.l.handed[h.w]--
	if w := p.workers[h.w]; w != nil {
		h.l.leave(h.w)
	}
	h.l.requeue(h.fd)
	p.dispatch(h.l)
}
