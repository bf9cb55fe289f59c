package sockets

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"golang.org/x/sys/unix"
)

// helperEnv selects a helper role when the test binary is re-executed.
const helperEnv = "TEND_SOCKETS_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hold":
		// Hold a listener until stdin closes, printing its port.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	case "flags3":
		// Report the flags of fd 3 without touching them (no os.NewFile,
		// no net.FileListener: both may set O_NONBLOCK), then wait.
		fl, err := unix.FcntlInt(3, unix.F_GETFL, 0)
		fmt.Println(fl&unix.O_NONBLOCK != 0, err)
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}
	os.Exit(2)
}

// helper starts the test binary in a helper role with a pipe on stdin that
// keeps it alive; it returns the first line it prints.
func helper(t *testing.T, role string, extra ...*os.File) (*exec.Cmd, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+role)
	cmd.ExtraFiles = extra
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper %s: %v", role, err)
	}
	return cmd, strings.TrimSpace(line)
}

func TestListen(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := Listen("tcp", addr)
			if err != nil {
				if addr[0] == '[' {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer ln.Close()
			rc, _ := ln.SyscallConn()
			var v int
			rc.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR) })
			if v == 0 {
				t.Error("SO_REUSEADDR not set")
			}
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
}

func TestListenBadInput(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp", "127.0.0.1:0"},
		{"tcp", "127.0.0.1"},
		{"tcp", "127.0.0.1:99999"},
		{"tcp", "127.0.0.1:http-alt"},
	} {
		_, err := Listen(tc.network, tc.addr)
		if tend.ErrorCode(err) != tend.EINVALID {
			t.Errorf("Listen(%q, %q) = %v (code %s), want %s", tc.network, tc.addr, err, tend.ErrorCode(err), tend.EINVALID)
		}
	}
}

// TestListenPortInUse holds a port in a child process and checks that the
// error names that child.
func TestListenPortInUse(t *testing.T) {
	cmd, port := helper(t, "hold")
	_, err := Listen("tcp", "127.0.0.1:"+port)
	if tend.ErrorCode(err) != tend.ECONFLICT {
		t.Fatalf("err = %v (code %s), want %s", err, tend.ErrorCode(err), tend.ECONFLICT)
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
	want := fmt.Sprintf("port %s is already in use by pid %d (%s); stop it or choose another --port",
		port, cmd.Process.Pid, strings.TrimSpace(string(comm)))
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
}

// TestListenErrorMessages checks the wording through injected errors: the
// tests may run as root, where a privileged port binds fine, and /proc may
// hide another user's processes.
func TestListenErrorMessages(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	found := func(int) (holder, bool) { return holder{PID: 1234, Comm: "python3"}, true }
	hidden := func(int) (holder, bool) { return holder{}, false }
	for _, tc := range []struct {
		name   string
		port   int
		err    error
		holder func(int) (holder, bool)
		code   tend.Code
		msg    string
	}{
		{"in use, holder known", 8000, opErr(syscall.EADDRINUSE), found, tend.ECONFLICT,
			"port 8000 is already in use by pid 1234 (python3); stop it or choose another --port"},
		{"in use, holder hidden", 8000, opErr(syscall.EADDRINUSE), hidden, tend.ECONFLICT,
			"port 8000 is already in use; stop the program that holds it or choose another --port"},
		{"privileged", 80, opErr(syscall.EACCES), hidden, tend.EINVALID,
			"binding port 80 needs root or CAP_NET_BIND_SERVICE; use a port of 1024 or above"},
		{"foreign address", 8000, opErr(syscall.EADDRNOTAVAIL), hidden, tend.EINVALID,
			"cannot listen on 10.9.9.9:8000: the address is not one of this machine's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := listenError("10.9.9.9:"+strconv.Itoa(tc.port), tc.port, tc.err, "choose another --port", tc.holder)
			if tend.ErrorCode(err) != tc.code || err.Error() != tc.msg {
				t.Errorf("got %s %q\nwant %s %q", tend.ErrorCode(err), err, tc.code, tc.msg)
			}
			// The errno stays for whoever needs it: a Node worker's
			// listen() gets it as its error's code.
			var want syscall.Errno
			errors.As(tc.err, &want)
			if !errors.Is(err, want) {
				t.Errorf("the message lost errno %v", want)
			}
		})
	}
	// Anything else keeps its cause for the logs.
	err := listenError("x:1", 1, opErr(syscall.EMFILE), "choose another --port", hidden)
	if !errors.Is(err, syscall.EMFILE) {
		t.Errorf("unexpected error lost its cause: %v", err)
	}
}

// TestExtraFilesKeepsNonBlocking proves that handing DupFD's copy to a child
// through exec.Cmd.ExtraFiles leaves tend's listening socket non-blocking,
// while the child runs and after it exits.
func TestExtraFilesKeepsNonBlocking(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	mustNonBlocking(t, ln, "before spawning")

	f, err := DupFD(ln)
	if err != nil {
		t.Fatal(err)
	}
	cmd, line := helper(t, "flags3", f)
	f.Close() // the child has its own copy now
	mustNonBlocking(t, ln, "with the child running")
	if line != "true <nil>" {
		t.Errorf("child saw fd 3 as %q, want non-blocking", line)
	}

	// The child shares the socket: a connection queued now is accepted by
	// tend, proving fd 3 was the same socket and nothing broke.
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	cmd.Process.Kill()
	cmd.Wait()
	mustNonBlocking(t, ln, "after the child exited")
}

// TestFileThenFdIsTheTrap documents why DupFD exists: the obvious
// ln.File() + ExtraFiles path makes the shared socket blocking. It only
// logs if a future Go stops doing so.
func TestFileThenFdIsTheTrap(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	nb, err := NonBlocking(ln)
	if err != nil {
		t.Fatal(err)
	}
	if nb {
		t.Logf("%s no longer clears O_NONBLOCK through ln.File()+ExtraFiles", runtime.Version())
	} else {
		t.Logf("%s: ln.File()+ExtraFiles made the shared socket blocking, as expected", runtime.Version())
	}
}

func mustNonBlocking(t *testing.T, l syscall.Conn, when string) {
	t.Helper()
	nb, err := NonBlocking(l)
	if err != nil {
		t.Fatal(err)
	}
	if !nb {
		t.Fatalf("listening socket is blocking %s", when)
	}
}

// TestFreePort: ports outside the ephemeral range, free, never the same
// twice in a while.
func TestFreePort(t *testing.T) {
	first, last := portRange()
	seen := map[int]bool{}
	for range 50 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < first || port > last {
			t.Fatalf("port %d outside %d-%d", port, first, last)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("port %d is not free: %v", port, err)
		}
		l.Close()
	}
}
