package nodecluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tendhq/tend/internal/logger"
	"github.com/tendhq/tend/internal/nodeipc"
)

// Scheduling policies for Options.Sched.
const (
	SchedRR     = "rr"     // tend accepts and hands out each connection
	SchedShared = "shared" // workers accept on the shared socket themselves
	SchedSticky = "sticky" // tend accepts and hands each connection to its client address's slot

	SchedReusePort = "reuseport" // each worker gets a socket of its own, in one SO_REUSEPORT group
)

// Options configure a Primary. The zero value is valid.
type Options struct {
	// Sched is SchedRR (the default when empty), SchedShared, SchedSticky
	// or SchedReusePort; "none", Node's name for shared, is accepted too.
	Sched string
	// Listen binds and listens for a worker's server. network is "tcp"
	// (address "" = all addresses, dual stack, like Node), "tcp4", "tcp6",
	// NetUnix (address is a path, as the worker gave it) or NetUDP4 and
	// NetUDP6 (a dgram socket's bind); port may be 0. The Primary owns the
	// returned Socket. reuseAddr is dgram's reuseAddr (TCP listeners
	// always reuse the address). An error that wraps a syscall.Errno (as
	// net's do) reaches the worker as that errno, any other as EINVAL.
	// With SchedReusePort, a TCP socket must be bound with SO_REUSEPORT
	// (and the Primary calls Listen once per worker on the same address).
	// Default: DefaultListen, or ListenGroup with SchedReusePort.
	Listen func(network, address string, port int, reuseAddr bool) (Socket, error)
	// Logf receives diagnostics (bad messages from workers, accept errors).
	// Default: discard.
	Logf logger.Logf
	// Bound, if set, is told of each new listening socket (tend's keeper
	// keeps a copy of it), under Node's key for it, and with a nil ln of
	// each one closed because every worker closed its server.
	Bound func(key string, ln Socket)
	// KeepPort is a TCP port the manager holds for the app (tend's
	// --port): its sockets stay open when every worker has closed its
	// server, as while workers restart. Other sockets close then, and
	// their port refuses, as under Node.
	KeepPort int
	// Unprivileged says the workers run as a user with fewer rights than
	// the Primary's (tend as root, the app as --user): a worker may then
	// listen only on KeepPort and on TCP and UDP ports from 1024 (or 0,
	// any), and on no unix socket, so that the Primary binds nothing for
	// it that its user could not bind itself, nor creates or removes
	// files in its stead. What else it asks for fails with EACCES, as
	// its own listen() would.
	Unprivileged bool
}

// A Primary is the Node cluster primary for one app: it owns the app's
// listening sockets and the cluster side of each worker's channel. Its
// methods are safe for concurrent use.
type Primary struct {
	sched  string
	listen func(network, address string, port int, reuseAddr bool) (Socket, error)
	logf   logger.Logf
	bound  func(key string, ln Socket)
	keep   int
	unpriv bool

	seq atomic.Int64 // Node's sendHelper seq: replies come back as ack

	mu        sync.Mutex
	workers   map[int]*worker
	listeners map[string]*listener
	pending   map[int64]*handoff       // RR newconn awaiting {ack, accepted}
	probes    map[int64]probe          // Dial's newconn awaiting its answer
	binding   map[string]chan struct{} // keys being bound; closed when done
	slots     map[int]int              // sticky: each worker's slot (SetSlot)
	closed    bool

	accepting sync.WaitGroup // the RR accept loops
}

// worker is one worker's cluster state.
type worker struct {
	id      int
	ch      *nodeipc.Channel
	events  chan<- Event
	gone    chan struct{} // closed by RemoveWorker: stop delivering events
	out     bool          // no new connections: drained, leaving or disconnected
	leaving bool          // disconnect under way: queryServer is ignored, as in Node
	left    bool          // the worker disconnected by itself (exitedAfterDisconnect)
}

// handoff is a connection sent to a worker and not yet answered.
type handoff struct {
	l  *listener
	w  int
	fd int // the accepted socket; tend's copy until the worker answers
}

// New returns a Primary. It panics if opt.Sched is not a known policy,
// which is a programming error: configs are validated before this.
func New(opt Options) *Primary {
	p := &Primary{
		sched:     opt.Sched,
		listen:    opt.Listen,
		logf:      opt.Logf.Or(),
		bound:     opt.Bound,
		keep:      opt.KeepPort,
		unpriv:    opt.Unprivileged,
		workers:   map[int]*worker{},
		listeners: map[string]*listener{},
		pending:   map[int64]*handoff{},
		probes:    map[int64]probe{},
		binding:   map[string]chan struct{}{},
		slots:     map[int]int{},
	}
	switch p.sched {
	case "", SchedRR:
		p.sched = SchedRR
	case SchedShared, "none":
		p.sched = SchedShared
	case SchedSticky:
	case SchedReusePort:
		if p.listen == nil {
			p.listen = ListenGroup
		}
	default:
		panic(fmt.Sprintf("nodecluster: unknown scheduling policy %q", opt.Sched))
	}
	if p.listen == nil {
		p.listen = DefaultListen
	}
	return p
}

