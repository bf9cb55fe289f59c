package nodecluster

import (
	"net/netip"

	"github.com/tendhq/tend/internal/sticky"
	"golang.org/x/sys/unix"
)

// Sticky scheduling. tend accepts each connection as in RR, then hands it
// to the worker whose slot the client's address picks (package sticky):
// every connection from one address reaches one worker, which session-
// bound apps need (Socket.IO's long-polling transport sends each poll on
// a new connection). There is no one-connection-in-flight limit per
// worker, as a client cannot be sent elsewhere while its worker is busy,
// but tend accepts only while it has fewer connections in flight than
// there are workers to take them, as RR accepts only for a free worker:
// under load connections wait in the kernel's backlog, where a daemon
// that dies loses none of them, rather than in tend.
//
// A worker that refuses a connection (closing its server, or at
// maxConnections) is passed over until its refusal wait ends, as in RR:
// its clients go to their next-best slot meanwhile, and come back.

// SetSlot tells the Primary which slot (instance number) worker id
// serves: sticky scheduling picks slots, so that a worker that replaces
// another in its slot gets that slot's clients. A worker without one is
// taken to serve slot id. Call it before AddWorker; RemoveWorker forgets
// it.
func (p *Primary) SetSlot(id, slot int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.slots[id] = slot
}

// slotOf is worker id's slot. Caller holds p.mu.
func (p *Primary) slotOf(id int) int {
	if s, ok := p.slots[id]; ok {
		return s
	}
	return id
}

// canTake reports whether a connection accepted on l now would go to a
// worker at once. Caller holds p.mu.
func (p *Primary) canTake(l *listener) bool {
	if p.sched != SchedSticky {
		return len(l.free) > 0
	}
	workers := 0
	for id := range l.members {
		if w := p.workers[id]; w != nil && !w.out && !l.skipped[id] {
			workers++
		}
	}
	for _, h := range p.pending {
		if h.l == l {
			workers--
		}
	}
	return workers > 0
}

// stickyTarget is the worker that serves the client with key on l, or nil
// if no member can take a connection. Caller holds p.mu.
func (p *Primary) stickyTarget(l *listener, key uint64) *worker {
	var best *worker
	var bc sticky.Candidate
	for id := range l.members {
		w := p.workers[id]
		if w == nil || w.out || l.skipped[id] {
			continue
		}
		c := sticky.Candidate{Slot: p.slotOf(id), ID: id}
		if best == nil || sticky.Better(key, c, bc) {
			best, bc = w, c
		}
	}
	return best
}

// dispatchSticky hands every queued connection to its client's worker.
// Connections wait in the queue only while no member can take one.
// Caller holds p.mu.
func (p *Primary) dispatchSticky(l *listener) {
	for len(l.queue) > 0 {
		fd := l.queue[0]
		w := p.stickyTarget(l, l.keys[fd])
		if w == nil {
			return
		}
		l.queue = l.queue[1:]
		if !p.handOff(l, w, fd) {
			l.skipped[w.id] = true // its channel is closing: until it leaves
		}
	}
	select {
	case l.idle <- struct{}{}:
	default:
	}
}

// peerKey is the sticky key of an accepted socket's client address; 0 for
// a unix socket's peer, or if the address cannot be read.
func peerKey(fd int) uint64 {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return 0
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return sticky.Key(netip.AddrFrom4(a.Addr))
	case *unix.SockaddrInet6:
		return sticky.Key(netip.AddrFrom16(a.Addr))
	}
	return 0
}
