package sockets

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SO_REUSEPORT groups. With --sched reuseport every instance listens on a
// socket of its own, all bound to the app's address with SO_REUSEPORT: the
// kernel spreads new connections over them, and each instance accepts
// only from its own queue. tend keeps one more socket of the group, bound
// but not listening (Unlisten), so the port stays the app's while
// instances come and go; it receives no connection.
//
// The trap: when a listening socket closes (its instance stops, is
// reloaded, scaled down or killed), the connections in its accept queue
// are reset, though no instance ever saw them. Since Linux 5.14 the
// sysctl net.ipv4.tcp_migrate_req=1 moves them to another socket of the
// group instead (EnableMigration).

// ListenGroup is ListenFor for a socket of a SO_REUSEPORT group: every
// socket bound with it to the same address by the same user joins the
// group.
func ListenGroup(network, addr, fix string) (*net.TCPListener, error) {
	port, err := checkAddr(network, addr)
	if err != nil {
		return nil, err
	}
	return listen(network, addr, port, fix, SetReusePort)
}

// SetReusePort sets SO_REUSEADDR and SO_REUSEPORT on a socket about to be
// bound: a net.ListenConfig's Control.
func SetReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// Unlisten stops a listening socket of a SO_REUSEPORT group listening: it
// leaves the kernel's listening table and the group, so that it gets no
// more connections (those queued on it move to the group's other sockets
// with net.ipv4.tcp_migrate_req), but stays bound to its port. It then
// drops SO_REUSEADDR, which lets a socket bind beside one that does not
// listen: only sockets of the group, bound with SO_REUSEPORT by the same
// user, can bind the port from then on. A socket bound to an explicit port
// keeps it (SOCK_BINDPORT_LOCK); one bound to port 0 loses it.
func Unlisten(c syscall.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if serr = unix.Shutdown(int(fd), unix.SHUT_RD); serr != nil {
			serr = fmt.Errorf("shutting down the listening socket: %w", serr)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 0)
	}); err != nil {
		return err
	}
	return serr
}

// migrateReq is the sysctl that moves a closing listener's queue.
const migrateReq = "/proc/sys/net/ipv4/tcp_migrate_req"

// EnableMigration makes sure net.ipv4.tcp_migrate_req is 1, so that the
// connections queued on an instance's socket move to another instance's
// when it closes, and returns what the user should know about it, or "".
// It sets the sysctl itself only when tend runs as root, and then says so:
// the setting applies to every program in the network namespace (on
// every SO_REUSEPORT group it only saves connections that would be reset).
// Otherwise it asks the user to set it. path is the sysctl's file (a seam
// for tests); "" means the real one.
func EnableMigration(path string) string {
	if path == "" {
		path = migrateReq
	}
	const why = "connections queued on an instance's socket are reset when it closes (a reload, scale down or crash)"
	b, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		return "this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14 or later has it): with --sched reuseport, " + why
	case err != nil:
		return fmt.Sprintf("reading net.ipv4.tcp_migrate_req: %v: with --sched reuseport, %s unless it is 1", err, why)
	case strings.TrimSpace(string(b)) == "1":
		return ""
	}
	if os.Geteuid() == 0 {
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err == nil {
			return "set net.ipv4.tcp_migrate_req=1 (it was " + strings.TrimSpace(string(b)) +
				") for --sched reuseport: connections queued on an instance's socket now move to another instance when it closes; " +
				"this applies to every program of this host's network namespace"
		}
	}
	return "net.ipv4.tcp_migrate_req is " + strings.TrimSpace(string(b)) + ": with --sched reuseport, " + why +
		"; set it to 1 as root (sysctl -w net.ipv4.tcp_migrate_req=1, and in /etc/sysctl.d to keep it)"
}