// AddWorker starts serving the cluster protocol on ch for worker id, whose
// process has been started. The Primary owns ch from now on (RemoveWorker
// closes it). events, if not nil, receives the worker's events; the caller
// must keep reading it until RemoveWorker, or the worker's channel stalls.
func (p *Primary) AddWorker(id int, ch *nodeipc.Channel, events chan<- Event) {
	w := &worker{id: id, ch: ch, events: events, gone: make(chan struct{})}
	p.mu.Lock()
	if old := p.workers[id]; old != nil {
		p.mu.Unlock()
		p.removeWorker(id) // a reused id means the old process is gone
		p.mu.Lock()
	}
	p.workers[id] = w
	// A worker taken back after a daemon restart (Restore) gets the
	// connections of the servers it had open.
	for _, l := range p.listeners {
		if l.members[id] {
			p.makeFree(l, w)
			p.dispatch(l)
		}
	}
	p.mu.Unlock()
	go p.serve(w)
}

// Disconnect asks worker id to stop gracefully ({act:"disconnect"}): it
// closes its servers and its channel, and exits if nothing else keeps it
// alive. It gets no new connections from now on.
func (p *Primary) Disconnect(id int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.workers[id]
	if w == nil {
		return fmt.Errorf("nodecluster: no worker %d", id)
	}
	w.leaving = true
	p.takeOut(w)
	return w.ch.Send(clusterMsg{Cmd: "NODE_CLUSTER", Act: "disconnect", Seq: p.seq.Add(1)})
}

// Drain takes worker id out of the round-robin rotation without
// disconnecting it; connections it holds are unaffected. In shared and
// reuseport modes the kernel, not tend, picks the worker, so Drain has no
// effect there.
func (p *Primary) Drain(id int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.workers[id]; w != nil {
		p.takeOut(w)
	}
}

// Undrain puts worker id back in the round-robin rotation after Drain
// (a replacement that was to take its place did not come).
func (p *Primary) Undrain(id int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.workers[id]
	if w == nil || w.leaving || !w.out {
		return
	}
	w.out = false
	for _, l := range p.listeners {
		if l.members[id] {
			p.makeFree(l, w)
			p.dispatch(l)
		}
	}
}

// Left reports whether worker id disconnected by itself
// (exitedAfterDisconnect), as known before its exit: ask it before
// RemoveWorker.
func (p *Primary) Left(id int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.workers[id]
	return w != nil && w.left
}

// RemoveWorker forgets worker id, whose process is gone, and closes its
// channel. Connections handed to it but not yet accepted go to other
// workers (or wait for one), instead of hanging as they do under Node.
func (p *Primary) RemoveWorker(id int) {
	p.mu.Lock()
	delete(p.slots, id)
	p.mu.Unlock()
	p.removeWorker(id)
}

// removeWorker is RemoveWorker but for the worker's slot, which a worker
// added again under the same id keeps.
func (p *Primary) removeWorker(id int) {
	p.mu.Lock()
	w := p.workers[id]
	if w == nil {
		// Never added (its process ended while no daemon ran): it is
		// no member of anything any more.
		for _, l := range p.listeners {
			l.leave(id)
		}
		p.mu.Unlock()
		return
	}
	delete(p.workers, id)
	p.retire(w)
	close(w.gone)
	p.mu.Unlock()
	w.ch.Close()
}

// Send sends a user message to worker id (process.on('message') in the app).
func (p *Primary) Send(id int, msg json.RawMessage) error {
	p.mu.Lock()
	w := p.workers[id]
	p.mu.Unlock()
	if w == nil {
		return fmt.Errorf("nodecluster: no worker %d", id)
	}
	return w.ch.Send(msg)
}

// ListenerInfo describes one listening socket, for `tend ls`/`describe`.
type ListenerInfo struct {
	Key     string         // Node's key: address:port:addressType:fd:index
	Address string         // bound address
	Port    int            // bound port
	Sched   string         // SchedRR, SchedShared, SchedSticky or SchedReusePort
	Workers []int          // workers with this server open, sorted
	Handed  map[int]uint64 // RR: connections handed to each worker (refused ones excluded)
	Queued  int            // RR: accepted by tend, waiting for a free worker
	Refused uint64         // RR: hand-offs a worker refused (at maxConnections, or closing)
}

