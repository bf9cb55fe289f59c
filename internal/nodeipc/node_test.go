package nodeipc

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func isBad(err error) bool { return errors.Is(err, ErrBadMessage) }

func TestNodeMessagesBothWays(t *testing.T) {
	c := startNode(t, "echo")
	var hello struct{ Hello int }
	decode(t, recv(t, c.ch).Raw, &hello)
	if hello.Hello != c.cmd.Process.Pid {
		t.Fatalf("hello from pid %d, want %d", hello.Hello, c.cmd.Process.Pid)
	}
	big := strings.Repeat("x", 1<<20) // longer than any single read
	for _, v := range []any{
		map[string]any{"greet": "line\nbreak \u2028 é"},
		"a string",
		42,
		map[string]any{"big": big},
	} {
		if err := c.ch.Send(v); err != nil {
			t.Fatal(err)
		}
		var got struct{ Echo json.RawMessage }
		decode(t, recv(t, c.ch).Raw, &got)
		want, _ := json.Marshal(v)
		var a, b any
		json.Unmarshal(got.Echo, &a)
		json.Unmarshal(want, &b)
		if ja, _ := json.Marshal(a); string(ja) != string(want) {
			t.Fatalf("echo = %.80s, want %.80s", got.Echo, want)
		}
	}
}

func TestNodeHandles(t *testing.T) {
	c := startNode(t, "serve")
	ms := recvLoop(c.ch)

	// Child to parent: a listening socket, ACKed by Recv; the child's next
	// message only comes after that ACK.
	m := next(t, ms)
	if m.FD == nil || m.HandleType != "net.Server" {
		t.Fatalf("got %s fd=%v type=%q, want a net.Server handle", m.Raw, m.FD, m.HandleType)
	}
	var p struct{ Port int }
	decode(t, m.Raw, &p)
	flags, err := unix.FcntlInt(m.FD.Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received fd flags %#x, %v: want FD_CLOEXEC", flags, err)
	}
	sa, err := unix.Getsockname(int(m.FD.Fd()))
	if in, ok := sa.(*unix.SockaddrInet4); err != nil || !ok || in.Port != p.Port {
		t.Errorf("received socket is %v, %v; want 127.0.0.1:%d", sa, err, p.Port)
	}
	m.FD.Close()
	if m := next(t, ms); string(m.Raw) != `{"after":1}` {
		t.Fatalf("after the handle got %s", m.Raw)
	}

	// Parent to child: a listening socket the child serves on.
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acked := make(chan error, 1)
	if err := c.ch.SendHandle(map[string]int{"n": 1}, ln, "net.Native", func(err error) { acked <- err }); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ms); string(m.Raw) != `{"serving":{"n":1}}` {
		t.Fatalf("got %s", m.Raw)
	}
	if err := <-acked; err != nil {
		t.Fatalf("SendHandle: %v", err)
	}
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.HasPrefix(string(b), "served by ") {
		t.Fatalf("child answered %q", b)
	}
}

func TestNodeJunkDoesNotHurtParent(t *testing.T) {
	c := startNode(t, "junk")
	var bad int
	for {
		m, err := c.ch.Recv()
		if isBad(err) {
			bad++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Raw) != `{"ok":1}` {
			t.Fatalf("got %s", m.Raw)
		}
		break
	}
	if bad != 3 {
		t.Errorf("%d bad lines reported, want 3", bad)
	}
	// The channel still works in both directions.
	if err := c.ch.Send("still there"); err != nil {
		t.Fatal(err)
	}
}

func TestNodeCloseDisconnectsChild(t *testing.T) {
	c := startNode(t, "disconnect")
	if m := recv(t, c.ch); !m.Ready() || m.Internal() {
		t.Fatalf("got %s, want the 'ready' string", m.Raw)
	}
	if err := c.ch.Close(); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, c); code != 7 {
		t.Fatalf("child exit code %d, want 7 (from its 'disconnect' handler)", code)
	}
	if _, err := c.ch.Recv(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if err := c.ch.Send(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestNodeExitIsEOF(t *testing.T) {
	c := startNode(t, "echo")
	recv(t, c.ch)
	c.cmd.Process.Kill()
	for {
		_, err := c.ch.Recv()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("Recv after the child died: %v, want io.EOF", err)
		}
	}
}
