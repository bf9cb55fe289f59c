package client

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeer refuses a daemon that runs as another user (root excepted)
// before a byte is sent to it: requests carry the caller's environment,
// and another user who got to bind the socket first must not get it.
func checkPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("checking who serves the tend socket: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() && cred.Uid != 0 {
		return fmt.Errorf("the tend socket %s is served by uid %d (pid %d), not by you (uid %d) or root: refusing to talk to it",
			c.RemoteAddr(), cred.Uid, cred.Pid, os.Getuid())
	}
	return nil
}
