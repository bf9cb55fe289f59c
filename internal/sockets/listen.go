package sockets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/tendhq/tend"
	"golang.org/x/sys/unix"
)

// Listen binds and listens on a TCP address for an app: "127.0.0.1:8000",
// ":8000" or "[::1]:8000"; network is "tcp", "tcp4" or "tcp6".
//
// The socket has SO_REUSEADDR, so a port that tend just released (with
// connections in TIME_WAIT) can be bound again at once, and the backlog is
// the kernel's maximum (net.core.somaxconn, which the net package reads):
// connections wait there while every instance is restarting.
//
// Errors are meant for the user. A port in use is a tend.ECONFLICT that
// names the process holding it when /proc lets us see it, and says to
// choose another --port; a privileged port without the right is a
// tend.EINVALID.
func Listen(network, addr string) (*net.TCPListener, error) {
	return ListenFor(network, addr, "choose another --port")
}

// HostNetwork is the network to listen on host with, as Node reads an
// address: an IPv4 address (0.0.0.0 too) is IPv4 only, where Go's "tcp"
// would make 0.0.0.0 IPv6 as well; "" and "::" are every address of both
// families.
func HostNetwork(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		return "tcp4"
	}
	return "tcp"
}

// ListenFor is Listen for a port that came from elsewhere than --port (an
// app's own listen()): fix is what a port in use asks of the user.
func ListenFor(network, addr, fix string) (*net.TCPListener, error) {
	port, err := checkAddr(network, addr)
	if err != nil {
		return nil, err
	}
	return listen(network, addr, port, fix, setReuseAddr)
}

// checkAddr checks a TCP network and address and returns the port.
func checkAddr(network, addr string) (int, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return 0, tend.Errorf(tend.EINVALID, "cannot listen on %s: network %q is not tcp, tcp4 or tcp6", addr, network)
	}
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, tend.Errorf(tend.EINVALID, "cannot listen on %q: %v", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return 0, tend.Errorf(tend.EINVALID, "cannot listen on %q: port %q is not a number from 0 to 65535", addr, portStr)
	}
	return port, nil
}

// listen binds and listens on addr with control, words the errors for
// the user.
func listen(network, addr string, port int, fix string, control func(string, string, syscall.RawConn) error) (*net.TCPListener, error) {
	lc := net.ListenConfig{Control: control}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, listenError(addr, port, err, fix, findHolder)
	}
	return ln.(*net.TCPListener), nil
}

// setReuseAddr sets SO_REUSEADDR. The net package already does so for
// listeners on Unix; setting it here keeps the promise made in Listen's
// contract even if that default ever changes.
func setReuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// holder is a process that holds a listening socket.
type holder struct {
	PID  int
	Comm string // the process's command name, as in /proc/<pid>/comm
}

// listenError turns a failed listen into an error the user can act on.
// findHolder is a seam so tests can check the messages without needing a
// real privileged port (tests may run as root, where binding port 80 works).
func listenError(addr string, port int, err error, fix string, findHolder func(port int) (holder, bool)) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		if h, ok := findHolder(port); ok {
			return tend.Causef(err, tend.ECONFLICT, "port %d is already in use by pid %d (%s); stop it or %s", port, h.PID, h.Comm, fix)
		}
		return tend.Causef(err, tend.ECONFLICT, "port %d is already in use; stop the program that holds it or %s", port, fix)
	case errors.Is(err, syscall.EACCES):
		return tend.Causef(err, tend.EINVALID, "binding port %d needs root or CAP_NET_BIND_SERVICE; use a port of 1024 or above", port)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return tend.Causef(err, tend.EINVALID, "cannot listen on %s: the address is not one of this machine's", addr)
	}
	return fmt.Errorf("listening on %s: %w", addr, err)
}
