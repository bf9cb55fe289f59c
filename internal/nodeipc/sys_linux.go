package nodeipc

import "golang.org/x/sys/unix"

// Linux sets close-on-exec and no-SIGPIPE in the same calls.
const (
	msgNoSignal = unix.MSG_NOSIGNAL // a closed peer is EPIPE, not SIGPIPE
	ioctlInq    = unix.SIOCINQ      // bytes waiting to be read
)

// socketpair returns a connected, close-on-exec unix stream pair.
func socketpair() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}

// recvmsg reads from s; descriptors it receives are close-on-exec.
func recvmsg(s int, p, oob []byte) (n, oobn, flags int, err error) {
	n, oobn, flags, _, err = unix.Recvmsg(s, p, oob, unix.MSG_CMSG_CLOEXEC)
	return n, oobn, flags, err
}
