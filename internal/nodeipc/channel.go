package nodeipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
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
	ErrLineTooLong = errors.New("nodeipc: message over 4 MiB")
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
	// maxLine caps one incoming line. A Node message is one JSON line
	// with no limit of Node's own; 4 MiB passes the 1 MiB messages apps
	// send with room, and bounds what one app can make the daemon hold:
	// its line, in a buffer that grows by doubling, and one copy. Past it
	// the channel is closed (the app's message is refused, not the
	// daemon's memory). A variable so tests can lower it.
	maxLine = 4 << 20
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
//
// Writing: a message with nothing ahead of it is written at once on the
// sender's goroutine, as far as the socket takes it without waiting; the
// rest, and anything sent while a line is being written or a handle awaits
// its ACK, waits in a queue that a writer goroutine drains. The ACK that
// releases the queue is handled where it is read, in Recv. So a hand-off
// to an idle peer costs no goroutine switch on tend's side.
type Channel struct {
	conn *net.UnixConn
	rc   syscall.RawConn

	// wmu makes one line one uninterrupted sequence of sendmsg calls. When
	// a line is only partly written at once, the writer goroutine inherits
	// wmu with the rest and unlocks it when the line is complete.
	wmu sync.Mutex

	mu       sync.Mutex // guards the fields below up to done
	queue    []*outgoing
	queued   int
	turn     bool          // a queued line is being written
	inflight *outgoing     // a handle written and not yet ACKed or NACKed
	writer   bool          // writeLoop runs (started on first need: most channels never need it)
	wake     chan struct{} // tells the writer that it may have work
	done     chan struct{} // closed by Close
	closed   atomic.Bool

	unread atomic.Bool // see Unread

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
	line  []byte
	fd    int
	done  func(error)
	nacks int  // times the peer NACKed the handle
	rest  bool // the end of a line begun by a sender: wmu is held for it
}

// NewPair creates a connected socketpair (AF_UNIX, SOCK_STREAM, close-on-exec).
// parent is this process's end. child is the end to pass as
// exec.Cmd.ExtraFiles[0] (fd 3 in the child); the caller closes it after
// Start so that the child's exit is seen as EOF.
func NewPair() (parent *Channel, child *os.File, err error) {
	fds, err := socketpair()
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

// FromFile wraps f, an end of a channel that was already in use (a daemon
// taking back the channels of the processes its predecessor ran), and
// closes f. A line the predecessor had half read when it went begins the
// stream; Recv reports it as an ErrBadMessage and goes on.
func FromFile(f *os.File) (*Channel, error) { return fileChannel(f) }

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
		// Node sends one fd per message and SCM_RIGHTS batches from
		// different sendmsg calls are never merged, so 16 is ample headroom.
		oob: make([]byte, unix.CmsgSpace(16*4)),
	}
	return c, nil
}

// SyscallConn returns the channel's socket, so that sockets.DupFD can
// duplicate it (tend's keeper holds a copy while the daemon runs, so the
// channel outlives the daemon).
func (c *Channel) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Send queues v, encoded as one JSON line, and returns without waiting for
// the peer (it may write v at once, but never waits for the socket).
// Encoding errors are returned, so nothing invalid (which would crash a
// Node peer) is ever written. Like Node, messages sent while a handle
// awaits its ACK are held back until the ACK.
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
// to MaxHandleRetransmissions times. done, if not nil, is called once, with
// nil after the ACK or with an error when the handle was not delivered,
// from the goroutine that calls Recv or the Channel's writer goroutine,
// never from SendHandle itself; it is not called when SendHandle returns
// an error.
func (c *Channel) SendHandle(msg any, h syscall.Conn, typ string, done func(error)) error {
	inner, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("nodeipc: encoding message: %w", err)
	}
	fd, err := dupConn(h)
	if err != nil {
		return err
	}
	return c.sendHandle(inner, fd, typ, done)
}

