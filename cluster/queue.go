package cluster

import "sync"

// maxQueued bounds the events or messages waiting for a reader. Events of a
// Primary nobody reads must not grow memory without end; 64Ki is far more
// than any sane burst (a few per worker start, one per message).
const maxQueued = 64 << 10

// A queue delivers values on a channel in order, without ever blocking the
// producer: the protocol goroutines must keep reading their channels (and
// ACKing handles) whether or not the program reads its events.
type queue[T any] struct {
	out chan T

	mu      sync.Mutex
	items   []T
	wake    chan struct{}
	closed  bool
	dropped int
}

func newQueue[T any]() *queue[T] {
	q := &queue[T]{out: make(chan T), wake: make(chan struct{}, 1)}
	go q.pump()
	return q
}

// push queues v; it reports false when the queue is full or closed.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || len(q.items) >= maxQueued {
		q.dropped++
		return false
	}
	q.items = append(q.items, v)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// close makes out close after the queued values are delivered.
func (q *queue[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *queue[T]) pump() {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			closed := q.closed
			q.mu.Unlock()
			if closed {
				close(q.out)
				return
			}
			<-q.wake
			continue
		}
		v := q.items[0]
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		q.mu.Unlock()
		q.out <- v
	}
}
