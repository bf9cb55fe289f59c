package sockets

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUnlistenHoldsPort checks the port holder of a SO_REUSEPORT group:
// once Unlisten, it takes no connection (all reach the group's other
// socket) but keeps the port from a socket outside the group.
func TestUnlistenHoldsPort(t *testing.T) {
	member, err := ListenGroup("tcp4", "127.0.0.1:0", "choose another")
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	addr := member.Addr().String()
	holder, err := ListenGroup("tcp4", addr, "choose another") // an explicit port, as --port is
	if err != nil {
		t.Fatalf("a second socket of the group: %v", err)
	}
	defer holder.Close()
	if err := Unlisten(holder); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		s, err := member.Accept() // blocks forever if the holder took one
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		c.Close()
	}
	member.Close()
	if _, err := net.Dial("tcp4", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("with only the holder left, dial = %v, want refused", err)
	}
	if ln, err := ListenFor("tcp4", addr, "choose another"); err == nil {
		ln.Close()
		t.Errorf("a socket outside the group bound %s, which the holder should keep", addr)
	}
	again, err := ListenGroup("tcp4", addr, "choose another")
	if err != nil {
		t.Fatalf("a new socket of the group (a restarted instance): %v", err)
	}
	again.Close()
}

func TestEnableMigration(t *testing.T) {
	dir := t.TempDir()
	if n := EnableMigration(filepath.Join(dir, "missing")); !strings.Contains(n, "Linux 5.14") {
		t.Errorf("without the sysctl: %q", n)
	}
	on := filepath.Join(dir, "on")
	os.WriteFile(on, []byte("1\n"), 0o600)
	if n := EnableMigration(on); n != "" {
		t.Errorf("with the sysctl at 1: %q, want nothing to say", n)
	}
	off := filepath.Join(dir, "off")
	os.WriteFile(off, []byte("0\n"), 0o600)
	n := EnableMigration(off)
	b, _ := os.ReadFile(off)
	if os.Geteuid() == 0 {
		if strings.TrimSpace(string(b)) != "1" || !strings.Contains(n, "set net.ipv4.tcp_migrate_req=1 (it was 0)") {
			t.Errorf("as root: sysctl %q, note %q; want it set to 1, and said", b, n)
		}
	} else if strings.TrimSpace(string(b)) != "0" || !strings.Contains(n, "sysctl -w net.ipv4.tcp_migrate_req=1") {
		t.Errorf("not root: sysctl %q, note %q; want it untouched and the fix named", b, n)
	}
}
