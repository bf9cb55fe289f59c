package nodecluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// A Socket is what a Primary shares among the workers that listen on one
// key: a listening TCP socket (*net.TCPListener), a listening unix socket
// (*net.UnixListener), or a bound UDP socket (*net.UDPConn).
type Socket interface {
	syscall.Conn
	File() (*os.File, error)
	Close() error
}

// Networks of Options.Listen besides "tcp", "tcp4" and "tcp6".
const (
	NetUnix = "unix" // address is the socket's path
	NetUDP  = "udp"  // on "::": both families
	NetUDP4 = "udp4"
	NetUDP6 = "udp6" // IPv6 only
)

// DefaultListen binds address:port on network ("" means all addresses,
// port 0 an ephemeral port): a TCP socket listens, with SO_REUSEADDR so
// that a port whose previous owner left connections in TIME_WAIT can be
// bound again at once; a unix socket listens on the path address, which
// the Primary removes when it closes the socket (not when the daemon
// exits: tend's keeper keeps the socket meanwhile); a UDP socket is bound,
// with SO_REUSEADDR only if reuseAddr (on UDP it lets another program,
// of any user, bind the port too: only when the app asked, as in Node).
func DefaultListen(network, address string, port int, reuseAddr bool) (Socket, error) {
	switch network {
	case NetUnix:
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: address, Net: "unix"})
		if err != nil {
			return nil, err
		}
		ln.SetUnlinkOnClose(false)
		return ln, nil
	case NetUDP, NetUDP4, NetUDP6:
		var lc net.ListenConfig
		if reuseAddr {
			lc.Control = setReuseAddr
		}
		c, err := lc.ListenPacket(context.Background(), network, net.JoinHostPort(address, strconv.Itoa(port)))
		if err != nil {
			return nil, err
		}
		return c.(*net.UDPConn), nil
	}
	lc := net.ListenConfig{Control: setReuseAddr}
	ln, err := lc.Listen(context.Background(), network, net.JoinHostPort(address, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("listen %s: not a TCP listener", network)
	}
	return tl, nil
}

// setReuseAddr sets SO_REUSEADDR on a socket about to be bound.
func setReuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

// FileSocket makes a Socket of a descriptor kept elsewhere (tend's
// keeper), of any kind DefaultListen makes; f stays the caller's.
func FileSocket(f *os.File) (Socket, error) {
	typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, err
	}
	if typ == unix.SOCK_DGRAM {
		c, err := net.FilePacketConn(f)
		if err != nil {
			return nil, err
		}
		if u, ok := c.(*net.UDPConn); ok {
			return u, nil
		}
		c.Close()
		return nil, fmt.Errorf("nodecluster: %s is not a UDP socket", f.Name())
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	if s, ok := ln.(Socket); ok {
		return s, nil
	}
	ln.Close()
	return nil, fmt.Errorf("nodecluster: %s is not a TCP or unix socket", f.Name())
}

// sockAddr is where s is bound.
func sockAddr(s Socket) net.Addr {
	switch s := s.(type) {
	case net.Listener:
		return s.Addr()
	case net.PacketConn:
		return s.LocalAddr()
	}
	return nil
}