// SendFD is SendHandle for a descriptor held as a plain fd and a message
// already encoded as JSON, which is written as it is and must be valid.
// It serves the round-robin hand-off of every connection, where tend never
// gives the accepted socket to Go's poller and reflection would be wasted.
// fd is duplicated; the caller still owns it.
func (c *Channel) SendFD(msg []byte, fd int, typ string, done func(error)) error {
	dup, err := dupFD(uintptr(fd))
	if err != nil {
		return err
	}
	return c.sendHandle(msg, dup, typ, done)
}

// handleTypes are Node's handle types, JSON-encoded once.
var handleTypes = map[string][]byte{}

func init() {
	for _, t := range []string{"net.Native", "net.Server", "net.Socket", "dgram.Native", "dgram.Socket"} {
		handleTypes[t], _ = json.Marshal(t)
	}
}

// sendHandle queues {"cmd":"NODE_HANDLE","type":typ,"msg":inner} with fd,
// which it owns from now on.
func (c *Channel) sendHandle(inner []byte, fd int, typ string, done func(error)) error {
	t := handleTypes[typ]
	if t == nil {
		var err error
		if t, err = json.Marshal(typ); err != nil {
			unix.Close(fd)
			return fmt.Errorf("nodeipc: encoding message: %w", err)
		}
	}
	line := make([]byte, 0, len(inner)+len(t)+40)
	line = append(line, `{"cmd":"NODE_HANDLE","type":`...)
	line = append(line, t...)
	line = append(line, `,"msg":`...)
	line = append(line, inner...)
	line = append(line, "}\n"...)
	if err := c.enqueue(&outgoing{line: line, fd: fd, done: done}); err != nil {
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
	if err := rc.Control(func(s uintptr) { fd, derr = dupFD(s) }); err != nil {
		return -1, fmt.Errorf("nodeipc: handle: %w", err)
	}
	return fd, derr
}

// dupFD duplicates fd, close-on-exec.
func dupFD(fd uintptr) (int, error) {
	dup, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("nodeipc: duplicating handle: %w", err)
	}
	return dup, nil
}

func (c *Channel) enqueue(o *outgoing) error {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.queued+len(o.line) > maxQueued {
		c.mu.Unlock()
		return ErrQueueFull
	}
	if c.turn || c.inflight != nil || len(c.queue) > 0 || !c.wmu.TryLock() {
		// Behind other lines, or Recv is writing an ACK: the writer's job.
		// (TryLock, not Lock: a sender, maybe holding its own locks, must
		// never wait for a peer that does not read.)
		c.push(o)
		c.mu.Unlock()
		return nil
	}
	c.turn = true
	if o.fd >= 0 {
		c.inflight = o // before writing: Recv may read the ACK before we return
	}
	c.mu.Unlock()

	n, err := c.send(o.line, o.fd, false)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.turn = false
	switch {
	case err == nil && n == len(o.line):
		c.wmu.Unlock()
		if len(c.queue) > 0 && c.inflight == nil {
			c.signal()
		}
	case err == nil && n > 0:
		// The socket is full mid-line (the fd went with the first byte):
		// the writer sends the rest, keeping wmu until the line is whole.
		c.queue = slices.Insert(c.queue, 0, &outgoing{line: o.line[n:], fd: -1, rest: true})
		c.queued += len(o.line) - n
		c.signal()
	default:
		// Nothing written (the socket is full) or the peer is gone: the
		// writer waits for room, or meets the error and reports it.
		c.wmu.Unlock()
		if o.fd >= 0 {
			if c.inflight != o {
				// Already finished meanwhile: by Close (the writer's
				// cleanup takes what is in flight), or by an ACK the
				// peer sent for a line it never got.
				return nil
			}
			c.inflight = nil
		}
		if c.closed.Load() { // the writer has finished: report it here
			go o.finish(ErrClosed)
			return nil
		}
		c.queue = slices.Insert(c.queue, 0, o)
		c.queued += len(o.line)
		c.signal()
	}
	return nil
}

// push queues o for the writer. Caller holds c.mu.
func (c *Channel) push(o *outgoing) {
	c.queue = append(c.queue, o)
	c.queued += len(o.line)
	c.signal()
}

