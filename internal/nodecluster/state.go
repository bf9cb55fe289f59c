package nodecluster

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ListenerState is what a Primary needs to take a listener back after the
// daemon that ran it went away: the socket itself travels apart (tend's
// keeper holds it meanwhile), by key.
type ListenerState struct {
	Key     string          `json:"key"`
	Data    json.RawMessage `json:"data,omitempty"`    // the first worker's server data
	Members []int           `json:"members,omitempty"` // workers with the server open
	Handed  map[int]uint64  `json:"handed,omitempty"`  // RR: connections handed to each
}

// Export returns the state of every listener, sorted by key.
func (p *Primary) Export() []ListenerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ListenerState, 0, len(p.listeners))
	for _, l := range p.listeners {
		st := ListenerState{Key: l.key, Data: l.data, Members: slices.Sorted(maps.Keys(l.members))}
		if len(l.handed) > 0 {
			st.Handed = maps.Clone(l.handed)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ListenerState) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

// Restore takes back listeners: their states, and their sockets by key.
// Call it before AddWorker: a worker added later that is a member of a
// listener gets its connections again. A state without a socket is
// skipped; a socket without a state is kept with no member, for the next
// worker that asks for its key.
func (p *Primary) Restore(states []ListenerState, sockets map[string]Socket) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	byKey := map[string]ListenerState{}
	for _, st := range states {
		byKey[st.Key] = st
	}
	for key, ln := range sockets {
		if p.listeners[key] != nil {
			ln.Close()
			continue
		}
		l := newListener(key, ln)
		st := byKey[key]
		l.data = st.Data
		for _, id := range st.Members {
			l.members[id] = true
			l.turns[id] = 0
		}
		for id, n := range st.Handed {
			l.handed[id] = n
		}
		l.holding = p.grouped(l) // a daemon before this one made it so
		if l.accepts(p.sched) {
			if err := p.startAccepting(l); err != nil {
				ln.Close()
				return fmt.Errorf("nodecluster: restoring %s: %w", key, err)
			}
		}
		p.listeners[key] = l
	}
	return nil
}

// Leaving marks worker id, taken back after a daemon restart, as leaving:
// its disconnect was sent before, it gets no new connection.
func (p *Primary) Leaving(id int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.workers[id]; w != nil {
		w.leaving = true
		p.takeOut(w)
	}
}

// Quiesce stops accepting on every RR listener, then waits until the
// connections tend holds have reached their workers, or ctx ends. A daemon
// hands over to its successor this way: the sockets stay open (tend's
// keeper holds them), new connections wait in their backlog, and none is
// lost in between. Workers go on serving what they have.
func (p *Primary) Quiesce(ctx context.Context) {
	p.mu.Lock()
	for _, l := range p.listeners {
		select {
		case <-l.quiet:
		default:
			close(l.quiet)
			if l.acc != nil {
				l.acc.Close() // ends an accept in progress; ln stays
			}
		}
	}
	p.mu.Unlock()
	// A loop may have accepted a connection just now: it queues it
	// before it sees quiet, and the wait below sees it handed over.
	p.accepting.Wait()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		busy := len(p.pending) > 0
		for _, l := range p.listeners {
			busy = busy || len(l.queue) > 0
		}
		p.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
