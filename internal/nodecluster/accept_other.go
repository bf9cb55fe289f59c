//go:build unix && !linux

package nodecluster

import (
	"errors"
	"syscall"
)

// accept4 accepts a connection on s as a non-blocking, close-on-exec fd.
// macOS has no accept4: the flags are set after, under the fork lock so
// that no concurrent exec inherits the fd in between.
func accept4(s int) (int, syscall.Errno) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, _, err := syscall.Accept(s)
	if err != nil {
		var en syscall.Errno
		if errors.As(err, &en) {
			return -1, en
		}
		return -1, syscall.EINVAL
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, syscall.EINVAL
	}
	return fd, 0
}
