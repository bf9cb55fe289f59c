//go:build unix && !linux

package nodeipc

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Elsewhere (macOS has neither flag) close-on-exec is set after the call,
// and Go's runtime already turns SIGPIPE on a socket into EPIPE.
const (
	msgNoSignal = 0
	ioctlInq    = 0x4004667f // FIONREAD, _IOR('f', 127, int) on macOS and the BSDs
)

// socketpair returns a connected, close-on-exec unix stream pair. The
// fork lock keeps a concurrent exec from inheriting it in between.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	return fds, err
}

// recvmsg reads from s; descriptors it receives are close-on-exec, marked
// under the fork lock, so that no concurrent exec inherits one meanwhile.
func recvmsg(s int, p, oob []byte) (n, oobn, flags int, err error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	n, oobn, flags, _, err = unix.Recvmsg(s, p, oob, 0)
	if err != nil || oobn == 0 {
		return n, oobn, flags, err
	}
	if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for i := range msgs {
			if fds, perr := unix.ParseUnixRights(&msgs[i]); perr == nil {
				for _, fd := range fds {
					unix.CloseOnExec(fd)
				}
			}
		}
	}
	return n, oobn, flags, err
}
