package nodeipc

import "golang.org/x/sys/unix"

// Linux sets close-on-exec and no-SIGPIPE in the same calls.
const (
	msgCmsgCloexec = unix.MSG_CMSG_CLOEXEC // received descriptors are close-on-exec
	msgNoSignal    = unix.MSG_NOSIGNAL     // a closed peer is EPIPE, not SIGPIPE
	ioctlInq       = unix.SIOCINQ          // bytes waiting to be read
)

// socketpair returns a connected, close-on-exec unix stream pair.
func socketpair() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}

// cloexec marks received descriptors close-on-exec: recvmsg did already.
func cloexec([]int) {}
