package nodecluster

import "syscall"

// accept4 accepts a connection on s as a non-blocking, close-on-exec fd,
// in one call.
func accept4(s int) (int, syscall.Errno) {
	r, _, e := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(s), 0, 0,
		syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	return int(r), e
}
