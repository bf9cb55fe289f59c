package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tendhq/tend/internal/activation"
	"github.com/tendhq/tend/internal/nodeipc"
	"github.com/tendhq/tend/internal/notify"
)

// Errors of the worker side.
var (
	// ErrNoChannel is returned by Send in a process that has no channel to
	// a primary or manager (a primary itself, or a socket-activated worker
	// started without one).
	ErrNoChannel = errors.New("cluster: no channel to a primary")
	// ErrDisconnected is returned by Send and Listen once the worker has
	// disconnected from its primary, or lost it.
	ErrDisconnected = errors.New("cluster: disconnected from the primary")
)

// childKind is how this process came to be a worker, or not.
type childKind int

const (
	kindPrimary    childKind = iota // nobody's worker: Listen binds itself
	kindNode                        // NODE_UNIQUE_ID: a cluster primary (this package's, tend's or Node's) serves Listen
	kindActivation                  // LISTEN_FDS: tend's socket mode or systemd passed the socket
	kindManaged                     // NODE_CHANNEL_FD only: a manager's channel, Listen binds itself
)

// A Child is the cluster seen from inside a worker (Node's
// internal/cluster/child): its identity, Listen, and its channel to the
// primary. Self() returns the process's own; clustertest makes others.
// Its methods are safe for concurrent use.
type Child struct {
	id     int
	kind   childKind
	ch     *nodeipc.Channel // nil without a channel
	orphan func()           // runs when a kindNode primary goes away unasked

	seq  atomic.Int64
	msgs *queue[json.RawMessage]

	mu         sync.Mutex
	pending    map[int64]func(reply, *os.File) // by seq, run by the read loop
	rr         map[string]*rrListener          // round-robin listeners by key
	shared     []*sharedListener
	packets    []*sharedPacket
	indexes    map[string]*indexSet // per address, Node's server indexes
	keyIndex   map[string]keyIndex  // per server key, its index, freed on close
	inherited  []net.Listener       // socket activation, not yet returned by Listen
	activated  bool                 // activation.Listeners was called
	lost       bool                 // the channel is gone
	disc       chan struct{}        // closed when a disconnect starts
	discOnce   sync.Once
	discDone   chan struct{} // closed when the disconnect is complete
	serving    sync.WaitGroup
	notifyOnce sync.Once
}

// reply is a NODE_CLUSTER message to this worker.
type reply struct {
	Cmd      string          `json:"cmd"`
	Act      string          `json:"act"`
	Key      string          `json:"key"`
	Ack      json.RawMessage `json:"ack"`
	Seq      json.RawMessage `json:"seq"`
	Errno    *int            `json:"errno"`
	Sockname *struct {
		Address string `json:"address"`
		Port    int    `json:"port"`
	} `json:"sockname"`
}

func newChild(id int, kind childKind, ch *nodeipc.Channel, orphan func()) *Child {
	c := &Child{id: id, kind: kind, ch: ch, orphan: orphan,
		msgs: newQueue[json.RawMessage](), pending: map[int64]func(reply, *os.File){},
		rr: map[string]*rrListener{}, indexes: map[string]*indexSet{}, keyIndex: map[string]keyIndex{},
		disc: make(chan struct{}), discDone: make(chan struct{})}
	if ch == nil {
		c.msgs.close()
		return c
	}
	go c.readLoop()
	if kind == kindNode {
		c.send(map[string]any{"act": "online"}, nil)
	}
	return c
}

// ID returns the worker's id: NODE_UNIQUE_ID under a cluster primary,
// TEND_WORKER_ID under tend (from 1, one per process), 0 in a primary.
func (c *Child) ID() int { return c.id }

// IsWorker reports whether c is a worker (false only for a primary's own
// Child, whose Listen binds for itself as Node's primary does).
func (c *Child) IsWorker() bool { return c.kind != kindPrimary }

