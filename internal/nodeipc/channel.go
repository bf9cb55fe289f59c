package nodeipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Errors returned by Channel methods.
var (
	// ErrClosed is returned by every method once Close has been called.
	ErrClosed = errors.New("nodeipc: channel closed")
	// ErrBadMessage wraps a line from the peer that is not valid JSON. It is
	// not fatal: the line is skipped and Recv may be called again.
	ErrBadMessage = errors.New("nodeipc: bad message")
	// ErrLineTooLong means the peer sent a line longer than the limit; the
	// channel has been closed.
	ErrLineTooLong = errors.New("nodeipc: message line too long")
	// ErrQueueFull means too much is waiting to be written, usually because
	// the peer has not ACKed a handle; the message was not queued.
	ErrQueueFull = errors.New("nodeipc: send queue full")
	// ErrHandleNotReceived is passed to a SendHandle callback when the peer
	// NACKed the handle after every retransmission.
	ErrHandleNotReceived = errors.New("nodeipc: handle not received by peer")
)

// MaxHandleRetransmissions is how often a NACKed handle is sent again before
// giving up; Node's MAX_HANDLE_RETRANSMISSIONS.
const MaxHandleRetransmissions = 3

var (
	// maxLine caps one incoming line. JSON lines have no limit in Node, and
	// a 1 MB message is ordinary, but a hostile child must not be able to
	// make the daemon buffer without end. A variable so tests can lower it.
	maxLine = 64 << 20
	// maxQueued caps the bytes waiting to be written. They pile up only
	// while a handle is unACKed (Node's _handleQueue), so a child that never
	// ACKs costs at most this much.
	maxQueued = 64 << 20
)

var (
	ackLine  = []byte(`{"cmd":"NODE_HANDLE_ACK"}` + "\n")
	nackLine = []byte(`{"cmd":"NODE_HANDLE_NACK"}` + "\n")
)

// A Channel is one end of a Node IPC channel in JSON mode. Send and
// SendHandle may be called from any goroutine; Recv from one goroutine at a
// time, in a loop for as long as the channel is used, because ACKs for
// handles this side sent are processed inside Recv.
type Channel struct {
	conn *net.UnixConn
	rc   syscall.RawConn

	wmu sync.Mutex // one message is one uninterrupted sequence of sendmsg calls

	mu     sync.Mutex // guards queue, queued
	queue  []*outgoing
	queued int
	wake   chan struct{} // tells the writer the queue grew
	done   chan struct{} // closed by Close
	closed atomic.Bool

	awaiting atomic.Bool // a handle we sent waits for ACK/NACK
	acks     chan bool   // true for ACK, false for NACK

	rmu  sync.Mutex // Recv state below
	buf  []byte
	off  int // start of the unconsumed data in buf
	scan int // buf[:scan] has no '\n' at or after off
	oob  []byte

	fdmu sync.Mutex
	fds  []*os.File // received, not yet attached to a NODE_HANDLE line; nil marks a lost one

	closeOnce sync.Once
	closeErr  error
}

// outgoing is one queued line; fd is a duplicate owned by the Channel, or -1.
type outgoing struct {
	line []byte
	fd   int
	done func(error)
}

// NewPair creates a connected socketpair (AF_UNIX, SOCK_STREAM, close-on-exec).
// parent is this process's end. child is the end to pass as
// exec.Cmd.ExtraFiles[0] (fd 3 in the child); the caller closes it after
// Start so that the child's exit is seen as EOF.
func NewPair() (parent *Channel, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("nodeipc: socketpair: %w", err)
	}
	parent, err = fileChannel(os.NewFile(uintptr(fds[0]), "nodeipc-parent"))
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return parent, os.NewFile(uintptr(fds[1]), "nodeipc-child"), nil
}

// FromFD wraps an inherited channel descriptor, such as NODE_CHANNEL_FD in a
// child. It takes ownership of fd (the descriptor is closed; the Channel
// uses a close-on-exec duplicate, so the program's own children do not
// inherit it, as with Node).
func FromFD(fd int) (*Channel, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("nodeipc: fd %d: %w", fd, err)
	}
	if typ != unix.SOCK_STREAM {
		return nil, fmt.Errorf("nodeipc: fd %d is not a stream socket", fd)
	}
	return fileChannel(os.NewFile(uintptr(fd), "nodeipc"))
}

// fileChannel turns f into a Channel through the runtime poller and closes f.
func fileChannel(f *os.File) (*Channel, error) {
	fc, err := net.FileConn(f) // duplicates f, close-on-exec and non-blocking
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("nodeipc: %w", err)
	}
	uc, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return nil, fmt.Errorf("nodeipc: not a unix socket")
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("nodeipc: %w", err)
	}
	c := &Channel{
		conn: uc,
		rc:   rc,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		acks: make(chan bool, 1),
		// Node sends one fd per message and SCM_RIGHTS batches from
		// different sendmsg calls are never merged, so 16 is ample headroom.
		oob: make([]byte, unix.CmsgSpace(16*4)),
	}
	go c.writeLoop()
	return c, nil
}

// Send queues v, encoded as one JSON line, and returns without waiting for
// the peer. Encoding errors are returned, so nothing invalid (which would
// crash a Node peer) is ever written. Like Node, messages sent while a
// handle awaits its ACK are held back until the ACK.
func (c *Channel) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("nodeipc: encoding message: %w", err)
	}
	return c.enqueue(&outgoing{line: append(b, '\n'), fd: -1})
}

