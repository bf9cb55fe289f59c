package cluster

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// rrListener is a round-robin listener: Accept returns the connections
// the primary hands over.
type rrListener struct {
	c      *Child
	key    string
	addr   net.Addr
	served atomic.Bool // Serve owns it: disconnect leaves it to Serve

	mu       sync.Mutex
	queue    []net.Conn
	ready    chan struct{} // a connection was queued
	refusing bool          // draining: newconn is answered accepted:false
	emptied  chan struct{} // closed when refusing and the queue is empty
	closed   bool
	done     chan struct{}
}

func newRRListener(c *Child, key string, addr net.Addr) *rrListener {
	return &rrListener{c: c, key: key, addr: addr, ready: make(chan struct{}, 1),
		emptied: make(chan struct{}), done: make(chan struct{})}
}

// offer queues conn for Accept after ack has told the primary whether it
// is taken; false means the primary gives it to another worker. The answer
// goes first, as in Node's worker, so that it is on its way before this
// worker can have served the connection: the primary's round robin reads
// a worker whose answer has not arrived as busy.
func (l *rrListener) offer(conn net.Conn, ack func(accepted bool)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.refusing {
		ack(false)
		return false
	}
	ack(true)
	l.queue = append(l.queue, conn)
	select {
	case l.ready <- struct{}{}:
	default:
	}
	return true
}

// Accept returns the next connection handed over by the primary.
func (l *rrListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			conn := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			if l.refusing && len(l.queue) == 0 {
				close(l.emptied)
			}
			l.mu.Unlock()
			return conn, nil
		}
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
		}
		l.mu.Unlock()
		select {
		case <-l.ready:
		case <-l.done:
		}
	}
}

// drain stops taking new connections and returns a channel closed once
// Accept has returned every connection already accepted on the primary's
// side: closing before that would reset them.
func (l *rrListener) drain() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.refusing {
		l.refusing = true
		if len(l.queue) == 0 {
			close(l.emptied)
		}
	}
	return l.emptied
}

// Close stops the listener and tells the primary, which gives this
// worker no more of its connections. Connections queued and not yet
// accepted are closed.
func (l *rrListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	rest := l.queue
	l.queue = nil
	close(l.done)
	l.mu.Unlock()
	for _, c := range rest {
		c.Close()
	}
	l.c.mu.Lock()
	if l.c.rr[l.key] == l {
		delete(l.c.rr, l.key)
	}
	l.c.mu.Unlock()
	l.c.closeServer(l.key)
	return nil
}

// Addr returns the address the primary listens on.
func (l *rrListener) Addr() net.Addr { return l.addr }

func (l *rrListener) String() string { return fmt.Sprintf("cluster round-robin listener %v", l.addr) }

// sharedListener is the primary's socket, accepted on by every worker.
type sharedListener struct {
	net.Listener
	c      *Child
	key    string
	served atomic.Bool
	once   sync.Once
}

// Close closes this worker's copy of the socket and tells the primary;
// the socket stays open in the primary and the other workers.
func (s *sharedListener) Close() error {
	err := s.Listener.Close()
	s.once.Do(func() { s.c.closeServer(s.key) })
	return err
}

// sharedPacket is the primary's UDP socket, used by every worker: Node's
// primary shares dgram sockets whatever its policy.
type sharedPacket struct {
	*net.UDPConn
	c    *Child
	key  string
	once sync.Once
}

// Close closes this worker's copy of the socket and tells the primary.
func (s *sharedPacket) Close() error {
	err := s.UDPConn.Close()
	s.once.Do(func() { s.c.closeServer(s.key) })
	return err
}
