package nodeipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// readChunk is the least room recvmsg gets. Messages are mostly small, and
// a daemon holds a channel per instance, so buffers start at this and grow
// by doubling for big messages; a buffer that grew past keepBuf is dropped
// once it has been consumed.
const (
	readChunk = 4 << 10
	keepBuf   = 64 << 10
)

// A Message is one message from the peer.
type Message struct {
	// Raw is the message as JSON. For a message that carried a handle it is
	// the inner "msg" of the NODE_HANDLE envelope, as Node delivers it.
	Raw json.RawMessage
	// FD is the received socket, or nil. It is close-on-exec and belongs to
	// the caller, who must close it.
	FD *os.File
	// HandleType is the envelope's "type" ("net.Native", ...) when FD is set.
	HandleType string
}

// Cmd returns the message's "cmd" field if it is an object with a string
// "cmd", and "" otherwise.
func (m Message) Cmd() string {
	raw := bytes.TrimSpace(m.Raw)
	if len(raw) == 0 || raw[0] != '{' {
		return ""
	}
	// Fast path: Node's internal messages are JSON.stringify of objects
	// built with cmd first ({cmd:'NODE_CLUSTER', ...}), and the cluster
	// protocol exchanges a few of them per connection, so reading the
	// field in place saves a full decode on the hand-off path.
	if rest, ok := bytes.CutPrefix(raw, []byte(`{"cmd":"`)); ok {
		if end := bytes.IndexByte(rest, '"'); end >= 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			return string(rest[:end])
		}
	}
	var h struct {
		Cmd json.RawMessage `json:"cmd"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(h.Cmd, &s) != nil {
		return ""
	}
	return s
}

// Internal reports whether Node treats the message as its own (a "cmd"
// longer than five characters starting with "NODE_", as isInternal does):
// such messages go to 'internalMessage', never to the app's 'message'.
func (m Message) Internal() bool {
	cmd := m.Cmd()
	return len(cmd) > 5 && strings.HasPrefix(cmd, "NODE_")
}

// Ready reports whether the message is the bare string "ready", which is
// how apps tell PM2 they are ready (process.send('ready'), wait_ready).
func (m Message) Ready() bool {
	var s string
	return json.Unmarshal(m.Raw, &s) == nil && s == "ready"
}

// Recv returns the next message from the peer, internal ones included (see
// Message.Internal). NODE_HANDLE_ACK and NODE_HANDLE_NACK are consumed here.
// A NODE_HANDLE is ACKed before Recv returns it with its descriptor attached,
// or NACKed and skipped when its descriptor did not arrive.
//
// Errors: io.EOF when the peer closed its end; ErrClosed after Close;
// ErrLineTooLong (the channel is then closed); an error wrapping
// ErrBadMessage for an invalid line, after which Recv may be called again.
func (c *Channel) Recv() (Message, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.unread.Store(c.off < len(c.buf)) // the previous message is dealt with
	for {
		line, err := c.readLine()
		if err != nil {
			return Message{}, err
		}
		m, ok, err := c.handleLine(line)
		if err != nil || ok {
			return m, err
		}
	}
}

// handleLine interprets one line; ok is false for lines consumed here.
func (c *Channel) handleLine(line []byte) (m Message, ok bool, err error) {
	line = bytes.TrimSpace(line) // Node's JSON.parse tolerates "\r"
	if len(line) == 0 || !json.Valid(line) {
		if len(line) > 80 {
			line = line[:80]
		}
		return Message{}, false, fmt.Errorf("%w: %q", ErrBadMessage, line)
	}
	m = Message{Raw: json.RawMessage(line)}
	switch cmd := m.Cmd(); cmd {
	case "NODE_HANDLE_ACK", "NODE_HANDLE_NACK":
		c.acked(cmd == "NODE_HANDLE_ACK")
		return Message{}, false, nil
	case "NODE_HANDLE":
		var env struct {
			Type string          `json:"type"`
			Msg  json.RawMessage `json:"msg"`
		}
		json.Unmarshal(line, &env) // a malformed envelope still owns an fd
		f := c.popFD()
		if f == nil {
			// The peer keeps everything it sends after a handle until it
			// hears back, so answer even though there is nothing to deliver.
			c.write(nackLine, -1)
			return Message{}, false, nil
		}
		if err := c.write(ackLine, -1); err != nil {
			f.Close()
			return Message{}, false, err
		}
		if len(env.Msg) == 0 {
			env.Msg = json.RawMessage("null")
		}
		return Message{Raw: env.Msg, FD: f, HandleType: env.Type}, true, nil
	}
	return m, true, nil
}

// Unread reports whether something the peer sent has not been dealt with
// yet: it waits in the socket, or Recv has read it and the message it
// returned is still being handled (until the next Recv). A primary uses it
// to tell a worker whose answer is already on the way from one that is
// still busy.
func (c *Channel) Unread() bool {
	if c.unread.Load() {
		return true
	}
	n := 0
	c.rc.Control(func(s uintptr) { n, _ = unix.IoctlGetInt(int(s), ioctlInq) })
	return n > 0
}

func (c *Channel) popFD() *os.File {
	c.fdmu.Lock()
	defer c.fdmu.Unlock()
	if len(c.fds) == 0 {
		return nil
	}
	f := c.fds[0]
	c.fds = c.fds[1:]
	return f
}

// readLine returns the next complete line (a copy, without '\n').
func (c *Channel) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.scan:], '\n'); i >= 0 {
			end := c.scan + i
			line := bytes.Clone(c.buf[c.off:end])
			c.off, c.scan = end+1, end+1
			return line, nil
		}
		c.scan = len(c.buf)
		if len(c.buf)-c.off > maxLine {
			c.Close()
			return nil, ErrLineTooLong
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads once from the socket into buf, queueing any descriptors.
func (c *Channel) fill() error {
	if c.off == len(c.buf) && cap(c.buf) > keepBuf {
		c.buf, c.off, c.scan = nil, 0, 0 // a big message is gone: so is its buffer
	}
	if c.off > 0 { // drop consumed lines before reading more
		n := copy(c.buf, c.buf[c.off:])
		c.buf = c.buf[:n]
		c.scan -= c.off
		c.off = 0
	}
	if cap(c.buf)-len(c.buf) < readChunk {
		nb := make([]byte, len(c.buf), 2*cap(c.buf)+readChunk)
		copy(nb, c.buf)
		c.buf = nb
	}
	space := c.buf[len(c.buf):cap(c.buf)]
	var n, oobn, flags int
	var rerr error
	err := c.rc.Read(func(s uintptr) bool {
		c.unread.Store(true) // before the data leaves the socket (see Unread)
		for {
			// MSG_CMSG_CLOEXEC: a received socket must not leak into
			// children spawned before the caller gets to it.
			n, oobn, flags, rerr = recvmsg(int(s), space, c.oob)
			if rerr != unix.EINTR {
				if rerr == unix.EAGAIN {
					c.unread.Store(false)
				}
				return rerr != unix.EAGAIN
			}
		}
	})
	if c.closed.Load() || errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("nodeipc: read: %w", err)
	}
	if rerr != nil {
		if rerr == unix.ECONNRESET {
			return io.EOF
		}
		return fmt.Errorf("nodeipc: read: %w", rerr)
	}
	if oobn > 0 {
		c.takeFDs(c.oob[:oobn], flags&unix.MSG_CTRUNC != 0)
	}
	if n == 0 {
		return io.EOF
	}
	c.buf = c.buf[:len(c.buf)+n]
	return nil
}

// takeFDs queues the descriptors in one recvmsg's control data. The kernel
// attaches one sendmsg's SCM_RIGHTS to one read, and the line that owns them
// is parsed after every line already buffered, so a FIFO pairs each fd with
// its NODE_HANDLE line. When the control data was truncated, the fds that
// did arrive are closed and a nil placeholder makes that line get a NACK.
func (c *Channel) takeFDs(oob []byte, truncated bool) {
	var got []int
	if msgs, err := unix.ParseSocketControlMessage(oob); err == nil {
		for i := range msgs {
			if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				got = append(got, fds...)
			}
		}
	}
	c.fdmu.Lock()
	defer c.fdmu.Unlock()
	if truncated || c.closed.Load() {
		for _, fd := range got {
			unix.Close(fd)
		}
		if truncated && !c.closed.Load() {
			c.fds = append(c.fds, nil)
		}
		return
	}
	for _, fd := range got {
		c.fds = append(c.fds, os.NewFile(uintptr(fd), "nodeipc-handle"))
	}
}
