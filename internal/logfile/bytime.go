package logfile

import (
	"container/heap"
	"sync"
	"time"
)

// Time-based rotation must happen when it is due even if the app prints
// nothing then, so it cannot wait for the next write; but a daemon with
// hundreds of sinks must not wake up for each of them. All sinks of the
// process therefore share one timer, set for the earliest rotation due
// among them: it fires once per due time, and not at all when none is.
var rotations rotationQueue

// rotationQueue orders the sinks that rotate by time by when they are next
// due, in wall-clock time. Its lock is taken after a Sink's, never before.
type rotationQueue struct {
	mu    sync.Mutex
	sinks sinkHeap
	timer *time.Timer // fires q.fire; nil until first needed
	armed time.Time   // when timer fires; zero when stopped
}

// schedule (re)places s in the queue to be rotated at at.
func (q *rotationQueue) schedule(s *Sink, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s.queuedAt = at
	if s.queueIndex >= 0 {
		heap.Fix(&q.sinks, s.queueIndex)
	} else {
		heap.Push(&q.sinks, s)
	}
	q.arm()
}

// remove takes s out of the queue, if it is in.
func (q *rotationQueue) remove(s *Sink) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.queueIndex >= 0 {
		heap.Remove(&q.sinks, s.queueIndex)
	}
	q.arm()
}

// arm sets the timer for the head of the queue, or stops it when the queue
// is empty. Called with q.mu held.
func (q *rotationQueue) arm() {
	if len(q.sinks) == 0 {
		if q.timer != nil && !q.armed.IsZero() {
			q.timer.Stop()
		}
		q.armed = time.Time{}
		return
	}
	at := q.sinks[0].queuedAt
	if at.Equal(q.armed) {
		return
	}
	d := time.Until(at)
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.fire)
	} else {
		q.timer.Reset(d)
	}
	q.armed = at
}

// fire rotates every sink that is due, each of which queues itself again
// for its next rotation.
func (q *rotationQueue) fire() {
	q.mu.Lock()
	now := time.Now()
	var due []*Sink
	for len(q.sinks) > 0 && !q.sinks[0].queuedAt.After(now) {
		due = append(due, heap.Pop(&q.sinks).(*Sink))
	}
	q.armed = time.Time{}
	q.arm()
	q.mu.Unlock()
	for _, s := range due {
		s.rotateDue()
	}
}

// sinkHeap is a container/heap of sinks by queuedAt.
type sinkHeap []*Sink

func (h sinkHeap) Len() int           { return len(h) }
func (h sinkHeap) Less(i, j int) bool { return h[i].queuedAt.Before(h[j].queuedAt) }
func (h sinkHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].queueIndex, h[j].queueIndex = i, j
}
func (h *sinkHeap) Push(x any) {
	s := x.(*Sink)
	s.queueIndex = len(*h)
	*h = append(*h, s)
}
func (h *sinkHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.queueIndex = -1
	return s
}

// startTimeRotation sets when each file is first due: the first time after
// it was last written, so that a file left from before a rotation time
// that passed while no one had it open (the daemon was down) is rotated
// now. Called with s.mu held.
func (s *Sink) startTimeRotation(now time.Time) {
	for _, lf := range s.files() {
		from := now
		if lf.f != nil && lf.size > 0 {
			if st, err := lf.f.Stat(); err == nil {
				from = st.ModTime()
			}
		}
		lf.due = s.opt.RotateAt.Next(from)
	}
	s.rotateByTime(now)
}

// rotateDue is the timer's call: it rotates the files whose time has come.
func (s *Sink) rotateDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.rotateByTime(s.now())
	}
}

// rotateByTime rotates the files whose time has come, but not empty ones,
// and queues the sink for the next time. Called with s.mu held, so it is
// never at the same time as a write or a rotation by size.
func (s *Sink) rotateByTime(now time.Time) {
	for _, lf := range s.files() {
		if lf.due.IsZero() || now.Before(lf.due) {
			continue
		}
		lf.due = s.opt.RotateAt.Next(now)
		if lf.f == nil || lf.err != nil || lf.size == 0 {
			continue // nothing to rotate, or a failing file Problem reports
		}
		s.rotate(lf, now)
		if lf.rotateErr != nil {
			lf.due = now.Add(retryInterval)
		}
	}
	s.due = time.Time{}
	for _, lf := range s.files() {
		if !lf.due.IsZero() && (s.due.IsZero() || lf.due.Before(s.due)) {
			s.due = lf.due
		}
	}
	if s.due.IsZero() {
		rotations.remove(s) // the schedule has no next time
		return
	}
	// The queue runs on the real clock; s.now may be a test's.
	rotations.schedule(s, time.Now().Add(s.due.Sub(now)))
}
