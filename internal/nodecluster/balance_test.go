package nodecluster

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/nodeipc"
	"golang.org/x/sys/unix"
)

// balanceRig is a Primary with one RR listener and workers that are only
// channels (no processes): the test plays the workers' side by hand.
type balanceRig struct {
	t     *testing.T
	p     *Primary
	l     *listener
	peers map[int]*os.File // each worker's end of its channel
}

func newBalanceRig(t *testing.T, ids ...int) *balanceRig {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// No Logf: closing the channels at the end reports the connections still
	// in flight from the channels' own goroutines, after the test.
	r := &balanceRig{t: t, p: New(Options{}), l: newListener("k", ln), peers: map[int]*os.File{}}
	r.p.listeners["k"] = r.l
	t.Cleanup(r.p.Close)
	for _, id := range ids {
		r.add(id)
	}
	return r
}

// add makes worker id a member of the listener, free.
func (r *balanceRig) add(id int) {
	ch, end, err := nodeipc.NewPair()
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { ch.Close(); end.Close() })
	r.peers[id] = end
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	w := &worker{id: id, ch: ch}
	r.p.workers[id] = w
	r.p.join(r.l, id)
	r.p.makeFree(r.l, w)
}

// conn queues one connection (one end of a socketpair) and dispatches.
func (r *balanceRig) conn() {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	unix.Close(fds[1])
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	r.l.held <- struct{}{}
	r.l.queue = append(r.l.queue, fds[0])
	r.p.dispatch(r.l)
}

// inFlight returns the seq of worker id's unanswered connection, or -1.
func (r *balanceRig) inFlight(id int) int64 {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	for seq, h := range r.p.pending {
		if h.w == id {
			return seq
		}
	}
	return -1
}

// answer has worker id accept its connection in flight.
func (r *balanceRig) answer(id int) {
	r.t.Helper()
	seq := r.inFlight(id)
	if seq < 0 {
		r.t.Fatalf("worker %d has no connection to answer", id)
	}
	r.p.answered(r.p.workers[id], seq, true)
}

func (r *balanceRig) queued() int {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return len(r.l.queue)
}

// Under load a connection goes to a free worker at once instead of waiting
// for one that is behind but still working on its previous connection; it
// waits only when that worker's answer has already reached tend.
func TestBalanceWaitsOnlyForAnswersOnTheWay(t *testing.T) {
	r := newBalanceRig(t, 1, 2)
	r.conn() // worker 1 (tie, lowest id)
	r.conn() // worker 2: fewer turns
	if r.inFlight(1) < 0 || r.inFlight(2) < 0 {
		t.Fatal("the first two connections did not go one to each worker")
	}
	r.answer(2)
	r.conn() // 1 and 2 have had one each; 1 is busy
	r.answer(2)
	// Worker 2 is now ahead of worker 1, which is busy and has not
	// answered: the next connection must not wait for it.
	r.conn()
	if r.queued() != 0 || r.inFlight(2) < 0 {
		t.Fatalf("the connection waited for busy worker 1 (queued %d)", r.queued())
	}
	r.answer(2)
	// Worker 1's answer has reached tend (bytes in its channel, not yet
	// read): now the connection waits for it ...
	if _, err := r.peers[1].Write([]byte(`{"cmd":"NODE_CLUSTER"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	r.conn()
	if r.queued() != 1 {
		t.Fatalf("with worker 1's answer on the way, %d connections queued, want 1", r.queued())
	}
	// ... and goes to it once the answer is processed.
	first := r.inFlight(1)
	r.answer(1)
	if r.queued() != 0 || r.inFlight(1) < 0 || r.inFlight(1) == first {
		t.Fatal("the waiting connection did not go to worker 1")
	}
}

// A busy worker that is behind, with its answer seemingly on the way, is
// waited for at most turnGrace; then the connection goes to a free worker,
// and that worker is not waited for again until it answers.
func TestBalanceGraceExpires(t *testing.T) {
	r := newBalanceRig(t, 1, 2)
	r.conn() // worker 1 (tie, lowest id)
	r.conn() // worker 2: fewer turns; both busy now, level
	r.answer(1)
	r.peers[2].Write([]byte("\n")) // looks like worker 2's answer, never completes
	r.conn()                       // worker 1: worker 2 is not behind
	r.answer(1)
	r.conn() // worker 1 is ahead, worker 2 behind with its answer "in": wait
	if r.queued() != 1 {
		t.Fatalf("%d connections queued, want 1 waiting for worker 2", r.queued())
	}
	// After turnGrace it goes to worker 1. The grace timer is internal,
	// with no event to await, so poll the Primary's state until a deadline.
	deadline := time.Now().Add(testTimeout)
	for r.inFlight(1) < 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the connection still waits for worker 2 (queued %d)", r.queued())
		}
		time.Sleep(time.Millisecond)
	}
	r.answer(1)
	r.conn() // worker 2 is skipped until it answers: no second wait
	if r.queued() != 0 || r.inFlight(1) < 0 {
		t.Fatalf("the connection waited for worker 2 again (queued %d)", r.queued())
	}
}

// A worker that joins late starts level with the worker that has had the
// fewest connections, so it does not get every connection until it has
// caught up with workers that served for hours.
func TestBalanceJoinsLevel(t *testing.T) {
	r := newBalanceRig(t, 1, 2)
	for range 5 {
		r.conn()
		r.conn()
		r.answer(1)
		r.answer(2)
	}
	r.p.mu.Lock()
	r.l.turns[2] += 3 // worker 2 has had more
	r.p.mu.Unlock()
	r.add(3)
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	if r.l.turns[3] != r.l.turns[1] || r.l.turns[1] >= r.l.turns[2] {
		t.Fatalf("turns after worker 3 joined: %v, want 3 level with 1", r.l.turns)
	}
}

// A worker that was busy while others took its turns does not get a run of
// connections afterwards to catch up: it forfeited those turns.
func TestBalanceNoCatchUpRun(t *testing.T) {
	r := newBalanceRig(t, 1, 2)
	r.conn() // worker 1, which stays busy
	for range 5 {
		r.conn() // worker 2, every time
		if r.inFlight(2) < 0 {
			t.Fatal("a connection waited for busy worker 1")
		}
		r.answer(2)
	}
	r.answer(1)
	var got []int
	for range 4 {
		r.conn()
		id := 1
		if r.inFlight(1) < 0 {
			id = 2
		}
		got = append(got, id)
		r.answer(id)
	}
	if got[0] == got[1] || got[1] == got[2] || got[2] == got[3] {
		t.Fatalf("after the busy spell connections went to %v, want alternation", got)
	}
}