// SendHandle queues msg wrapped as {"cmd":"NODE_HANDLE","type":typ,"msg":msg}
// with h's socket attached (SCM_RIGHTS on the same sendmsg). typ is Node's
// handle type: "net.Native" for a raw TCP or pipe handle (what cluster uses),
// "net.Server", "net.Socket", "dgram.Native" or "dgram.Socket".
//
// The descriptor is duplicated at once through SyscallConn (never Fd(),
// which would switch a shared socket to blocking mode), so the caller may
// close h whenever it likes. At most one handle is in flight: it and every
// later message wait until the previous handle is ACKed. A NACK resends it up
// to MaxHandleRetransmissions times. done, if not nil, is called once from
// the Channel's writer goroutine, with nil after the ACK or with an error
// when the handle was not delivered; it is not called when SendHandle
// returns an error.
func (c *Channel) SendHandle(msg any, h syscall.Conn, typ string, done func(error)) error {
	inner, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("nodeipc: encoding message: %w", err)
	}
	b, err := json.Marshal(struct {
		Cmd  string          `json:"cmd"`
		Type string          `json:"type"`
		Msg  json.RawMessage `json:"msg"`
	}{"NODE_HANDLE", typ, inner})
	if err != nil {
		return fmt.Errorf("nodeipc: encoding message: %w", err)
	}
	fd, err := dupConn(h)
	if err != nil {
		return err
	}
	if err := c.enqueue(&outgoing{line: append(b, '\n'), fd: fd, done: done}); err != nil {
		unix.Close(fd)
		return err
	}
	return nil
}

// dupConn duplicates h's descriptor without touching its blocking mode.
func dupConn(h syscall.Conn) (int, error) {
	rc, err := h.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("nodeipc: handle: %w", err)
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, fmt.Errorf("nodeipc: handle: %w", err)
	}
	if derr != nil {
		return -1, fmt.Errorf("nodeipc: duplicating handle: %w", derr)
	}
	return fd, nil
}

func (c *Channel) enqueue(o *outgoing) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if c.queued+len(o.line) > maxQueued {
		return ErrQueueFull
	}
	c.queue = append(c.queue, o)
	c.queued += len(o.line)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// next returns the next line to write, or nil once the channel is closed.
func (c *Channel) next() *outgoing {
	for {
		c.mu.Lock()
		if c.closed.Load() {
			c.mu.Unlock()
			return nil
		}
		if len(c.queue) > 0 {
			o := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.queued -= len(o.line)
			c.mu.Unlock()
			return o
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.done:
		}
	}
}

// writeLoop writes queued lines in order. It is the only writer of queued
// lines, which makes "hold everything back until the ACK" a plain wait.
func (c *Channel) writeLoop() {
	defer func() {
		c.mu.Lock()
		rest := c.queue
		c.queue, c.queued = nil, 0
		c.mu.Unlock()
		for _, o := range rest {
			o.finish(ErrClosed)
		}
	}()
	for {
		o := c.next()
		if o == nil {
			return
		}
		if o.fd < 0 {
			// A failed write means the peer is gone; Recv reports that.
			c.write(o.line, -1)
			continue
		}
		c.writeHandle(o)
	}
}

// writeHandle sends o's line and fd and waits for the peer's verdict,
// resending on NACK as Node does.
func (c *Channel) writeHandle(o *outgoing) {
	select { // an ACK that arrived while nothing was in flight means nothing
	case <-c.acks:
	default:
	}
	c.awaiting.Store(true)
	defer c.awaiting.Store(false)
	for try := 0; ; try++ {
		if err := c.write(o.line, o.fd); err != nil {
			o.finish(err)
			return
		}
		select {
		case ok := <-c.acks:
			if ok {
				o.finish(nil)
				return
			}
			if try == MaxHandleRetransmissions {
				o.finish(ErrHandleNotReceived)
				return
			}
		case <-c.done:
			o.finish(ErrClosed)
			return
		}
	}
}

func (o *outgoing) finish(err error) {
	if o.fd >= 0 {
		unix.Close(o.fd) // the kernel keeps its own reference for a delivered fd
		o.fd = -1
	}
	if o.done != nil {
		o.done(err)
	}
}

// write sends line, with fd as SCM_RIGHTS on its first byte when fd >= 0.
// A stream socket may take a long line in several pieces; wmu keeps other
// lines from landing in between.
func (c *Channel) write(line []byte, fd int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	var werr error
	err := c.rc.Write(func(s uintptr) bool {
		for len(line) > 0 {
			n, err := unix.SendmsgN(int(s), line, oob, nil, unix.MSG_NOSIGNAL)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // wait until writable, then come back here
			case err != nil:
				werr = err
				return true
			}
			line, oob = line[n:], nil
		}
		return true
	})
	if c.closed.Load() {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("nodeipc: write: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("nodeipc: write: %w", werr)
	}
	return nil
}

// Close shuts the socket down in both directions and closes it, so the peer
// sees EOF ('disconnect' in Node; a cluster worker then exits). Queued but
// unwritten messages are dropped, and received descriptors not yet returned
// by Recv are closed.
func (c *Channel) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed.Store(true)
		c.mu.Unlock()
		close(c.done)
		// shutdown reaches the peer even if a copy of this end leaked into
		// another process (a child started before the pair was closed).
		c.rc.Control(func(s uintptr) { unix.Shutdown(int(s), unix.SHUT_RDWR) })
		c.closeErr = c.conn.Close()
		c.fdmu.Lock()
		for _, f := range c.fds {
			if f != nil {
				f.Close()
			}
		}
		c.fds = nil
		c.fdmu.Unlock()
	})
	return c.closeErr
}
