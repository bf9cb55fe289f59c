package cluster_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/cluster"
	"github.com/tendhq/tend/internal/nodeipc"
	"github.com/tendhq/tend/internal/notify"
	"github.com/tendhq/tend/internal/rawhttp"
)

// servedBy returns the pid in a response of the "http" helper.
func servedBy(body string) string { return strings.Fields(body)[0] }

func TestRoundRobinBalance(t *testing.T) {
	const n, per = 4, 25
	h := newHarness(t, "http", cluster.RoundRobin, "ADDR=127.0.0.1:0")
	pids := map[string]bool{}
	for range n {
		pids[fmt.Sprint(h.fork(nil).PID())] = true
	}
	addr := h.waitListening(n)
	count := map[string]int{}
	for range n * per {
		body, err := get("http://" + addr.String())
		if err != nil {
			t.Fatal(err)
		}
		if !pids[servedBy(body)] {
			t.Fatalf("answer %q from a process that is not a worker", body)
		}
		count[servedBy(body)]++
	}
	if len(count) != n {
		t.Fatalf("%d workers served, want %d: %v", len(count), n, count)
	}
	for pid, c := range count {
		if c < per-1 || c > per+1 {
			t.Errorf("worker pid %s served %d connections, want %d±1: %v", pid, c, per, count)
		}
	}
}

func TestShared(t *testing.T) {
	const n = 3
	h := newHarness(t, "http", cluster.Shared, "ADDR=127.0.0.1:0")
	pids := map[string]bool{}
	for range n {
		pids[fmt.Sprint(h.fork(nil).PID())] = true
	}
	addr := h.waitListening(n)
	for range 30 {
		body, err := get("http://" + addr.String())
		if err != nil {
			t.Fatal(err)
		}
		if !pids[servedBy(body)] {
			t.Fatalf("answer %q from a process that is not a worker", body)
		}
	}
}

func TestRestartAfterKill9(t *testing.T) {
	h := newHarness(t, "http", cluster.RoundRobin, "ADDR=127.0.0.1:0")
	w1, w2 := h.fork(nil), h.fork(nil)
	addr := h.waitListening(2)
	if err := syscall.Kill(w1.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := h.next("exit of the killed worker", kind(cluster.Exit, w1))
	if ev.Signal != syscall.SIGKILL || ev.Code != -1 || w1.ExitedAfterDisconnect() {
		t.Fatalf("exit event %v (code %d, signal %v, exitedAfterDisconnect %v), want SIGKILL and a crash",
			ev, ev.Code, ev.Signal, w1.ExitedAfterDisconnect())
	}
	if ws := h.p.Workers(); len(ws) != 1 || ws[0] != w2 {
		t.Fatalf("workers after the kill: %v, want only worker %d", ws, w2.ID())
	}
	w3 := h.fork(nil) // what the seeds' exit handler does
	h.waitListening(1)
	seen := map[string]bool{}
	for range 10 {
		body, err := get("http://" + addr.String())
		if err != nil {
			t.Fatal(err)
		}
		seen[servedBy(body)] = true
	}
	if !seen[fmt.Sprint(w3.PID())] || !seen[fmt.Sprint(w2.PID())] || len(seen) != 2 {
		t.Fatalf("served by %v, want the survivor %d and the new worker %d", seen, w2.PID(), w3.PID())
	}
}

func TestDisconnectUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		sched     cluster.Sched
		keepAlive bool
	}{{cluster.RoundRobin, false}, {cluster.Shared, false}, {cluster.RoundRobin, true}, {cluster.Shared, true}} {
		sched := tc.sched
		t.Run(fmt.Sprintf("%s/keepalive=%v", sched, tc.keepAlive), func(t *testing.T) {
			h := newHarness(t, "http", sched, "ADDR=127.0.0.1:0")
			w1, w2 := h.fork(nil), h.fork(nil)
			addr := h.waitListening(2)
			url := "http://" + addr.String() + "/?sleep=20"

			var ok, failed atomic.Int64
			var firstErr atomic.Value
			var byW1 atomic.Int64
			stop := make(chan struct{})
			progress := make(chan struct{}, 1)
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				// With keep-alive each loop holds one connection and POSTs:
				// Go's client would retry a GET that failed on a reused
				// connection and hide a connection closed under a request.
				// It starts a new connection every 10 requests, as the
				// kernel may queue all of the first ones to one worker in
				// shared mode.
				fetch := func() (string, error) { return get(url) }
				if tc.keepAlive {
					tr := &http.Transport{MaxIdleConnsPerHost: 1}
					c := &http.Client{Timeout: testTimeout, Transport: tr}
					n := 0
					fetch = func() (string, error) {
						if n++; n%10 == 0 {
							tr.CloseIdleConnections()
						}
						return post(c, url)
					}
				}
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						body, err := fetch()
						if err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err)
							continue
						}
						if servedBy(body) == fmt.Sprint(w1.PID()) {
							byW1.Add(1)
						}
						ok.Add(1)
						select {
						case progress <- struct{}{}:
						default:
						}
					}
				}()
			}
			waitCount := func(n int64) {
				deadline := time.After(testTimeout)
				for ok.Load() < n || byW1.Load() == 0 {
					select {
					case <-progress:
					case <-deadline:
						t.Fatalf("load stalled at %d requests, %d by worker 1", ok.Load(), byW1.Load())
					}
				}
			}
			waitCount(50)
			if byW1.Load() == 0 {
				t.Fatal("worker 1 served nothing before its disconnect")
			}
			if err := w1.Disconnect(); err != nil {
				t.Fatal(err)
			}
			ev := h.next("exit of the disconnected worker", kind(cluster.Exit, w1))
			if ev.Code != 0 || ev.Signal != nil || !w1.ExitedAfterDisconnect() {
				t.Errorf("exit %v, want code 0 after disconnect", ev)
			}
			after := ok.Load()
			waitCount(after + 50)
			close(stop)
			wg.Wait()
			if failed.Load() > 0 {
				t.Fatalf("%d of %d requests failed; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
			}
			if ws := h.p.Workers(); len(ws) != 1 || ws[0] != w2 {
				t.Fatalf("workers after the disconnect: %v", ws)
			}
			t.Logf("%d requests, %d by the disconnected worker, none failed", ok.Load(), byW1.Load())
		})
	}
}

