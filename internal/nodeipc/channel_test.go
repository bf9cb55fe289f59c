package nodeipc

import (
	"bytes"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawPeer is the other end of a pair, driven byte by byte.
type rawPeer struct {
	t  *testing.T
	fd int
	r  []byte // read but not yet consumed
	fs []int  // fds received, in order
}

func newRawPair(t *testing.T) (*Channel, *rawPeer) {
	t.Helper()
	ch, end, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(end.Fd())) // Fd() is fine here: nobody else shares this end
	if err != nil {
		t.Fatal(err)
	}
	end.Close()
	t.Cleanup(func() { ch.Close(); unix.Close(fd) })
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: int64(testTimeout / time.Second)})
	return ch, &rawPeer{t: t, fd: fd}
}

func (p *rawPeer) write(s string, fd int) {
	p.t.Helper()
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	if err := unix.Sendmsg(p.fd, []byte(s), oob, nil, 0); err != nil {
		p.t.Fatal(err)
	}
}

// line returns the next line and how many fds have arrived so far.
func (p *rawPeer) line() (string, int) {
	p.t.Helper()
	for {
		if i := bytes.IndexByte(p.r, '\n'); i >= 0 {
			l := string(p.r[:i])
			p.r = p.r[i+1:]
			return l, len(p.fs)
		}
		buf, oob := make([]byte, 1<<16), make([]byte, 256)
		n, oobn, _, _, err := unix.Recvmsg(p.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil || n == 0 {
			p.t.Fatalf("peer read: n=%d err=%v", n, err)
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for i := range msgs {
				fds, _ := unix.ParseUnixRights(&msgs[i])
				p.fs = append(p.fs, fds...)
			}
		}
		p.r = append(p.r, buf[:n]...)
	}
}

// quiet reports whether nothing arrives within d. Only used to show that
// something is held back; a false pass is impossible, a slow machine can
// at worst make it miss a bug.
func (p *rawPeer) quiet(d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	n, _ := unix.Poll(fds, int(d/time.Millisecond))
	return n == 0 && len(p.r) == 0
}

func TestFraming(t *testing.T) {
	ch, p := newRawPair(t)
	// Split and merged writes, CRLF, and non-object messages.
	p.write(`{"a":`, -1)
	p.write("1}\r\n\"ready\"\n42\n{\"cmd\":\"NODE_CLUSTER\",\"act\":\"online\"}\n", -1)
	for _, want := range []struct {
		raw      string
		internal bool
		ready    bool
	}{
		{`{"a":1}`, false, false},
		{`"ready"`, false, true},
		{`42`, false, false},
		{`{"cmd":"NODE_CLUSTER","act":"online"}`, true, false},
	} {
		m := recv(t, ch)
		if string(m.Raw) != want.raw || m.Internal() != want.internal || m.Ready() != want.ready {
			t.Errorf("got %s internal=%v ready=%v, want %+v", m.Raw, m.Internal(), m.Ready(), want)
		}
	}
	// Whatever is sent becomes exactly one line.
	ch.Send(map[string]string{"s": "two\nlines"})
	ch.Send(nil)
	if l, _ := p.line(); l != `{"s":"two\nlines"}` {
		t.Errorf("line %q", l)
	}
	if l, _ := p.line(); l != `null` {
		t.Errorf("line %q", l)
	}
	if err := ch.Send(func() {}); err == nil {
		t.Error("Send(func) succeeded")
	}
}

func TestJunkAndOversizedLines(t *testing.T) {
	defer func(n int) { maxLine = n }(maxLine)
	maxLine = 1 << 10
	ch, p := newRawPair(t)
	p.write("\n  \nnope\n{\"a\":1}{\"b\":2}\n{\"ok\":1}\n", -1)
	for range 4 {
		if _, err := ch.Recv(); !isBad(err) {
			t.Fatalf("Recv = %v, want ErrBadMessage", err)
		}
	}
	if m := recv(t, ch); string(m.Raw) != `{"ok":1}` {
		t.Fatalf("got %s", m.Raw)
	}
	p.write(`"`+strings.Repeat("x", 4<<10), -1) // no newline, past the cap
	if _, err := ch.Recv(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("Recv = %v, want ErrLineTooLong", err)
	}
	if err := ch.Send(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after overflow = %v, want ErrClosed", err)
	}
}

func listener(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestHandleHoldsBackLaterSends(t *testing.T) {
	ch, p := newRawPair(t)
	recvLoop(ch) // processes the peer's ACK
	done := make(chan error, 1)
	if err := ch.SendHandle(map[string]int{"x": 1}, listener(t), "net.Native", func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	ch.Send(map[string]int{"after": 1})
	if l, n := p.line(); l != `{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"x":1}}` || n != 1 {
		t.Fatalf("got %q with %d fds", l, n)
	}
	if !p.quiet(200 * time.Millisecond) {
		t.Fatal("a message overtook the unACKed handle")
	}
	p.write(`{"cmd":"NODE_HANDLE_ACK"}`+"\n", -1)
	if l, _ := p.line(); l != `{"after":1}` {
		t.Fatalf("got %q", l)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHandleNACK(t *testing.T) {
	// Like Node: one send plus up to MaxHandleRetransmissions resends.
	for _, tc := range []struct {
		nacks   int
		wantErr error
	}{
		{MaxHandleRetransmissions, nil},
		{MaxHandleRetransmissions + 1, ErrHandleNotReceived},
	} {
		ch, p := newRawPair(t)
		recvLoop(ch)
		done := make(chan error, 1)
		ch.SendHandle("h", listener(t), "net.Native", func(err error) { done <- err })
		ch.Send("next")
		for i := range MaxHandleRetransmissions + 1 {
			l, n := p.line()
			if !strings.Contains(l, `"NODE_HANDLE"`) || n != i+1 {
				t.Fatalf("send %d: %q with %d fds so far", i, l, n)
			}
			if i < tc.nacks {
				p.write(`{"cmd":"NODE_HANDLE_NACK"}`+"\n", -1)
			} else {
				p.write(`{"cmd":"NODE_HANDLE_ACK"}`+"\n", -1)
			}
		}
		if err := <-done; !errors.Is(err, tc.wantErr) {
			t.Fatalf("%d NACKs: done(%v), want %v", tc.nacks, err, tc.wantErr)
		}
		if l, _ := p.line(); l != `"next"` {
			t.Fatalf("%d NACKs: queued message = %q", tc.nacks, l)
		}
	}
}

func TestRecvHandle(t *testing.T) {
	ch, p := newRawPair(t)
	ms := recvLoop(ch)
	// No fd: NACK and nothing delivered. The reply is awaited before the
	// next write because the kernel may merge an fd-less write with the
	// following one into one read, and fds pair with NODE_HANDLE lines in
	// order (as in Node, whose senders never write an fd-less NODE_HANDLE).
	p.write(`{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"n":1}}`+"\n", -1)
	if l, _ := p.line(); l != `{"cmd":"NODE_HANDLE_NACK"}` {
		t.Fatalf("reply to a handle without fd: %q", l)
	}
	ln := listener(t)
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.write(`{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"n":2}}`+"\n", int(f.Fd()))
	m := next(t, ms)
	if string(m.Raw) != `{"n":2}` || m.FD == nil || m.HandleType != "net.Native" {
		t.Fatalf("got %s fd=%v type=%q", m.Raw, m.FD, m.HandleType)
	}
	defer m.FD.Close()
	if l, _ := p.line(); l != `{"cmd":"NODE_HANDLE_ACK"}` {
		t.Fatalf("reply to a handle: %q", l)
	}
	flags, _ := unix.FcntlInt(m.FD.Fd(), unix.F_GETFD, 0)
	if flags&unix.FD_CLOEXEC == 0 {
		t.Error("received fd is not close-on-exec")
	}
}

func TestStripEnv(t *testing.T) {
	got := StripEnv([]string{"A=1", "NODE_CHANNEL_FD=4", "NODE_CHANNEL_SERIALIZATION_MODE=advanced", "NODE_UNIQUE_ID=2", "NODE_OPTIONS=x", "LISTEN_FDS=1"})
	if strings.Join(got, " ") != "A=1 NODE_OPTIONS=x LISTEN_FDS=1" {
		t.Fatalf("StripEnv = %q", got)
	}
	if strings.Join(Env(3), " ") != "NODE_CHANNEL_FD=3 NODE_CHANNEL_SERIALIZATION_MODE=json" {
		t.Fatalf("Env = %q", Env(3))
	}
}

// TestGoChild runs this test binary as a child that uses FromFD, the way
// tend's Go cluster package will.
func TestGoChild(t *testing.T) {
	c := startChild(t, []string{"NODEIPC_TEST_CHILD=1"}, os.Args[0], "-test.run=^$")
	ms := recvLoop(c.ch)
	if m := next(t, ms); !m.Ready() {
		t.Fatalf("got %s", m.Raw)
	}
	c.ch.SendHandle(map[string]int{"n": 1}, listener(t), "net.Native", nil)
	c.ch.Send("ping")
	if m := next(t, ms); string(m.Raw) != `{"handle":"net.Native","msg":{"n":1}}` {
		t.Fatalf("got %s", m.Raw)
	}
	if m := next(t, ms); string(m.Raw) != `{"echo":"ping"}` {
		t.Fatalf("got %s", m.Raw)
	}
	c.ch.Close()
	if code := waitExit(t, c); code != 0 {
		t.Fatalf("child exit %d", code)
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("NODEIPC_TEST_CHILD") == "1" {
		goChild()
		return
	}
	os.Exit(m.Run())
}

func goChild() {
	ch, err := FromFD(3)
	if err != nil {
		panic(err)
	}
	ch.Send("ready")
	for {
		m, err := ch.Recv()
		if err != nil {
			os.Exit(0) // EOF: the parent disconnected
		}
		if m.FD != nil {
			m.FD.Close()
			ch.Send(map[string]any{"handle": m.HandleType, "msg": m.Raw})
			continue
		}
		ch.Send(map[string]any{"echo": m.Raw})
	}
}

// A line the socket cannot take at once (the peer is not reading) goes out
// in pieces: the sender does not wait for the peer, and nothing else, not
// even the ACK that Recv writes meanwhile, lands inside the line.
func TestFullSocketKeepsLinesWhole(t *testing.T) {
	ch, p := newRawPair(t)
	msgs := recvLoop(ch)
	big := strings.Repeat("x", 4<<20) // far more than a socket buffer
	sent := make(chan error, 1)
	go func() { sent <- ch.Send(big) }()
	if err := result(t, sent, "Send, with the peer not reading"); err != nil {
		t.Fatal(err)
	}
	// The peer sends a handle, which Recv ACKs while the big line is still
	// going out (so the ACK waits); then a handle of ours is queued.
	p.write(`{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"y":2}}`+"\n", int(must(listener(t).File()).Fd()))
	ln := listener(t)
	fd := int(must(ln.File()).Fd())
	done := make(chan error, 1)
	if err := ch.SendFD([]byte(`{"z":3}`), fd, "net.Native", func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if l, _ := p.line(); l != `"`+big+`"` {
		t.Fatalf("the big line arrived broken (%d bytes)", len(l))
	}
	// The ACK and our handle may come in either order, each whole.
	var got []string
	for range 2 {
		l, _ := p.line()
		got = append(got, l)
	}
	slices.Sort(got)
	want := []string{`{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"z":3}}`, `{"cmd":"NODE_HANDLE_ACK"}`}
	if !slices.Equal(got, want) || len(p.fs) != 1 {
		t.Fatalf("got %q and %d fds, want %q and 1", got, len(p.fs), want)
	}
	p.write(`{"cmd":"NODE_HANDLE_ACK"}`+"\n", -1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := <-msgs; m.FD == nil || string(m.Raw) != `{"y":2}` {
		t.Fatalf("received %s, fd %v", m.Raw, m.FD)
	} else {
		m.FD.Close()
	}
}

// Closing the channel while lines wait for the socket reports the queued
// handle as not delivered and leaves nothing stuck.
func TestCloseWithLinesWaiting(t *testing.T) {
	ch, _ := newRawPair(t)
	recvLoop(ch)
	if err := ch.Send(strings.Repeat("x", 4<<20)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := ch.SendHandle("h", listener(t), "net.Native", func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	ch.Close()
	if err := result(t, done, "the queued handle's done"); !errors.Is(err, ErrClosed) {
		t.Fatalf("done(%v), want ErrClosed", err)
	}
	if err := ch.Send("more"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// A handle written at once and awaiting its ACK when the channel closes is
// reported as not delivered (the writer goroutine, started only when
// needed, still cleans up).
func TestCloseWithHandleInFlight(t *testing.T) {
	ch, p := newRawPair(t)
	done := make(chan error, 1)
	if err := ch.SendHandle("h", listener(t), "net.Native", func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if l, n := p.line(); !strings.Contains(l, `"NODE_HANDLE"`) || n != 1 {
		t.Fatalf("got %q with %d fds", l, n)
	}
	ch.Close()
	if err := result(t, done, "the in-flight handle's done"); !errors.Is(err, ErrClosed) {
		t.Fatalf("done(%v), want ErrClosed", err)
	}
}
