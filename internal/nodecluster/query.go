package nodecluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// sockname is the RR reply's stand-in for getsockname(): the worker's fake
// handle reports it as server.address().
type sockname struct {
	Address string `json:"address"`
	Family  string `json:"family"`
	Port    int    `json:"port"`
}

// queryReply answers queryServer. errno is null for RR success and 0 for
// shared success, as Node sends them; data is always present because TLS
// servers read data.ticketKeys from it even on errors.
type queryReply struct {
	Cmd      string          `json:"cmd"`
	Errno    *int            `json:"errno"`
	Key      string          `json:"key"`
	Ack      json.RawMessage `json:"ack"`
	Data     json.RawMessage `json:"data"`
	Sockname *sockname       `json:"sockname,omitempty"`
	Seq      int64           `json:"seq"`
}

// serverKey builds Node's key, `${address}:${port}:${addressType}:${fd}:${index}`
// (lib/internal/cluster/primary.js), so keys read the same as under Node.
func serverKey(q *clusterMsg) string {
	return jsString(q.Address) + ":" + jsString(q.Port) + ":" + jsString(q.AddressType) + ":" +
		jsString(q.FD) + ":" + jsString(q.Index)
}

// jsString formats a JSON value the way a JavaScript template literal does.
func jsString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "undefined"
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return string(raw)
}

// jsStr returns a string value; null, absent and "" give "", false.
func jsStr(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil || s == "" {
		return "", false
	}
	return s, true
}

// jsInt returns an integral number value.
func jsInt(raw json.RawMessage) (int, bool) {
	var f float64
	if json.Unmarshal(raw, &f) != nil || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

func errnoOf(err error) int {
	var en syscall.Errno
	if errors.As(err, &en) {
		return -int(en) // libuv errors are negated errno values
	}
	return -int(syscall.EINVAL)
}

// queryServer serves a worker's listen(): find or bind the socket for the
// key, then answer as RR or shared.
func (p *Primary) queryServer(w *worker, q *clusterMsg, seq json.RawMessage) {
	key := serverKey(q)
	port, portOK := jsInt(q.Port)
	address, _ := jsStr(q.Address)
	fail := func(err error) {
		errno := errnoOf(err)
		w.ch.Send(queryReply{Cmd: "NODE_CLUSTER", Errno: &errno, Key: key, Ack: ackOf(seq),
			Data: orNull(q.Data), Seq: p.seq.Add(1)})
		p.emit(w, Event{Kind: Error, Port: port, Address: address, Err: err})
	}

	var l *listener
	var own Socket // reuseport: the worker's socket of the group
	for {
		var err error
		l, err = p.listenerFor(w, q, key, address, port, portOK)
		if err != nil {
			fail(err)
			return
		}
		if l == nil {
			return // Node ignores queryServer from a disconnecting worker too
		}
		if p.grouped(l) {
			if own, err = p.listen(groupNetwork(l), l.address, l.port, false); err != nil {
				fail(err)
				return
			}
		}
		p.mu.Lock()
		if p.listeners[key] == l {
			break // still open, and p.mu held from here on
		}
		// Every other worker closed it meanwhile: bind again.
		p.mu.Unlock()
		if own != nil {
			own.Close()
		}
	}
	defer p.mu.Unlock()
	if isNull(l.data) {
		l.data = q.Data // the first worker's TLS ticket keys, shared by all
	}
	p.join(l, w.id)
	r := queryReply{Cmd: "NODE_CLUSTER", Key: key, Ack: ackOf(seq), Data: orNull(l.data), Seq: p.seq.Add(1)}
	if !l.accepts(p.sched) {
		zero := 0
		r.Errno = &zero
		sock := l.ln
		if own != nil {
			// The channel sends a copy: once the worker's is gone, the
			// socket closes and leaves the group.
			sock = own
			defer own.Close()
			p.hold(l)
		}
		if err := w.ch.SendHandle(r, sock, l.handleType(), nil); err != nil {
			p.logf("worker %d: sending socket for %s: %v", w.id, key, err)
		}
		return
	}
	if l.path == "" {
		// A unix socket has no sockname: the worker's server knows its path.
		r.Sockname = &sockname{Address: l.address, Family: l.family, Port: l.port}
	}
	if err := w.ch.Send(r); err != nil {
		p.logf("worker %d: answering queryServer for %s: %v", w.id, key, err)
		return
	}
	p.makeFree(l, w) // after the reply: the channel keeps the order
	p.dispatch(l)
}

// listenerFor returns the listener for key, binding it if it is new. Two
// workers usually start together and query the same key at once: the
// second waits for the first one's bind instead of failing with
// EADDRINUSE. It returns nil, nil for a worker that is leaving.
func (p *Primary) listenerFor(w *worker, q *clusterMsg, key, address string, port int, portOK bool) (*listener, error) {
	for {
		p.mu.Lock()
		if w.leaving || p.workers[w.id] != w {
			p.mu.Unlock()
			return nil, nil
		}
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("listen %s: %w", key, syscall.ECANCELED)
		}
		if l := p.listeners[key]; l != nil {
			p.mu.Unlock()
			return l, nil
		}
		if wait := p.binding[key]; wait != nil {
			p.mu.Unlock()
			<-wait
			continue
		}
		done := make(chan struct{})
		p.binding[key] = done
		p.mu.Unlock()

		l, err := p.bind(q, key, address, port, portOK)
		p.mu.Lock()
		delete(p.binding, key)
		close(done)
		if err == nil {
			if p.closed {
				l.close() // and its socket file, and the directory kept for it
				err = fmt.Errorf("listen %s: %w", key, syscall.ECANCELED)
			} else {
				if l.accepts(p.sched) {
					err = p.startAccepting(l)
				}
				if err == nil {
					p.listeners[key] = l
				} else {
					l.close()
					err = fmt.Errorf("listen %s: %w", key, err)
				}
			}
		}
		p.mu.Unlock()
		if err == nil && p.bound != nil {
			p.bound(key, l.ln)
		}
		return l, err
	}
}