func TestMessages(t *testing.T) {
	h := newHarness(t, "echo", "")
	w1, w2 := h.fork(nil), h.fork(nil)
	hello := map[int]bool{}
	for len(hello) < 2 {
		ev := h.next("hello message", kind(cluster.Message, nil))
		m := decode(t, ev)
		if m["hello"] != float64(ev.Worker.ID()) {
			t.Fatalf("message %s from worker %d", ev.Msg, ev.Worker.ID())
		}
		hello[ev.Worker.ID()] = true
	}

	// primary to one worker
	if err := w2.Send(map[string]int{"n": 7}); err != nil {
		t.Fatal(err)
	}
	ev := h.next("echo", kind(cluster.Message, nil))
	if ev.Worker != w2 || string(ev.Msg) != `{"echo":{"n":7},"id":2}` {
		t.Fatalf("got %v, want worker 2's echo of {\"n\":7}", ev)
	}

	// broadcast
	if err := h.p.Broadcast("all"); err != nil {
		t.Fatal(err)
	}
	got := map[*cluster.Worker]string{}
	for len(got) < 2 {
		ev := h.next("broadcast echo", kind(cluster.Message, nil))
		got[ev.Worker] = string(ev.Msg)
	}
	if got[w1] != `{"echo":"all","id":1}` || got[w2] != `{"echo":"all","id":2}` {
		t.Fatalf("broadcast echoes: %v", got)
	}
}

func TestListenPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	h := newHarness(t, "listenerr", "", "ADDR="+busy.Addr().String())
	w := h.fork(nil)
	ev := h.next("primary's error event", kind(cluster.Error, w))
	if !errors.Is(ev.Err, syscall.EADDRINUSE) || !strings.Contains(ev.Err.Error(), busy.Addr().String()) {
		t.Errorf("error event: %v; want EADDRINUSE naming %s", ev.Err, busy.Addr())
	}
	m := decode(t, h.next("worker's report", kind(cluster.Message, w)))
	want := "listen tcp " + busy.Addr().String() + ": address already in use"
	if m["inuse"] != true || m["err"] != want {
		t.Errorf("worker's Listen error: %v; want %q wrapping EADDRINUSE", m, want)
	}
}

