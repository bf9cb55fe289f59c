package logfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendhq/tend/internal/private"
	"golang.org/x/sys/unix"
)

// TestSymlinkSwapRefused: a log in a directory the app's user can write is
// replaced by a symlink (to a file, or its directory to another): the
// sink notices within retryInterval, refuses to reopen through it, says so
// in Problem, and never writes to where the symlink points.
func TestSymlinkSwapRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		swap func(t *testing.T, out, target string)
	}{
		{"file", func(t *testing.T, out, target string) {
			os.Remove(out)
			if err := os.Symlink(filepath.Join(target, "victim"), out); err != nil {
				t.Fatal(err)
			}
			os.Lchown(out, 65534, 65534) // planted by another user
		}},
		{"directory", func(t *testing.T, out, target string) {
			dir := filepath.Dir(out)
			os.Rename(dir, dir+".old")
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
			os.Lchown(dir, 65534, 65534) // planted by another user
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := logPath(t, "victim")
			target := t.TempDir()
			victim := filepath.Join(target, "victim")
			os.WriteFile(victim, []byte("root's\n"), 0o600)
			s, clk := open(t, Options{OutPath: out})
			feed(t, s, Stdout, "before\n")
			tc.swap(t, out, target)
			clk.Add(retryInterval)
			feed(t, s, Stdout, "after\n")
			if p := s.Problem(); !strings.Contains(p, "symlink") {
				t.Errorf("Problem = %q, want the symlink named", p)
			}
			if b, _ := os.ReadFile(victim); string(b) != "root's\n" {
				t.Errorf("wrote through the symlink: %s = %q", victim, b)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(victim); string(b) != "root's\n" {
				t.Errorf("flush truncated through the symlink: %s = %q", victim, b)
			}
		})
	}
}

// TestFIFOLogRefused: a FIFO where the log goes is refused at once; it
// does not block the sink (and with it the daemon) waiting for a reader.
func TestFIFOLogRefused(t *testing.T) {
	out := logPath(t, "out.log")
	os.MkdirAll(filepath.Dir(out), 0o700)
	if err := unix.Mkfifo(out, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := open(t, Options{OutPath: out})
	feed(t, s, Stdout, "a\n")
	if p := s.Problem(); !strings.Contains(p, "not a regular file") {
		t.Errorf("Problem = %q, want the FIFO refused", p)
	}
}

// TestCompressRefusesSymlink: a symlink planted at the compressor's
// temporary file is not followed (the .gz.tmp would be truncated).
func TestCompressRefusesSymlink(t *testing.T) {
	target := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(target, []byte("root's\n"), 0o600)
	tmp := filepath.Join(t.TempDir(), "x.gz.tmp")
	os.Symlink(target, tmp)
	os.Lchown(tmp, 65534, 65534) // planted by another user
	if err := gzipTo(tmp, strings.NewReader("log\n")); !errors.Is(err, private.ErrSymlink) {
		t.Fatalf("gzipTo through a symlink: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "root's\n" {
		t.Errorf("truncated through the symlink: %q", b)
	}
}