// bind creates the socket for a new key. It runs without p.mu: the
// daemon's Listen may be slow (it looks up who holds a port in use).
func (p *Primary) bind(q *clusterMsg, key, address string, port int, portOK bool) (*listener, error) {
	network, err := networkFor(q, address)
	if err == nil && network != NetUnix && (!portOK || port < 0) {
		err = fmt.Errorf("bad port %s: %w", q.Port, syscall.EINVAL)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", key, err)
	}
	where := address
	if network != NetUnix {
		where = net.JoinHostPort(address, strconv.Itoa(port))
	}
	if err := p.permitted(network, port); err != nil {
		return nil, fmt.Errorf("listen %s: %w", where, err)
	}
	flags, _ := jsInt(q.Flags)
	ln, err := p.listen(network, address, port, flags&uvUDPReuseAddr != 0)
	if errors.Is(err, syscall.EADDRINUSE) && port > 0 && port == p.keep && strings.HasPrefix(network, "tcp") && p.releaseKept(port, key) {
		ln, err = p.listen(network, address, port, false)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", where, err)
	}
	l := newListener(key, ln)
	if network != NetUnix && port > 0 && l.port != port {
		// Node's checkBindError would turn this into EADDRINUSE anyway;
		// saying so here gives the daemon the reason too.
		ln.Close()
		return nil, fmt.Errorf("listen %s: bound port %d instead: %w", key, l.port, syscall.EADDRINUSE)
	}
	return l, nil
}

// minUnprivilegedPort is the first port any user may bind (Linux's
// default net.ipv4.ip_unprivileged_port_start).
const minUnprivilegedPort = 1024