// Listeners describes every listening socket, sorted by key.
func (p *Primary) Listeners() []ListenerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ListenerInfo, 0, len(p.listeners))
	for _, l := range p.listeners {
		li := ListenerInfo{Key: l.key, Address: l.address, Port: l.port, Sched: p.sched,
			Handed: map[int]uint64{}, Queued: len(l.queue), Refused: l.refused}
		for id := range l.members {
			li.Workers = append(li.Workers, id)
		}
		sort.Ints(li.Workers)
		for id, n := range l.handed {
			li.Handed[id] = n
		}
		out = append(out, li)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Close closes every listening socket and the connections waiting in tend
// for a worker. Workers are left alone; later queryServer requests fail.
func (p *Primary) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for key, l := range p.listeners {
		l.close()
		delete(p.listeners, key)
	}
}

// takeOut removes w from every rotation. Caller holds p.mu.
func (p *Primary) takeOut(w *worker) {
	w.out = true
	for _, l := range p.listeners {
		l.free = slices.DeleteFunc(l.free, func(id int) bool { return id == w.id })
	}
}

// retire takes w out for good: its channel is gone, so connections it has
// not answered for go back to the front of their queues. Caller holds p.mu.
func (p *Primary) retire(w *worker) {
	p.takeOut(w)
	for _, pr := range p.probes {
		if pr.w == w.id {
			select {
			case pr.answer <- false: // it is gone: Dial fails
			default:
			}
		}
	}
	for seq, h := range p.pending {
		if h.w == w.id {
			delete(p.pending, seq)
			h.l.handed[h.w]--
			h.l.requeue(h.fd)
		}
	}
	for _, l := range p.listeners {
		l.leave(w.id)
		p.dispatch(l)
	}
}

// emit delivers ev unless the worker has been removed meanwhile.
func (p *Primary) emit(w *worker, ev Event) {
	if w.events == nil {
		return
	}
	ev.Worker = w.id
	select {
	case w.events <- ev:
	case <-w.gone:
	}
}

// serve reads w's channel until it closes.
func (p *Primary) serve(w *worker) {
	for {
		m, err := w.ch.Recv()
		if errors.Is(err, nodeipc.ErrBadMessage) {
			p.logf("worker %d: %v", w.id, err)
			continue
		}
		if err != nil {
			p.mu.Lock()
			p.retire(w)
			p.mu.Unlock()
			if err == io.EOF || errors.Is(err, nodeipc.ErrClosed) {
				err = nil
			}
			p.emit(w, Event{Kind: Disconnected, Err: err})
			return
		}
		p.handle(w, m)
	}
}

// clusterMsg is a NODE_CLUSTER message, in either direction. Fields with
// several possible JSON types stay raw; they are only echoed or keyed on.
type clusterMsg struct {
	Cmd      string          `json:"cmd"`
	Act      string          `json:"act,omitempty"`
	Key      string          `json:"key,omitempty"`
	Ack      json.RawMessage `json:"ack,omitempty"`
	Accepted bool            `json:"accepted,omitempty"`
	Seq      int64           `json:"seq"`

	// queryServer / listening
	Index       json.RawMessage `json:"index,omitempty"`
	Address     json.RawMessage `json:"address,omitempty"`
	Port        json.RawMessage `json:"port,omitempty"`
	AddressType json.RawMessage `json:"addressType,omitempty"`
	FD          json.RawMessage `json:"fd,omitempty"`
	Flags       json.RawMessage `json:"flags,omitempty"` // UV_TCP_IPV6ONLY for ipv6Only
	Data        json.RawMessage `json:"data,omitempty"`
}

