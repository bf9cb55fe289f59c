package cli_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

var pidRe = regexp.MustCompile(`pid (\d+)`)

// get does one request on a new connection and returns the answering pid.
func get(url string) (int, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	m := pidRe.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("no pid in %q", b)
	}
	return strconv.Atoi(string(m[1]))
}

// load sends requests on new connections from conc goroutines until stop
// is closed, and counts answers per pid and failures by kind.
type load struct {
	mu      sync.Mutex
	perPID  map[int]int
	refused int
	other   []error
	wg      sync.WaitGroup
	stop    chan struct{}
}

func startLoad(url string, conc int) *load {
	l := &load{perPID: map[int]int{}, stop: make(chan struct{})}
	for range conc {
		l.wg.Go(func() {
			for n := 0; n < 100_000; n++ { // bounded, whatever happens
				select {
				case <-l.stop:
					return
				default:
				}
				pid, err := get(url)
				l.mu.Lock()
				switch {
				case err == nil:
					l.perPID[pid]++
				case errors.Is(err, syscall.ECONNREFUSED):
					l.refused++
				default:
					l.other = append(l.other, err)
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *load) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.perPID {
		n += c
	}
	return n
}

// until waits for n more successful requests.
func (l *load) until(t *testing.T, n int) {
	t.Helper()
	target := l.total() + n
	deadline := time.Now().Add(20 * time.Second)
	for l.total() < target {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d requests", l.total())
		}
		time.Sleep(time.Millisecond)
	}
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

func TestSharedPort(t *testing.T) {
	py := filepath.Join(repoRoot(t), "examples", "python", "app.py")
	for _, tc := range []struct {
		name string
		args []string
		mode string
	}{
		{"socket activation, python", []string{"start", py, "-i", "2"}, "socket/shared"},
		{"proxy, python -m http.server $PORT", []string{"start", "python3 -m http.server $PORT --bind 127.0.0.1", "--name", "app", "-i", "2", "--exec-mode", "proxy"}, "proxy/rr"},
		{"proxy least connections, python", []string{"start", py, "-i", "2", "--exec-mode", "proxy", "--sched", "leastconn"}, "proxy/leastconn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			port := testport.Free(t)
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			out := h.ok(append(tc.args, "--port", strconv.Itoa(port))...)
			if !strings.Contains(out, tc.mode) {
				t.Errorf("table does not show mode %s:\n%s", tc.mode, out)
			}
			insts := h.await("both online", allStatus(2, tend.StatusOnline))
			if insts[0].Port != port {
				t.Fatalf("instances: %+v", insts)
			}
			if strings.HasPrefix(tc.args[1], "python3 -m") {
				// http.server names no pid: check the port answers at all.
				for range 20 {
					if _, err := http.Get(url); err != nil {
						t.Fatal(err)
					}
				}
				if c := h.ls(); c[0].Connections+c[1].Connections < 20 || c[0].Connections == 0 || c[1].Connections == 0 {
					t.Errorf("connections handed out: %d and %d, want both > 0 and 20 in all", c[0].Connections, c[1].Connections)
				}
				return
			}
			seen := map[int]int{}
			for range 40 {
				pid, err := get(url)
				if err != nil {
					t.Fatal(err)
				}
				seen[pid]++
			}
			// Proxy mode spreads connections itself; with a shared socket the
			// kernel decides and one busy instance may take them all.
			if len(seen) != 2 && !strings.HasPrefix(tc.mode, "socket") {
				t.Errorf("answers came from %v, want both instances", seen)
			}

			// kill -9 one instance under load: nobody is refused; only
			// the requests that instance held in flight may fail.
			const conc = 4
			l := startLoad(url, conc)
			l.until(t, 50)
			// The victim is the instance that served most, so the other
			// one must take over its share.
			victim, slot := insts[0].PID, 0
			if seen[insts[1].PID] > seen[victim] {
				victim, slot = insts[1].PID, 1
			}
			syscall.Kill(victim, syscall.SIGKILL)
			h.await("the instance restarted", func(in []tend.Instance) bool {
				return in[slot].PID != victim && in[slot].PID != 0 && in[slot].Status == tend.StatusOnline
			})
			l.until(t, 100)
			l.end()
			if len(l.perPID) < 2 {
				t.Errorf("only %v answered around the kill; the other instance should have taken over", l.perPID)
			}
			if l.refused > 0 {
				t.Errorf("%d connections refused while an instance was killed", l.refused)
			}
			if len(l.other) > conc {
				t.Errorf("%d requests failed, more than the %d one instance can hold: %v", len(l.other), conc, l.other)
			}
			t.Logf("%d requests, %d failed (%v), per pid %v", l.total(), len(l.other), l.other, l.perPID)
		})
	}
}

func TestPortInUse(t *testing.T) {
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	py := filepath.Join(repoRoot(t), "examples", "python", "app.py")
	errOut := h.fail(1, "start", py, "-i", "2", "--port", strconv.Itoa(port))
	want := fmt.Sprintf("port %d is already in use", port)
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
	if insts := h.ls(); len(insts) != 0 {
		t.Errorf("a failed start left %+v", insts)
	}
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestGunicorn runs Debian's gunicorn as a tend cluster: it takes the shared
// socket by systemd socket activation and says READY=1 by sd_notify, so a
// reload is gated on it.
func TestGunicorn(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	dir := filepath.Join(repoRoot(t), "examples", "python")
	// gunicorn drains on SIGTERM (SIGINT, PM2's default, is its quick
	// stop), and --wait-ready waits for its READY=1 however slow it boots.
	h.ok("start", "gunicorn --workers 2 wsgi:app", "--name", "g", "--cwd", dir, "-i", "2", "--port", strconv.Itoa(port),
		"--kill-signal", "SIGTERM", "--wait-ready", "--listen-timeout", "30s")
	h.await("online", allStatus(2, tend.StatusOnline))
	l := startLoad(url, 4)
	l.until(t, 100)
	h.ok("reload", "g")
	l.until(t, 100)
	l.end()
	if n := l.refused + len(l.other); n != 0 {
		t.Errorf("%d requests failed while gunicorn reloaded: %v", n, l.other)
	}
	if rep := lastReload(t, h, "g"); rep == nil || !rep.OK || rep.Steps[0].ReadyBy != "notify" {
		t.Errorf("reload report = %+v, want ready by sd_notify", rep)
	}
	t.Logf("%d requests from %d gunicorn workers", l.total(), len(l.perPID))
}

// TestRelistenKeepsHostAndPort: a Node server that closes and listens
// again on --port keeps --host's address, and the port stays tend's
// meanwhile (it holds --port for the app's life).
func TestRelistenKeepsHostAndPort(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	script := filepath.Join(repoRoot(t), "internal", "cli", "testdata", "relisten.js")
	h.ok("start", script, "-i", "1", "--port", strconv.Itoa(port), "--host", "127.0.0.1")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	address := func() string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Fields(string(b))[0]
	}
	if a := address(); a != "127.0.0.1" {
		t.Fatalf("the server listens on %s, want --host 127.0.0.1", a)
	}
	h.ok("send", "relisten", `"relisten"`)
	h.poll("the server listening again", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.home, "logs", "relisten-out-0.log"))
		return strings.Contains(string(b), "relistened")
	})
	if a := address(); a != "127.0.0.1" {
		t.Errorf("after listening again the server is on %s, want --host 127.0.0.1", a)
	}
	// Nothing of tend's listens on another address of the port.
	if c, err := net.DialTimeout("tcp6", fmt.Sprintf("[::1]:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d answers on ::1: it was bound anew on every address", port)
	}
}

// TestRelistenOnAnotherAddress: a Node server that closes on --port and
// listens there again on another address binds it, as under Node (the
// socket tend kept for the port has no worker left and goes).
func TestRelistenOnAnotherAddress(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	script := filepath.Join(repoRoot(t), "internal", "cli", "testdata", "relisten.js")
	h.ok("start", script, "-i", "1", "--port", strconv.Itoa(port))
	h.poll("the server listening", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	h.ok("send", "relisten", `"loopback"`)
	var log string
	h.poll("the server listening again", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.home, "logs", "relisten-out-0.log"))
		log = string(b)
		return strings.Contains(log, "relistened") || strings.Contains(log, "error")
	})
	if !strings.Contains(log, "relistened") {
		t.Fatalf("listen on 127.0.0.1 after close: %s", log)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if a := strings.Fields(string(b))[0]; a != "127.0.0.1" {
		t.Errorf("the server listens on %s, want 127.0.0.1", a)
	}
}