// signal wakes the writer, starting it if it does not run yet. Caller
// holds c.mu.
func (c *Channel) signal() {
	if !c.writer {
		c.writer = true
		go c.writeLoop()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// next returns the next line for the writer to write, once it may be
// written, or nil once the channel is closed.
func (c *Channel) next() *outgoing {
	for {
		c.mu.Lock()
		if c.closed.Load() {
			c.mu.Unlock()
			return nil
		}
		if !c.turn && len(c.queue) > 0 && (c.inflight == nil || c.queue[0].rest) {
			o := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.queued -= len(o.line)
			c.turn = true
			if o.fd >= 0 {
				c.inflight = o
			}
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

// writeLoop writes what senders could not write at once, in order,
// waiting for the socket to take it. Handles wait for their ACK (see
// acked) before anything after them is written.
func (c *Channel) writeLoop() {
	defer func() {
		c.mu.Lock()
		rest := c.queue
		if c.inflight != nil {
			rest = append(rest, c.inflight)
		}
		c.queue, c.queued, c.inflight = nil, 0, nil
		c.mu.Unlock()
		for _, o := range rest {
			if o.rest {
				c.wmu.Unlock() // inherited from the sender that began the line
			}
			o.finish(ErrClosed)
		}
	}()
	for {
		o := c.next()
		if o == nil {
			return
		}
		if !o.rest {
			c.wmu.Lock()
		}
		_, err := c.send(o.line, o.fd, true)
		c.wmu.Unlock()
		c.mu.Lock()
		c.turn = false
		if err != nil && c.inflight == o {
			c.inflight = nil
		}
		c.mu.Unlock()
		if err != nil {
			// The peer is gone (Recv reports that) or the channel closed.
			o.finish(err)
		}
	}
}

// acked takes the peer's verdict on the handle in flight: on ACK it is
// done and what waited behind it may go; on NACK it is sent again, up to
// MaxHandleRetransmissions times. An ACK with nothing in flight means
// nothing.
func (c *Channel) acked(ok bool) {
	c.mu.Lock()
	o := c.inflight
	if o == nil {
		c.mu.Unlock()
		return
	}
	c.inflight = nil
	if !ok {
		if o.nacks++; o.nacks <= MaxHandleRetransmissions {
			c.queue = slices.Insert(c.queue, 0, o)
			c.queued += len(o.line)
			c.signal()
			c.mu.Unlock()
			return
		}
	}
	if len(c.queue) > 0 {
		c.signal()
	}
	c.mu.Unlock()
	if ok {
		o.finish(nil)
	} else {
		o.finish(ErrHandleNotReceived)
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

// write sends line, with fd as SCM_RIGHTS on its first byte when fd >= 0,
// waiting for the socket to take all of it.
func (c *Channel) write(line []byte, fd int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.send(line, fd, true)
	return err
}

// send writes line, fd with its first byte, and returns how much of it the
// socket took: all of it if wait is set (it waits for room), else what fits
// now. Caller holds wmu.
func (c *Channel) send(line []byte, fd int, wait bool) (int, error) {
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	n := 0
	var werr error
	err := c.rc.Write(func(s uintptr) bool {
		for n < len(line) {
			m, err := unix.SendmsgN(int(s), line[n:], oob, nil, msgNoSignal)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return !wait // waiting: come back here once writable
			case err != nil:
				werr = err
				return true
			}
			n, oob = n+m, nil
		}
		return true
	})
	switch {
	case c.closed.Load():
		return n, ErrClosed
	case err != nil:
		return n, fmt.Errorf("nodeipc: write: %w", err)
	case werr != nil:
		return n, fmt.Errorf("nodeipc: write: %w", werr)
	}
	return n, nil
}

// Close shuts the socket down in both directions and closes it, so the peer
// sees EOF ('disconnect' in Node; a cluster worker then exits). Queued but
// unwritten messages are dropped, and received descriptors not yet returned
// by Recv are closed.
func (c *Channel) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed.Store(true)
		c.signal() // the writer reports what is queued or in flight as not delivered
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