// handle acts on one message from w. Nothing a worker sends may take the
// daemon down, hence the recover as a last line of defence.
func (p *Primary) handle(w *worker, m nodeipc.Message) {
	defer func() {
		if r := recover(); r != nil {
			p.logf("worker %d: message %.200s: panic: %v", w.id, m.Raw, r)
		}
	}()
	if m.FD != nil {
		// Neither the cluster protocol nor tend uses handles sent to the
		// primary; keeping them would leak one fd per message.
		m.FD.Close()
	}
	// The answer to a newconn, one per connection, first: it needs no
	// other look at the message.
	if ack, accepted, ok := newconnReply(m.Raw); ok {
		p.answered(w, ack, accepted)
		return
	}
	if !m.Internal() {
		if m.Ready() {
			p.emit(w, Event{Kind: Ready})
		} else {
			p.emit(w, Event{Kind: Message, Msg: m.Raw})
		}
		return
	}
	switch m.Cmd() {
	case "NODE_CLUSTER":
	case "NODE_SOCKET_GET_COUNT", "NODE_SOCKET_NOTIFY_CLOSE":
		p.socketList(w, m)
		return
	default:
		return // nothing for a primary to do
	}
	var q struct {
		clusterMsg
		Seq json.RawMessage `json:"seq"` // echoed verbatim as our ack
	}
	if err := json.Unmarshal(m.Raw, &q); err != nil {
		p.logf("worker %d: bad cluster message %.200s: %v", w.id, m.Raw, err)
		return
	}
	if q.Act == "" && len(q.Ack) > 0 {
		var ack int64
		if err := json.Unmarshal(q.Ack, &ack); err == nil {
			p.answered(w, ack, q.Accepted)
		}
		return
	}
	switch q.Act {
	case "online":
		p.emit(w, Event{Kind: Online})
	case "queryServer":
		p.queryServer(w, &q.clusterMsg, q.Seq)
	case "listening":
		port, _ := jsInt(q.Port)
		addr, _ := jsStr(q.Address)
		p.emit(w, Event{Kind: Listening, Port: port, Address: addr})
	case "close":
		p.mu.Lock()
		l := p.listeners[q.Key]
		if l == nil {
			p.mu.Unlock()
			break
		}
		l.leave(w.id)
		// The socket stays bound while workers leave or restart: the next
		// instance will want it. But once every worker closed its server
		// while in service, nobody listens: the port closes and refuses,
		// as under Node.
		closable := len(l.members) == 0 && !w.leaving && !w.out && !p.kept(l)
		p.mu.Unlock()
		if closable {
			p.closeIdle(func(k string, l *listener) bool { return k == q.Key })
		}
	case "exitedAfterDisconnect":
		// The worker waits for this ack before it disconnects.
		// Left says so from now on, before the ack lets the worker exit.
		p.mu.Lock()
		w.leaving, w.left = true, true
		p.takeOut(w)
		p.mu.Unlock()
		p.emit(w, Event{Kind: Leaving})
		w.ch.Send(clusterMsg{Cmd: "NODE_CLUSTER", Ack: ackOf(q.Seq), Seq: p.seq.Add(1)})
	default:
		p.logf("worker %d: ignoring cluster act %q", w.id, q.Act)
	}
}

// socketList answers a worker that sent a socket to the primary
// (process.send(msg, socket)) and now asks, for its server's
// getConnections() or close(), how many of those sockets are still open:
// none, since tend closes every handle it receives at once. Unanswered,
// getConnections would never call back and close never complete.
func (p *Primary) socketList(w *worker, m nodeipc.Message) {
	var q struct {
		Key json.RawMessage `json:"key"`
	}
	if json.Unmarshal(m.Raw, &q) != nil {
		return
	}
	if m.Cmd() == "NODE_SOCKET_GET_COUNT" {
		w.ch.Send(map[string]any{"cmd": "NODE_SOCKET_COUNT", "key": q.Key, "count": 0})
		return
	}
	w.ch.Send(map[string]any{"cmd": "NODE_SOCKET_ALL_CLOSED", "key": q.Key})
}

// newconnReply reads a worker's answer to a newconn as Node writes it,
// {"cmd":"NODE_CLUSTER","ack":N,"accepted":B,"seq":M}, without a full
// decode: there is one per connection. ok is false for anything else,
// which then takes the general path.
func newconnReply(raw []byte) (ack int64, accepted, ok bool) {
	rest, ok := bytes.CutPrefix(raw, []byte(`{"cmd":"NODE_CLUSTER","ack":`))
	if !ok {
		return 0, false, false
	}
	digits := func() (int64, bool) {
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		v, err := strconv.ParseInt(string(rest[:n]), 10, 64)
		rest = rest[n:]
		return v, err == nil
	}
	ack, ok1 := digits()
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"accepted":`)); !ok1 || !ok {
		return 0, false, false
	}
	if r, t := bytes.CutPrefix(rest, []byte("true")); t {
		rest, accepted = r, true
	} else if rest, ok = bytes.CutPrefix(rest, []byte("false")); !ok {
		return 0, false, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"seq":`)); !ok {
		return 0, false, false
	}
	if _, ok = digits(); !ok || string(rest) != "}" {
		return 0, false, false
	}
	return ack, accepted, true
}

// ackOf returns seq for use as an "ack" field; a missing seq becomes null,
// which keeps "ack" present and still matches no callback in the worker.
func ackOf(seq json.RawMessage) json.RawMessage {
	if len(seq) == 0 {
		return json.RawMessage("null")
	}
	return seq
}
