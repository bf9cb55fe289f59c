package cli_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

// portSockets describes pid's TCP sockets on port, read from /proc: the
// inode of its listening socket (0 if none), the connections waiting in
// that socket's accept queue (accepted by the kernel, not yet by the
// process), and the connections the process has accepted.
type portSockets struct {
	listen   string
	queued   int
	accepted int
}

func socketsOf(t *testing.T, pid, port int) portSockets {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("reading the fds of pid %d: %v", pid, err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var ps portSockets
	hexPort := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || !strings.HasSuffix(fs[1], hexPort) || !inodes[fs[9]] {
				continue
			}
			if fs[3] == "0A" { // TCP_LISTEN: rx_queue is the accept queue's length
				_, rx, _ := strings.Cut(fs[4], ":")
				n, _ := strconv.ParseInt(rx, 16, 64)
				ps.listen, ps.queued = fs[9], int(n)
			} else {
				ps.accepted++
			}
		}
		f.Close()
	}
	return ps
}

// TestReusePort runs 2 instances, each on a socket of its own in one
// SO_REUSEPORT group, in cluster mode (Node workers get theirs through the
// cluster protocol) and socket mode (fd 3, LISTEN_FDS), under a load of one request
// per new connection. A reload and a scale down fail no request. A kill -9
// fails at most the requests the killed process had accepted: the
// connections waiting in its socket's accept queue, which a closing
// SO_REUSEPORT socket would reset, move to the other instance's
// (net.ipv4.tcp_migrate_req, which tend sets as root).
func TestReusePort(t *testing.T) {
	root := repoRoot(t)
	for _, tc := range []struct {
		name, mode string
		args       []string
	}{
		{"cluster", "cluster/reuseport", []string{"start", filepath.Join(root, "examples", "node", "index.js")}},
		// The Go example, which drains on its stop signal (cluster.Serve):
		// examples/python/app.py drops what it serves when stopped.
		{"socket", "socket/reuseport", []string{"start", "", "--exec-mode", "socket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.args[1] == "" {
				hello, err := helloBin()
				if err != nil {
					t.Fatal(err)
				}
				tc.args[1] = hello
			}
			h := newHarness(t)
			port := testport.Free(t)
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			out := h.ok(append(tc.args, "--name", "app", "-i", "2", "--port", strconv.Itoa(port), "--sched", "reuseport")...)
			if !strings.Contains(out, tc.mode) {
				t.Errorf("table does not show %s:\n%s", tc.mode, out)
			}
			if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req"); err != nil || strings.TrimSpace(string(b)) != "1" {
				t.Fatalf("net.ipv4.tcp_migrate_req = %q (%v) after the start, want 1 (tend runs as root here)", b, err)
			}
			insts := h.await("both ready", func(in []tend.Instance) bool { return len(in) == 2 && in[0].Ready && in[1].Ready })
			a, b := socketsOf(t, insts[0].PID, port), socketsOf(t, insts[1].PID, port)
			if a.listen == "" || b.listen == "" || a.listen == b.listen {
				t.Fatalf("listening sockets of the instances: %q and %q; want one each, distinct", a.listen, b.listen)
			}
			seen := map[int]int{}
			for range 40 {
				pid, err := get(url)
				if err != nil {
					t.Fatal(err)
				}
				seen[pid]++
			}
			if len(seen) != 2 {
				t.Errorf("40 connections reached %v; the kernel should spread them over both sockets", seen)
			}

			const conc = 8
			t.Run("reload", func(t *testing.T) {
				l := startLoad(url, conc)
				l.until(t, 100)
				h.ok("reload", "app")
				l.until(t, 100)
				l.end()
				if n := l.refused + len(l.other); n != 0 {
					t.Errorf("%d of %d requests failed during the reload (%d refused): %v", n, l.total()+n, l.refused, l.other)
				}
			})
			t.Run("scale down", func(t *testing.T) {
				h.ok("scale", "app", "3")
				h.await("3 ready", func(in []tend.Instance) bool { return len(in) == 3 && in[2].Ready })
				l := startLoad(url, conc)
				l.until(t, 100)
				h.ok("scale", "app", "1")
				l.until(t, 100)
				l.end()
				if n := l.refused + len(l.other); n != 0 {
					t.Errorf("%d of %d requests failed while scaling down (%d refused): %v", n, l.total()+n, l.refused, l.other)
				}
				h.ok("scale", "app", "2")
				h.await("2 ready", func(in []tend.Instance) bool { return len(in) == 2 && in[0].Ready && in[1].Ready })
			})
			t.Run("kill -9", func(t *testing.T) {
				insts := h.ls()
				victim := insts[1].PID
				l := startLoad(url, conc)
				l.until(t, 50)
				// Stopped, the victim accepts nothing, so the connections
				// the kernel hashes to its socket wait in its queue; they
				// are what a closing socket would reset.
				if err := syscall.Kill(victim, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				var st portSockets
				h.poll("connections queued on the stopped instance's socket", func() bool {
					st = socketsOf(t, victim, port)
					return st.queued >= 2
				})
				// Frozen, the victim's counts cannot change before the kill.
				st = socketsOf(t, victim, port)
				if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				h.await("the instance restarted", func(in []tend.Instance) bool {
					return len(in) == 2 && in[1].PID != victim && in[1].PID != 0 && in[1].Ready
				})
				l.until(t, 100)
				l.end()
				t.Logf("at the kill: %d connections queued on the victim's socket, %d accepted by it; %d requests, %d refused, %d failed: %v",
					st.queued, st.accepted, l.total(), l.refused, len(l.other), l.other)
				if l.refused != 0 {
					t.Errorf("%d connections refused", l.refused)
				}
				if len(l.other) > st.accepted {
					t.Errorf("%d requests failed; only the %d the killed process had accepted may (the %d queued on its socket must move to the other instance)",
						len(l.other), st.accepted, st.queued)
				}
			})
		})
	}
}