func TestNeverListens(t *testing.T) {
	p, err := cluster.NewPrimary(cluster.Settings{
		Exec: os.Args[0], Args: []string{"-test.run=^$"},
		Env: []string{workerEnv + "=nolisten"}, ListenTimeout: 200 * 1e6,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	h := &harness{t: t, p: p, events: p.Events()}
	w := h.fork(nil)
	ev := h.next("listen timeout", kind(cluster.Error, w))
	if !errors.Is(ev.Err, cluster.ErrListenTimeout) || !strings.Contains(ev.Err.Error(), fmt.Sprintf("worker 1 (pid %d)", w.PID())) {
		t.Fatalf("error %v, want ErrListenTimeout naming the worker", ev.Err)
	}
}

func TestBadMessages(t *testing.T) {
	h := newHarness(t, "badsend", "")
	w := h.fork(nil)
	m := decode(t, h.next("worker's report", kind(cluster.Message, w)))
	if got := fmt.Sprint(m["err"]); !strings.Contains(got, "cluster: message to the primary: json: unsupported type: chan int") {
		t.Errorf("worker's Send error %q", got)
	}
	err := w.Send(func() {})
	if err == nil || err.Error() != "cluster: message to worker 1: json: unsupported type: func()" {
		t.Errorf("primary's Send error: %v", err)
	}
	if err := h.p.Broadcast(make(chan int)); err == nil || !strings.Contains(err.Error(), "broadcast: encoding message") {
		t.Errorf("Broadcast error: %v", err)
	}
}

func TestSettings(t *testing.T) {
	if _, err := cluster.NewPrimary(cluster.Settings{Sched: "random"}); err == nil ||
		err.Error() != `cluster: unknown scheduling policy "random" (want "rr" or "shared")` {
		t.Errorf("bad sched: %v", err)
	}
	if _, err := cluster.NewPrimary(cluster.Settings{Env: []string{"NOEQUALS"}}); err == nil {
		t.Error("Env without = accepted")
	}
	h := newHarness(t, "nolisten", "")
	h.fork(nil)
	if err := h.p.Setup(cluster.Settings{Sched: cluster.Shared}); !errors.Is(err, cluster.ErrSchedFrozen) {
		t.Errorf("changing sched after a fork: %v", err)
	}
}

// TestUnderTendSocketMode runs the "http" helper as tend's socket mode
// does: the shared socket at fd 3 with LISTEN_FDS, LISTEN_PID set by a
// shim that execs the app, and a NOTIFY_SOCKET for readiness.
func TestUnderTendSocketMode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File() // a fresh process: no one shares its mode yet
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ns, err := notify.Listen("@tend-cluster-test-" + fmt.Sprint(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CLUSTER_TEST_SHIM=1", workerEnv+"=http", "ADDR=:3000",
		"LISTEN_FDS=1", "LISTEN_FDNAMES=app", "NOTIFY_SOCKET="+ns.Path(), "TEND_WORKER_ID=7")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	select {
	case m := <-ns.Messages():
		if !m.Ready {
			t.Fatalf("first notification %+v, want READY=1", m)
		}
	case <-t.Context().Done():
	}
	body, err := get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d 7 worker", cmd.Process.Pid); body != want {
		t.Fatalf("answer %q, want %q (the app on tend's socket, a worker)", body, want)
	}

	// tend's stop signal: Serve drains as on a disconnect, and the app
	// exits 0.
	idle, poll := dialGet(t, ln.Addr().String()), dialGet(t, ln.Addr().String())
	cmd.Process.Signal(syscall.SIGINT)
	awaitLast(t, poll)
	answerOnIdle(t, idle)
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGINT the app ended with %v, want exit status 0", err)
	}
}

