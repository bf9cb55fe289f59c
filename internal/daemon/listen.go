package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/private"
	"golang.org/x/sys/unix"
)

// lockHome takes the daemon lock of home. Only one daemon runs per home; a
// second one started by a racing CLI fails here and exits quietly.
func lockHome(home string) (*os.File, error) {
	f, err := private.Open(tend.Home(home).DaemonLock(), os.O_CREATE|os.O_RDWR)
	if err != nil {
		return nil, err
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		// A daemon that was just killed may still be on its way out:
		// wait for its lock a little rather than fail the command that
		// started us.
		got := make(chan error, 1)
		go func() { got <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
		select {
		case err = <-got:
		case <-time.After(lockWait):
			f.Close() // the blocked flock goes with the process
			return nil, ErrRunning
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// lockWait bounds how long a new daemon waits for an exiting one's lock:
// stopping takes milliseconds once the apps are down.
const lockWait = 5 * time.Second

// ErrRunning means another daemon holds the home's lock.
var ErrRunning = errors.New("a tend daemon is already running for this TEND_HOME")

// listenSocket binds the control socket, mode 0600. Holding the lock, any
// socket file already there was left by a dead daemon: it is replaced.
func listenSocket(home string) (net.Listener, error) {
	path := tend.Home(home).Socket()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	// The umask makes the socket private from its creation: no window in
	// which another user could connect before a chmod.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	// The path outlives this daemon when it hands over (the keeper keeps
	// the socket for the next one): only a stop of tend removes it.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	return &peerListener{Listener: l, uid: os.Getuid()}, nil
}

// peerListener accepts only connections from the daemon's own user (or
// root), checked with SO_PEERCRED: file permissions are the first guard,
// this is the second.
type peerListener struct {
	net.Listener
	uid int
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.allowed(c) {
			return c, nil
		}
		c.Close()
	}
}

func (l *peerListener) allowed(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	return err == nil && (int(cred.Uid) == l.uid || cred.Uid == 0)
}
