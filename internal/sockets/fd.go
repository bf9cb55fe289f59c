package sockets

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// DupFD returns a duplicate of the socket behind l (a *net.TCPListener, a
// *net.UnixListener, an *os.File...), with FD_CLOEXEC set and O_NONBLOCK
// left as it was, for passing to a child in exec.Cmd.ExtraFiles. The caller
// closes it once the child has started.
//
// Why not l.File(): os/exec calls Fd() on every ExtraFiles entry
// (os.StartProcess in os/exec_posix.go), and Fd() on a file made by the net
// package's File switches the socket to blocking mode, for every process
// that shares it. The duplicate here is taken through SyscallConn().Control,
// which never changes the mode, and wrapped with os.NewFile; in Go 1.26 Fd()
// restores blocking mode only on descriptors that the os or net package put
// in non-blocking mode itself (os/file_unix.go, newFile: f.nonblock is set
// only for kindSock and for files os made non-blocking), so Fd() on this one
// returns the descriptor untouched. TestExtraFilesKeepsNonBlocking pins this.
//
// The child receives the descriptor without FD_CLOEXEC (syscall/exec_linux.go
// clears it on the target number); FD_CLOEXEC is a per-descriptor flag, so
// the duplicate being close-on-exec in tend does not matter.
func DupFD(l syscall.Conn) (*os.File, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("duplicating socket: %w", err)
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("duplicating socket: %w", err)
	}
	name := "socket"
	if a, ok := l.(interface{ Addr() net.Addr }); ok {
		name = "socket " + a.Addr().String()
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// NonBlocking reports whether the socket behind l has O_NONBLOCK set. The
// flag is shared by every copy of the socket in every process, so this also
// tells whether a child, or a careless Fd() call, has made it blocking.
func NonBlocking(l syscall.Conn) (bool, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return false, err
	}
	var flags int
	var ferr error
	err = rc.Control(func(fd uintptr) {
		flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0)
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return false, fmt.Errorf("reading socket flags: %w", err)
	}
	return flags&unix.O_NONBLOCK != 0, nil
}
