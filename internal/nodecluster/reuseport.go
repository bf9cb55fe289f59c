package nodecluster

import (
	"context"
	"net"
	"strconv"

	"github.com/tendhq/tend/internal/sockets"
)

// SO_REUSEPORT scheduling. Every worker that listens on a TCP key gets a
// socket of its own, bound with SO_REUSEPORT to the key's address, where
// shared mode gives them all one socket: the kernel spreads new
// connections over the sockets of the group (by a hash of the client's
// address and port), and each worker accepts only on its own, so no
// worker contends for another's queue. The listener's own socket (l.ln,
// bound first, and kept by tend's keeper) stops listening once the first
// worker's socket is bound (hold): from then on it holds the port and
// takes no connection, and what queued on it moves to the worker's.
//
// When a worker's socket closes, the connections in its accept queue are
// reset unless net.ipv4.tcp_migrate_req is 1, which moves them to another
// socket of the group; tend's daemon sees to it (sockets.EnableMigration).
// The Primary closes its copy of each worker's socket as soon as the
// channel has sent it, so that the socket closes with the worker.
//
// UDP and unix sockets are shared, as in shared mode.

// grouped reports whether each worker gets its own socket for l.
func (p *Primary) grouped(l *listener) bool {
	return p.sched == SchedReusePort && !l.udp && l.path == ""
}

// groupNetwork is the network to bind a worker's socket for l with, as l
// is bound: "::" takes both families.
func groupNetwork(l *listener) string {
	switch {
	case l.family == "IPv4":
		return "tcp4"
	case l.address == "::":
		return "tcp"
	}
	return "tcp6"
}

// ListenGroup is DefaultListen, but a TCP socket is bound with
// SO_REUSEPORT too, so that every socket bound so to the same address by
// the same user joins one group.
func ListenGroup(network, address string, port int, reuseAddr bool) (Socket, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return DefaultListen(network, address, port, reuseAddr)
	}
	lc := net.ListenConfig{Control: sockets.SetReusePort}
	ln, err := lc.Listen(context.Background(), network, net.JoinHostPort(address, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// hold makes l's own socket stop listening, once a worker's socket of the
// group is bound: the connections queued on it move there (with
// net.ipv4.tcp_migrate_req) and no new ones come. Caller holds p.mu.
func (p *Primary) hold(l *listener) {
	if l.holding {
		return
	}
	l.holding = true
	if err := sockets.Unlisten(l.ln); err != nil {
		p.logf("%s: %v", l.key, err)
	}
}