// send sends a NODE_CLUSTER message with a fresh seq; onReply, if not
// nil, runs in the read loop with the primary's answer.
func (c *Child) send(m map[string]any, onReply func(reply, *os.File)) error {
	seq := c.seq.Add(1)
	m["cmd"], m["seq"] = "NODE_CLUSTER", seq
	c.mu.Lock()
	if c.lost {
		c.mu.Unlock()
		return ErrDisconnected
	}
	if onReply != nil {
		c.pending[seq] = onReply
	}
	c.mu.Unlock()
	if err := c.ch.Send(m); err != nil {
		c.mu.Lock()
		delete(c.pending, seq)
		c.mu.Unlock()
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

func (c *Child) readLoop() {
	for {
		m, err := c.ch.Recv()
		if errors.Is(err, nodeipc.ErrBadMessage) {
			continue
		}
		if err != nil {
			c.channelLost()
			return
		}
		c.handle(m)
	}
}

// channelLost fails what waits for the primary. A worker whose primary
// went away without asking it to disconnect exits, as Node's workers do:
// nobody would hand it connections any more, and an orphan must not keep
// a port.
func (c *Child) channelLost() {
	c.mu.Lock()
	c.lost = true
	pending := c.pending
	c.pending = map[int64]func(reply, *os.File){}
	rr := c.rr
	c.mu.Unlock()
	for _, fn := range pending {
		fn(reply{}, nil)
	}
	for _, l := range rr {
		l.Close()
	}
	c.msgs.close()
	select {
	case <-c.disc:
	default:
		if c.kind == kindNode {
			c.orphan()
		}
	}
}

func (c *Child) handle(m nodeipc.Message) {
	if !m.Internal() {
		if m.FD != nil {
			m.FD.Close() // user messages with handles are not part of this API
		}
		c.msgs.push(m.Raw)
		return
	}
	var r reply
	if m.Cmd() != "NODE_CLUSTER" || json.Unmarshal(m.Raw, &r) != nil {
		if m.FD != nil {
			m.FD.Close()
		}
		return
	}
	if r.Act == "" && len(r.Ack) > 0 {
		var ack int64
		json.Unmarshal(r.Ack, &ack)
		c.mu.Lock()
		fn := c.pending[ack]
		delete(c.pending, ack)
		c.mu.Unlock()
		if fn != nil {
			fn(r, m.FD)
		} else if m.FD != nil {
			m.FD.Close()
		}
		return
	}
	switch r.Act {
	case "newconn":
		c.newconn(r, m.FD)
	case "disconnect":
		go c.disconnect(true)
	default:
		if m.FD != nil {
			m.FD.Close()
		}
	}
}

// newconn takes a connection handed over by a round-robin primary and
// answers at once, as Node's worker does: the primary sends this worker
// nothing more until it hears back.
func (c *Child) newconn(r reply, f *os.File) {
	var seq json.RawMessage = r.Seq
	if len(seq) == 0 {
		seq = json.RawMessage("null")
	}
	ack := func(accepted bool) { c.send(map[string]any{"ack": seq, "accepted": accepted}, nil) }
	if f != nil {
		c.mu.Lock()
		l := c.rr[r.Key]
		c.mu.Unlock()
		conn, err := net.FileConn(f)
		f.Close()
		if l != nil && err == nil {
			if !l.offer(conn, ack) {
				conn.Close()
			}
			return
		}
		if err == nil {
			conn.Close()
		}
	}
	ack(false)
}

// Listen returns a listener on address that the worker shares with the
// other workers, as net.Listen would return one of its own:
//
//   - under a cluster primary (this package's, tend's cluster mode or
//     Node's), the primary binds address once; in round robin it accepts
//     and hands over each connection, in shared mode it sends the socket;
//   - under socket activation (tend's socket mode, systemd), it returns
//     the inherited socket (the manager chose the port: with one socket
//     passed, that one is returned whatever address says);
//   - in a primary, or under a manager that passed only a channel, it
//     binds address itself.
//
// network is "tcp", "tcp4", "tcp6" or "unix" (address is then a path;
// UDP is ListenPacket); address is "host:port" as for
// net.Listen. After it succeeds, the primary hears "listening" and a
// manager that set NOTIFY_SOCKET gets READY=1 (sd_notify). Errors wrap
// the errno when there is one (errors.Is(err, syscall.EADDRINUSE)).
func (c *Child) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	var err error
	switch {
	case strings.HasPrefix(network, "udp"):
		return nil, &net.OpError{Op: "listen", Net: network, Addr: addrString(address),
			Err: fmt.Errorf("UDP has no listener: use ListenPacket: %w", syscall.EAFNOSUPPORT)}
	case c.kind == kindNode:
		ln, err = c.listenPrimary(network, address)
	case c.kind == kindActivation:
		ln, err = c.listenInherited(network, address)
	default:
		ln, err = net.Listen(network, address)
	}
	if err != nil {
		return nil, err
	}
	if c.kind != kindPrimary {
		c.notifyOnce.Do(func() {
			if err := notify.Notify("READY=1"); err != nil {
				fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
			}
		})
	}
	return ln, nil
}

type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

// sharedFrom wraps a listening socket sent by a shared-policy primary.
// The descriptor arrived already in non-blocking mode, so os.NewFile
// (inside nodeipc) recorded it as such and the Fd() call inside
// net.FileListener leaves the mode alone: the other workers, which share
// that open file description, keep a non-blocking socket.
func (c *Child) sharedFrom(key string, f *os.File) (net.Listener, error) {
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	s := &sharedListener{Listener: ln, c: c, key: key}
	c.mu.Lock()
	c.shared = append(c.shared, s)
	c.mu.Unlock()
	return s, nil
}

// listenInherited returns a socket passed by socket activation.
func (c *Child) listenInherited(network, address string) (net.Listener, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.activated {
		c.activated = true
		lns, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("cluster: listen %s %s: %w", network, address, err)
		}
		c.inherited = lns
	}
	if network == "unix" {
		// tend passes TCP sockets: a path is the program's own to bind,
		// unless the manager (systemd) passed that very socket.
		for i, ln := range c.inherited {
			if a, ok := ln.Addr().(*net.UnixAddr); ok && a.Name == address {
				c.inherited = append(c.inherited[:i], c.inherited[i+1:]...)
				return ln, nil
			}
		}
		return net.Listen(network, address)
	}
	if len(c.inherited) == 0 {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: addrString(address),
			Err: errors.New("every socket passed by the manager (LISTEN_FDS) is in use already")}
	}
	pick := 0
	if _, port, err := net.SplitHostPort(address); err == nil {
		for i, ln := range c.inherited {
			if a, ok := ln.Addr().(*net.TCPAddr); ok && strconv.Itoa(a.Port) == port {
				pick = i
				break
			}
		}
	}
	ln := c.inherited[pick]
	c.inherited = append(c.inherited[:pick], c.inherited[pick+1:]...)
	return ln, nil
}

