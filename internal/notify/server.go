//go:build linux

package notify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxPathLen is the longest socket path Listen accepts: sun_path is 108
// bytes on Linux, one of them the terminating NUL.
const MaxPathLen = 107

// maxDatagram is the largest message read whole. systemd reads at most
// PIPE_BUF (4096) bytes per notification and so do we; longer ones are
// dropped, as systemd drops them.
const maxDatagram = 4096

// maxFDs is SCM_MAX_FD: the most descriptors one message can carry
// (FDSTORE=1). tend does not keep them, but must receive them to close them.
const maxFDs = 253

// Message is one notification from an instance.
type Message struct {
	Ready     bool   // READY=1: the instance can serve
	Reloading bool   // RELOADING=1: reloading its configuration
	Stopping  bool   // STOPPING=1: shutting down
	Watchdog  bool   // WATCHDOG=1: keep-alive ping
	Status    string // STATUS=...: a free-form line for humans
	MainPID   int    // MAINPID=...: the app's main process, when it is not the one tend started; 0 if absent
	// Fields holds every KEY=VALUE line, including those above.
	Fields map[string]string
	// PID is the sender's pid from SCM_CREDENTIALS, 0 when unknown.
	PID int
}

// Server receives notifications on one unixgram socket.
type Server struct {
	conn     *net.UnixConn
	path     string
	msgs     chan Message
	done     chan struct{}
	closeErr error
	once     sync.Once
	wg       sync.WaitGroup
	// peers, when set, are the only users (besides root and tend's own)
	// whose messages count: an abstract socket anyone can send to.
	peers []uint32
}

// Listen creates a unixgram socket at path, readable and writable by tend's
// user only (0600), and starts receiving on it. A stale socket left at path
// by a previous daemon is replaced. A path starting with '@' names an
// abstract socket (see the package doc for why the daemon should not use
// them), unless peers limit who may send: then messages from users other
// than peers, root and tend's own are dropped.
func Listen(path string, peers ...uint32) (*Server, error) {
	if len(path) > MaxPathLen {
		return nil, fmt.Errorf("notify socket path %s is %d bytes, longer than the %d that fit in sun_path: use a shorter directory", path, len(path), MaxPathLen)
	}
	abstract := strings.HasPrefix(path, "@")
	if !abstract {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	fail := func(err error) (*Server, error) {
		conn.Close()
		if !abstract {
			os.Remove(path)
		}
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	if !abstract {
		// The directory should be private already; this is the second lock.
		if err := os.Chmod(path, 0o600); err != nil {
			return fail(err)
		}
	}
	s, err := serve(conn, path, peers)
	if err != nil {
		return fail(err)
	}
	return s, nil
}

// FromFile serves a notify socket that is already bound at path (one a
// previous daemon made, which tend's keeper held meanwhile: what the
// instance sent in between is waiting in it). It takes f over; peers are
// Listen's.
func FromFile(f *os.File, path string, peers ...uint32) (*Server, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("notify socket %s: not a unix socket", path)
	}
	s, err := serve(conn, path, peers)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	return s, nil
}

// serve starts receiving on conn.
func serve(conn *net.UnixConn, path string, peers []uint32) (*Server, error) {
	// SO_PASSCRED makes the kernel attach the sender's credentials to every
	// message, whether or not the sender sends them.
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	s := &Server{
		conn: conn,
		path: path,
		// A few messages of slack so that a burst (STATUS updates) does not
		// stall the sender while tend's instance loop is busy.
		msgs:  make(chan Message, 16),
		done:  make(chan struct{}),
		peers: peers,
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// SyscallConn returns the socket, so that sockets.DupFD can duplicate it
// for tend's keeper to hold.
func (s *Server) SyscallConn() (syscall.RawConn, error) { return s.conn.SyscallConn() }

// Path returns the socket's path, the value for NOTIFY_SOCKET.
func (s *Server) Path() string { return s.path }

// Messages returns the channel on which notifications arrive, in order. It
// is closed after Close. Until it is read, senders block or get EAGAIN
// once the socket's receive buffer fills: the same back pressure as systemd.
func (s *Server) Messages() <-chan Message { return s.msgs }

// Close stops receiving, closes the Messages channel and removes the
// socket file.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.closeErr = s.conn.Close()
		s.wg.Wait()
		if !strings.HasPrefix(s.path, "@") {
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) && s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}

func (s *Server) serve() {
	defer s.wg.Done()
	defer close(s.msgs)
	buf := make([]byte, maxDatagram)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*maxFDs))
	for {
		n, oobn, flags, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-s.done:
				return
			default:
				continue // a transient error on one datagram
			}
		}
		pid, uid := control(oob[:oobn])
		if flags&unix.MSG_TRUNC != 0 || !s.allowed(uid) {
			continue
		}
		m := Parse(buf[:n])
		m.PID = pid
		select {
		case s.msgs <- m:
		case <-s.done:
			return
		}
	}
}

// allowed reports whether a message from uid counts.
func (s *Server) allowed(uid int) bool {
	if s.peers == nil || uid == 0 || uid == os.Geteuid() {
		return true
	}
	return uid > 0 && slices.Contains(s.peers, uint32(uid))
}

// control returns the sender's pid and uid (-1 when the kernel gave none)
// from the control messages and closes any descriptors sent along
// (FDSTORE=1), which tend does not keep.
func control(oob []byte) (pid, uid int) {
	uid = -1
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, uid
	}
	for i := range cmsgs {
		if cred, err := unix.ParseUnixCredentials(&cmsgs[i]); err == nil {
			pid, uid = int(cred.Pid), int(cred.Uid)
			continue
		}
		if fds, err := unix.ParseUnixRights(&cmsgs[i]); err == nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}
	return pid, uid
}

// Parse decodes one datagram: newline-separated KEY=VALUE lines. Lines
// without '=' are ignored, as systemd ignores them. PID is left zero.
func Parse(b []byte) Message {
	m := Message{Fields: map[string]string{}}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		m.Fields[k] = v
		switch k {
		case "READY":
			m.Ready = v == "1"
		case "RELOADING":
			m.Reloading = v == "1"
		case "STOPPING":
			m.Stopping = v == "1"
		case "WATCHDOG":
			m.Watchdog = v == "1"
		case "STATUS":
			m.Status = v
		case "MAINPID":
			m.MainPID, _ = strconv.Atoi(v)
		}
	}
	return m
}