// permitted refuses, for unprivileged workers (Options.Unprivileged),
// what their user could not bind itself: a port below 1024 other than
// the app's own, and unix sockets, whose files the Primary would create
// and remove as its own user in directories the worker's user controls.
func (p *Primary) permitted(network string, port int) error {
	switch {
	case !p.unpriv:
		return nil
	case network == NetUnix:
		return fmt.Errorf("the app runs as another user, and its workers cannot listen on a unix socket in cluster mode (use a TCP port, or fork mode): %w", syscall.EACCES)
	case port > 0 && port < minUnprivilegedPort && port != p.keep:
		return fmt.Errorf("the app runs as another user, and its workers can listen below port %d only on its --port: %w", minUnprivilegedPort, syscall.EACCES)
	}
	return nil
}

// libuv's flags for listen({ipv6Only}) and dgram's bind({ipv6Only}).
const (
	uvTCPIPv6Only  = 1
	uvUDPIPv6Only  = 1
	uvUDPReuseAddr = 4
)

// releaseKept closes the TCP sockets of the kept port that no worker has
// open any more but key's, once a bind there failed on them: a worker that
// closed its server and listens again with another address binds it anew,
// as under Node. It reports whether it closed any. A listen() for a
// released key meanwhile waits until the keeper's copy is closed too.
func (p *Primary) releaseKept(port int, key string) bool {
	return p.closeIdle(func(k string, l *listener) bool { return k != key && p.kept(l) && l.port == port }) > 0
}

// kept reports whether l is a TCP socket of the port the manager holds
// (KeepPort). Caller holds p.mu.
func (p *Primary) kept(l *listener) bool {
	return p.keep > 0 && l.port == p.keep && !l.udp && l.path == ""
}

// closeIdle closes the listeners that match and that no worker has open,
// and returns how many. A listen() for one of their keys meanwhile waits
// until the manager's copy (Bound) is closed too, then binds anew.
func (p *Primary) closeIdle(match func(key string, l *listener) bool) int {
	p.mu.Lock()
	var idle []string
	done := make(chan struct{})
	for k, l := range p.listeners {
		if len(l.members) == 0 && match(k, l) {
			l.close()
			delete(p.listeners, k)
			p.binding[k] = done
			idle = append(idle, k)
		}
	}
	p.mu.Unlock()
	for _, k := range idle {
		if p.bound != nil {
			p.bound(k, nil)
		}
	}
	p.mu.Lock()
	for _, k := range idle {
		delete(p.binding, k)
	}
	close(done)
	p.mu.Unlock()
	return len(idle)
}

// networkFor picks the network for Listen. A null address means all
// addresses; Node tries "::" then "0.0.0.0", which "tcp" with "" matches.
// "::" is both IPv6 and IPv4 in Node, unless ipv6Only: Go's "tcp" on "::"
// is dual-stack, its "tcp6" is IPv6 only.
func networkFor(q *clusterMsg, address string) (string, error) {
	if fd, ok := jsInt(q.FD); ok && fd >= 0 || !ok && !isNull(q.FD) {
		// A descriptor of the worker's own means nothing to tend (dgram
		// sends -1 for none, as Node's primary reads it).
		return "", fmt.Errorf("listen({fd}) in a worker: %w", syscall.ENOTSUP)
	}
	at := jsString(q.AddressType)
	switch {
	case at == "-1":
		if address == "" {
			return "", fmt.Errorf("a unix socket without a path: %w", syscall.EINVAL)
		}
		return NetUnix, nil
	case at == NetUDP4:
		return at, nil
	case at == NetUDP6:
		// As for TCP: "::" takes IPv4 too unless ipv6Only.
		if flags, _ := jsInt(q.Flags); address == "::" && flags&uvUDPIPv6Only == 0 {
			return "udp", nil
		}
		return at, nil
	case at != "4" && at != "6":
		return "", fmt.Errorf("address type %s: %w", at, syscall.ENOTSUP)
	case address == "":
		return "tcp", nil
	case at == "6" && address == "::":
		if flags, _ := jsInt(q.Flags); flags&uvTCPIPv6Only == 0 {
			return "tcp", nil
		}
		return "tcp6", nil
	case at == "6":
		return "tcp6", nil
	}
	return "tcp4", nil
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}
