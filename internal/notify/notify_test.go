//go:build linux

package notify

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T, path string) *Server {
	t.Helper()
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// shortPath returns a socket path in a fresh directory that fits sun_path
// whatever TMPDIR is.
func shortPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "tn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "0")
}

func receive(t *testing.T, s *Server) Message {
	t.Helper()
	select {
	case m, ok := <-s.Messages():
		if !ok {
			t.Fatal("Messages closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
	}
	return Message{}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"READY=1", "ready=true status=\"\" stopping=false mainpid=0"},
		{"READY=1\nSTATUS=serving on :8000\nMAINPID=42\n", "ready=true status=\"serving on :8000\" stopping=false mainpid=42"},
		{"STOPPING=1", "ready=false status=\"\" stopping=true mainpid=0"},
		{"garbage\n\nREADY=0\nSTATUS=a=b", "ready=false status=\"a=b\" stopping=false mainpid=0"},
	} {
		m := Parse([]byte(tc.in))
		got := fmt.Sprintf("ready=%v status=%q stopping=%v mainpid=%d", m.Ready, m.Status, m.Stopping, m.MainPID)
		if got != tc.want {
			t.Errorf("Parse(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if m := Parse([]byte("WATCHDOG=1\nX_CUSTOM=7")); !m.Watchdog || m.Fields["X_CUSTOM"] != "7" {
		t.Errorf("fields: %+v", m)
	}
}

func TestGoClient(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"path", ""},
		{"abstract", fmt.Sprintf("@tend-notify-test-%d", os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = shortPath(t)
			}
			s := listen(t, path)
			if tc.path == "" {
				fi, err := os.Stat(path)
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("socket mode: %v %v", fi.Mode(), err)
				}
			}
			t.Setenv("NOTIFY_SOCKET", s.Path())
			if err := Notify("READY=1\nSTATUS=serving"); err != nil {
				t.Fatal(err)
			}
			m := receive(t, s)
			if !m.Ready || m.Status != "serving" || m.PID != os.Getpid() {
				t.Errorf("got %+v, want ready, status serving, pid %d", m, os.Getpid())
			}
		})
	}
}

func TestNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET: %v", err)
	}
}

func TestPathTooLong(t *testing.T) {
	_, err := Listen("/tmp/" + strings.Repeat("x", 110))
	if err == nil || !strings.Contains(err.Error(), "sun_path") {
		t.Errorf("err = %v", err)
	}
}

// TestStaleSocketReplaced: a socket file left by a dead daemon must not
// stop the next one.
func TestStaleSocketReplaced(t *testing.T) {
	path := shortPath(t)
	s1, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s1.conn.Close() // a crash: the file stays behind
	s2 := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, s2); !m.Ready {
		t.Errorf("got %+v", m)
	}
}

func TestCloseEndsMessages(t *testing.T) {
	s := listen(t, shortPath(t))
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-s.Messages():
		if ok {
			t.Error("message after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Messages not closed")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

// run starts a real sender with NOTIFY_SOCKET set and returns its pid
// after it exits successfully.
func run(t *testing.T, s *Server, name string, args ...string) int {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+s.Path())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return cmd.Process.Pid
}

func TestPythonSender(t *testing.T) {
	s := listen(t, shortPath(t))
	pid := run(t, s, "python3", "-c", `
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=python up\nMAINPID=%d" % os.getpid(), os.environ["NOTIFY_SOCKET"])
`)
	m := receive(t, s)
	if !m.Ready || m.Status != "python up" || m.PID != pid || m.MainPID != pid {
		t.Errorf("got %+v, want ready from pid %d", m, pid)
	}
}

func TestSystemdNotify(t *testing.T) {
	s := listen(t, shortPath(t))
	run(t, s, "systemd-notify", "--ready", "--status=from systemd-notify")
	m := receive(t, s)
	if !m.Ready || m.Status != "from systemd-notify" {
		t.Errorf("got %+v", m)
	}
}
