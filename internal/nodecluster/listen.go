package nodecluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultListen binds and listens on address:port ("" means all addresses,
// port 0 an ephemeral port) with SO_REUSEADDR, so a port whose previous
// owner left connections in TIME_WAIT can be bound again at once.
func DefaultListen(network, address string, port int) (*net.TCPListener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
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
