package logfile

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// subscriber is one live feed. Guarded by the sink's mutex.
type subscriber struct {
	ch      chan Line
	dropped int // lines lost since the last one delivered
	closed  bool
}

func (sub *subscriber) close() {
	if !sub.closed {
		sub.closed = true
		close(sub.ch)
	}
}

// Subscribe returns the last n lines held in memory (at most TailLines; use
// Tail first for older history) and a channel carrying every later line, with
// no gap and no duplicate between the two. cancel ends the subscription and
// closes the channel; Close does too.
//
// Sending never waits: when a subscriber's channel is full its lines are
// dropped, and before the next line that fits it receives a Line whose Text
// is "[tend: N lines dropped]".
func (s *Sink) Subscribe(n int) (backlog []Line, live <-chan Line, cancel func()) {
	sub := &subscriber{ch: make(chan Line, s.opt.LiveBuffer)}
	s.mu.Lock()
	backlog = s.memTail(n)
	if s.closed {
		sub.close()
	} else {
		s.subs[sub] = struct{}{}
	}
	s.mu.Unlock()
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, sub)
			sub.close()
			s.mu.Unlock()
		})
	}
	return backlog, sub.ch, cancel
}

// publish hands pieces to every subscriber. Called with s.mu held, and only
// when there are subscribers: the texts become one string shared by all
// lines and subscribers, so watching costs one allocation per chunk.
func (s *Sink) publish(stream Stream, now time.Time, pieces []piece) {
	var sb strings.Builder
	for _, p := range pieces {
		sb.Write(p.b)
	}
	all := sb.String()
	off := 0
	for _, p := range pieces {
		l := Line{Time: now, App: s.opt.App, Instance: s.opt.Instance, Stream: stream,
			Text: all[off : off+len(p.b)], Partial: p.partial}
		off += len(p.b)
		for sub := range s.subs {
			sub.send(l)
		}
	}
}

// send delivers l without blocking. After a drop the notice and the next
// line are sent together or not at all, so the notice is never lost and
// always precedes the lines that follow the gap.
func (sub *subscriber) send(l Line) {
	if sub.dropped > 0 {
		if cap(sub.ch)-len(sub.ch) < 2 {
			sub.dropped++
			return
		}
		note := l
		note.Text, note.Partial = fmt.Sprintf("[tend: %d lines dropped]", sub.dropped), false
		sub.ch <- note
		sub.dropped = 0
	}
	select {
	case sub.ch <- l:
	default:
		sub.dropped++
	}
}
