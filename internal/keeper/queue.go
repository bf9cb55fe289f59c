package keeper

import (
	"net"
	"sync"
)

// outgoing is a packet on its way to the daemon with the descriptors it
// carries, which the queue owns and closes once sent.
type outgoing struct {
	p   *packet
	fds []int
}

// queue is the keeper's outbox to one daemon: the loop pushes without ever
// waiting, so a daemon that does not read cannot stall the keeper. It
// grows only with what the keeper has to say (one exit per process).
type queue struct {
	mu     sync.Mutex
	items  []outgoing
	wake   chan struct{}
	closed bool
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) push(o outgoing) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		closeFiles(o.fds)
		return
	}
	q.items = append(q.items, o)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close discards what was not sent and ends drain.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	items := q.items
	q.items = nil
	q.mu.Unlock()
	for _, o := range items {
		closeFiles(o.fds)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drain writes queued packets to c until the queue is closed. A write
// error (the daemon is gone) discards the rest.
func (q *queue) drain(c *net.UnixConn) {
	var failed bool
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		closed := q.closed
		q.mu.Unlock()
		for _, o := range items {
			if !failed && send(c, o.p, o.fds) != nil {
				failed = true
			}
			closeFiles(o.fds)
		}
		if closed {
			return
		}
		<-q.wake
	}
}