// dialGet opens a keep-alive connection and makes one request on it.
func dialGet(t *testing.T, addr string) *rawhttp.Conn {
	t.Helper()
	c, err := rawhttp.Dial(addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Get("/"); err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitLast sends requests on c until one is answered with Connection:
// close: the drain has begun.
func awaitLast(t *testing.T, c *rawhttp.Conn) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); ; {
		r, err := c.Get("/")
		if err != nil {
			t.Fatalf("a connection in use lost a request during the stop: %v", err)
		}
		if r.Last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer with Connection: close after the stop began")
		}
	}
}

// answerOnIdle checks that c, idle since before the drain began, still
// gets an answer, its last, and is then closed.
func answerOnIdle(t *testing.T, c *rawhttp.Conn) {
	t.Helper()
	r, err := c.Get("/")
	if err != nil {
		t.Fatalf("a request on a connection idle since before the stop failed: %v", err)
	}
	if !r.Last {
		t.Errorf("answer %q during the drain keeps the connection alive; want Connection: close", r.Body)
	}
	if !c.EOF() {
		t.Error("the connection stays open after its last answer")
	}
}

// A disconnecting worker answers a request on a keep-alive connection
// that was idle when the disconnect began, and marks its answers as the
// connection's last (http.Server.Shutdown alone closes that connection
// at once, and such a request meets a reset).
func TestDisconnectKeepsIdleConnectionsForAnAnswer(t *testing.T) {
	h := newHarness(t, "http", cluster.RoundRobin, "ADDR=127.0.0.1:0")
	w1, _ := h.fork(nil), h.fork(nil)
	addr := h.waitListening(2)
	// Two connections on worker 1: round robin alternates workers.
	var onW1 []*rawhttp.Conn
	for dials := 0; len(onW1) < 2; dials++ {
		if dials == 20 {
			t.Fatal("20 connections, fewer than 2 handed to worker 1")
		}
		c, err := rawhttp.Dial(addr.String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		r, err := c.Get("/")
		if err != nil {
			t.Fatal(err)
		}
		if servedBy(r.Body) == fmt.Sprint(w1.PID()) {
			onW1 = append(onW1, c)
		}
	}
	idle, poll := onW1[0], onW1[1]
	if err := w1.Disconnect(); err != nil {
		t.Fatal(err)
	}
	awaitLast(t, poll)
	answerOnIdle(t, idle)
	if ev := h.next("exit of the disconnected worker", kind(cluster.Exit, w1)); ev.Code != 0 {
		t.Errorf("exit %v, want code 0 after disconnect", ev)
	}
}

// In tend's socket mode an app that is not Node finds its message channel
// in TEND_CHANNEL_FD: Send and Messages use it (tend send, app messages in
// tend logs). In fork and proxy modes the variable is there too, but the
// program stays a primary (it may fork workers of its own).
func TestTendChannel(t *testing.T) {
	run := func(activated bool) (*exec.Cmd, *nodeipc.Channel) {
		parent, child, err := nodeipc.NewPair()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { parent.Close() })
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), workerEnv+"=echo", "TEND_WORKER_ID=4", "TEND_CHANNEL_FD=3")
		cmd.ExtraFiles = []*os.File{child}
		if activated {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.ExtraFiles = []*os.File{f, child}
			cmd.Env = append(cmd.Env, "CLUSTER_TEST_SHIM=1", "LISTEN_FDS=1", "TEND_CHANNEL_FD=4")
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		child.Close()
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, parent
	}

	_, ch := run(true)
	recv := func() string {
		t.Helper()
		m, err := ch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return string(m.Raw)
	}
	if m := recv(); m != `{"hello":4}` {
		t.Fatalf("first message %s, want the helper's hello", m)
	}
	if err := ch.Send(map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if m := recv(); m != `{"echo":{"n":1},"id":4}` {
		t.Fatalf("answer %s, want the echo of {\"n\":1}", m)
	}

	// Without a socket: a primary, which TestMain refuses to run a helper
	// worker in (exit status 5).
	cmd, _ := run(false)
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 5 {
		t.Errorf("with TEND_CHANNEL_FD and no socket the helper ended with %v, want exit status 5 (a primary)", err)
	}
}
