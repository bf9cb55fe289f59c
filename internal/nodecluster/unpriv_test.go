package nodecluster

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestPermitted: what an unprivileged worker may have the primary bind.
func TestPermitted(t *testing.T) {
	p := New(Options{Unprivileged: true, KeepPort: 80})
	open := New(Options{KeepPort: 80})
	for _, tc := range []struct {
		name    string
		network string
		port    int
		ok      bool
	}{
		{"the app's port", "tcp", 80, true},
		{"another privileged port", "tcp", 81, false},
		{"privileged UDP", NetUDP4, 53, false},
		{"an unprivileged port", "tcp4", 1024, true},
		{"any port", "tcp", 0, true},
		{"a unix socket", NetUnix, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.permitted(tc.network, tc.port)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, syscall.EACCES) {
				t.Errorf("unprivileged: %v, want ok=%v or EACCES", err, tc.ok)
			}
			if err := open.permitted(tc.network, tc.port); err != nil {
				t.Errorf("privileged workers: %v", err)
			}
		})
	}
}

// TestUnprivilegedUnixSocket: the worker of an unprivileged app that
// listens on a unix socket gets EACCES, as its own listen() in a
// directory it may not write would, and the primary creates no file.
func TestUnprivilegedUnixSocket(t *testing.T) {
	h := newHarnessWith(t, Options{Sched: SchedRR, Unprivileged: true})
	path := filepath.Join(t.TempDir(), "s.sock")
	h.start(1, "listen.cjs", "LISTEN="+path)
	if ev := h.waitKind(1, Error); !errors.Is(ev.Err, syscall.EACCES) {
		t.Fatalf("error event %+v, want EACCES", ev)
	}
	h.waitEvent("the app's EACCES", func(ev Event) bool {
		return ev.Kind == Message && string(ev.Msg) == `{"error":"EACCES"}`
	})
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("the primary bound %s for an unprivileged worker", path)
	}
}

// TestUnixSocketRemovedSafely: when the last worker closes its server on
// a unix socket, the primary removes the socket file it bound, but not
// through a symlink the app's user put in place of the socket's directory
// meanwhile (the primary may be root; the file there would be root's).
func TestUnixSocketRemovedSafely(t *testing.T) {
	for _, swap := range []bool{false, true} {
		t.Run("swapped="+strconv.FormatBool(swap), func(t *testing.T) {
			closed := make(chan string, 4)
			h := newHarnessWith(t, Options{Sched: SchedRR, Bound: func(key string, ln Socket) {
				if ln == nil {
					closed <- key
				}
			}})
			dir := t.TempDir()
			sock := filepath.Join(dir, "d", "s.sock")
			os.Mkdir(filepath.Dir(sock), 0o700)
			victims := t.TempDir()
			victim := filepath.Join(victims, "s.sock")
			os.WriteFile(victim, []byte("root's"), 0o600)
			h.start(1, "listen.cjs", "LISTEN="+sock)
			h.waitEvent("listening", func(ev Event) bool {
				return ev.Kind == Message && string(ev.Msg) == `{"listening":true}`
			})
			if swap {
				os.Rename(filepath.Dir(sock), filepath.Join(dir, "d.old"))
				if err := os.Symlink(victims, filepath.Dir(sock)); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.p.Send(1, json.RawMessage(`"close"`)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-closed:
			case <-time.After(testTimeout):
				t.Fatal("the primary did not close the socket")
			}
			if _, err := os.Stat(victim); err != nil {
				t.Errorf("the primary removed %s through a symlinked directory: %v", victim, err)
			}
			if !swap {
				if _, err := os.Lstat(sock); err == nil {
					t.Errorf("the socket %s is still there after its server closed", sock)
				}
			}
		})
	}
}