// Send sends v, encoded as JSON, to the primary (an Event of kind Message
// there) or to the manager that started this process. Values that
// json.Marshal rejects return its error and send nothing.
func (c *Child) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cluster: message to the primary: %w", err)
	}
	if c.ch == nil {
		return ErrNoChannel
	}
	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	if lost {
		return ErrDisconnected
	}
	if err := c.ch.Send(json.RawMessage(b)); err != nil {
		return fmt.Errorf("cluster: message to the primary: %w", err)
	}
	return nil
}

// Messages returns the channel on which messages from the primary arrive,
// as JSON, in order. It is closed when the channel to the primary closes,
// and at once in a process without one.
func (c *Child) Messages() <-chan json.RawMessage { return c.msgs.out }

// Disconnecting returns a channel closed when the worker starts to
// disconnect (the primary asked, or Disconnect was called): the moment to
// stop taking work. Serve watches it for you.
func (c *Child) Disconnecting() <-chan struct{} { return c.disc }

// Disconnect leaves the cluster gracefully, as Node's worker.disconnect():
// the worker's listeners stop taking connections, Serve calls finish their
// in-flight requests and return, then the channel closes. The primary sees
// Disconnected and, when the process ends, Exit. Disconnect returns when all
// that is done.
func (c *Child) Disconnect() error {
	c.disconnect(false)
	return nil
}

func (c *Child) disconnect(primaryInitiated bool) {
	started := false
	c.discOnce.Do(func() { close(c.disc); started = true })
	if !started {
		<-c.discDone
		return
	}
	defer close(c.discDone)
	// Listeners under Serve are drained and closed by it; the rest now.
	c.mu.Lock()
	var others []io.Closer
	for _, l := range c.rr {
		if !l.served.Load() {
			others = append(others, l)
		}
	}
	for _, l := range c.shared {
		if !l.served.Load() {
			others = append(others, l)
		}
	}
	for _, pc := range c.packets {
		others = append(others, pc)
	}
	c.mu.Unlock()
	for _, l := range others {
		l.Close()
	}
	c.serving.Wait()
	if c.ch == nil {
		return
	}
	if !primaryInitiated && c.kind == kindNode {
		// The primary must know this exit is planned before the channel
		// closes; Node waits for the same ack.
		acked := make(chan struct{})
		if c.send(map[string]any{"act": "exitedAfterDisconnect"}, func(reply, *os.File) { close(acked) }) == nil {
			select {
			case <-acked:
			case <-time.After(listenTimeout):
			}
		}
	}
	c.ch.Close()
}

// kill closes everything at once, as the death of the process would.
func (c *Child) kill() {
	c.discOnce.Do(func() { close(c.disc); close(c.discDone) })
	if c.ch != nil {
		c.ch.Close()
	}
	c.mu.Lock()
	rr, shared, packets := c.rr, c.shared, c.packets
	c.mu.Unlock()
	for _, l := range rr {
		l.Close()
	}
	for _, l := range shared {
		l.Close()
	}
	for _, pc := range packets {
		pc.Close()
	}
}
