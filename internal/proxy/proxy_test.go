package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/sockets"
)

// start runs a proxy on a fresh loopback listener and returns its URL.
// configure, if given, runs before Serve, as the Proxy's fields require.
func start(t *testing.T, policy tend.Sched, bs []Backend, configure ...func(*Proxy)) (*Proxy, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := New(ln, policy, t.Logf)
	p.SetBackends(bs)
	for _, f := range configure {
		f(p)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve() }()
	t.Cleanup(func() {
		p.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve = %v, want ErrClosed", err)
		}
	})
	return p, "http://" + ln.Addr().String() + "/"
}

// goBackend is an HTTP server that answers with its id. Requests to /slow
// wait until the test ends.
func goBackend(t *testing.T, id int, slow bool) Backend {
	t.Helper()
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		fmt.Fprint(w, id)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets Close finish
	return Backend{ID: id, Addr: s.Listener.Addr().String()}
}

// pythonBackend runs `python3 -m http.server` on a port from FreePort, as
// tend would run an app in proxy mode, and waits until it accepts.
func pythonBackend(t *testing.T, id int) (Backend, *exec.Cmd) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	port, err := sockets.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, "python3", "-m", "http.server", strconv.Itoa(port), "--bind", "127.0.0.1")
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitTCP(t, addr, 10*time.Second)
	return Backend{ID: id, Addr: addr}, cmd
}

// waitTCP waits until addr accepts a connection, or fails the test after
// timeout. Polling is the only signal a stock server gives.
func waitTCP(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up within %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually polls cond until it holds, failing the test after 10 s. Used
// for the proxy's counters, which change when a connection's last byte has
// been copied and have no event of their own.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var noKeepAlive = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

func TestRoundRobin(t *testing.T) {
	bs := []Backend{goBackend(t, 1, false), goBackend(t, 2, false), goBackend(t, 3, false)}
	p, url := start(t, tend.SchedRoundRobin, bs)
	count := map[string]int{}
	for range 30 {
		body, err := get(noKeepAlive, url)
		if err != nil {
			t.Fatal(err)
		}
		count[body]++
	}
	if count["1"] != 10 || count["2"] != 10 || count["3"] != 10 {
		t.Errorf("spread = %v, want 10 each", count)
	}
	eventually(t, "connections to close", func() bool {
		st := p.Stats()
		return st[1].Active+st[2].Active+st[3].Active == 0
	})
	if st := p.Stats(); st[1].Handed != 10 || st[2].Handed != 10 || st[3].Handed != 10 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRoundRobinPython(t *testing.T) {
	b1, _ := pythonBackend(t, 1)
	b2, _ := pythonBackend(t, 2)
	p, url := start(t, "", []Backend{b1, b2})
	for range 20 {
		if _, err := get(noKeepAlive, url); err != nil {
			t.Fatal(err)
		}
	}
	if st := p.Stats(); st[1].Handed != 10 || st[2].Handed != 10 {
		t.Errorf("stats = %+v, want 10 each", st)
	}
}

// TestLeastConn: with one backend stuck on a request, every new connection
// goes to the other; round robin would send it half of them.
func TestLeastConn(t *testing.T) {
	slow, fast := goBackend(t, 1, true), goBackend(t, 2, false)
	p, url := start(t, tend.SchedLeastConn, []Backend{slow, fast})
	for i := range 10 {
		go get(noKeepAlive, url) // a request to the slow one never returns before cleanup
		eventually(t, "the request to be handed out", func() bool {
			st := p.Stats()
			return st[1].Handed+st[2].Handed == uint64(i+1) && st[2].Active == 0
		})
	}
	st := p.Stats()
	if st[1].Handed > 1 || st[2].Handed < 9 {
		t.Errorf("stats = %+v, want at most 1 to the slow backend", st)
	}
}

// TestBackendKilled kills one of two Python backends under load: no
// connection made after the kill may fail.
func TestBackendKilled(t *testing.T) {
	b1, victim := pythonBackend(t, 1)
	b2, _ := pythonBackend(t, 2)
	p, url := start(t, tend.SchedRoundRobin, []Backend{b1, b2})

	var (
		mu       sync.Mutex
		killedAt time.Time // zero until the victim is dead
		before   int       // failures of requests started before that
		after    []error
		done     atomic.Int64
	)
	stop := make(chan struct{})
	halfway := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				started := killedAt
				mu.Unlock()
				_, err := get(noKeepAlive, url)
				if err != nil {
					mu.Lock()
					if started.IsZero() {
						before++
					} else {
						after = append(after, err)
					}
					mu.Unlock()
				}
				if done.Add(1) == 100 {
					once.Do(func() { close(halfway) })
				}
			}
		})
	}
	select {
	case <-halfway:
	case <-time.After(20 * time.Second):
		t.Fatal("load did not reach 100 requests")
	}
	victim.Process.Kill()
	victim.Wait() // its listening socket is closed once it is reaped
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	target := done.Load() + 200
	eventually(t, "200 requests after the kill", func() bool { return done.Load() >= target })
	close(stop)
	wg.Wait()
	t.Logf("%d requests; %d in flight at the kill failed; stats %+v", done.Load(), before, p.Stats())
	if len(after) > 0 {
		t.Errorf("%d requests made after the kill failed, first: %v", len(after), after[0])
	}
}

// TestHoldUntilBackendAppears: a client arriving while no backend exists
// is held, and served as soon as SetBackends provides one.
func TestHoldUntilBackendAppears(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	holding := make(chan struct{}, 1)
	p := New(ln, tend.SchedRoundRobin, func(f string, a ...any) {
		if strings.Contains(f, "holding") {
			select {
			case holding <- struct{}{}:
			default:
			}
		}
	})
	go p.Serve()
	t.Cleanup(func() { p.Close() })

	res := make(chan string, 1)
	go func() {
		body, err := get(noKeepAlive, "http://"+ln.Addr().String()+"/")
		if err != nil {
			body = "error: " + err.Error()
		}
		res <- body
	}()
	select {
	case <-holding:
	case <-time.After(10 * time.Second):
		t.Fatal("client was not held")
	}
	p.SetBackends([]Backend{goBackend(t, 7, false)})
	select {
	case body := <-res:
		if body != "7" {
			t.Errorf("got %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("held client not served")
	}
}

func TestHoldTimesOut(t *testing.T) {
	port, err := sockets.FreePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	_, url := start(t, tend.SchedRoundRobin, []Backend{{ID: 1, Addr: "127.0.0.1:" + strconv.Itoa(port)}},
		func(p *Proxy) { p.HoldTimeout = 200 * time.Millisecond })
	c, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t0 := time.Now()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read = %v, want EOF after the hold", err)
	}
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Errorf("closed after %v, before the hold timeout", d)
	}
}

// TestDrainAndRemove: a drained, then removed, backend gets no new
// connections, while a keep-alive connection already open to it goes on.
func TestDrainAndRemove(t *testing.T) {
	b1, b2 := goBackend(t, 1, false), goBackend(t, 2, false)
	p, url := start(t, tend.SchedRoundRobin, []Backend{b1, b2})
	tr := &http.Transport{MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	keepAlive := &http.Client{Timeout: 20 * time.Second, Transport: tr}
	if body, err := get(keepAlive, url); err != nil || body != "1" {
		t.Fatalf("first request: %q %v", body, err)
	}

	check := func(step string) {
		for range 6 {
			if body, err := get(noKeepAlive, url); err != nil || body != "2" {
				t.Fatalf("%s: new connection got %q %v, want backend 2", step, body, err)
			}
		}
		// Only the open connection can still reach backend 1.
		if body, err := get(keepAlive, url); err != nil || body != "1" {
			t.Fatalf("%s: keep-alive connection got %q %v, want backend 1", step, body, err)
		}
	}
	p.Drain(1)
	if !p.Stats()[1].Draining {
		t.Error("Stats does not show the drain")
	}
	check("drained")
	p.SetBackends([]Backend{b2})
	check("removed")
	if st := p.Stats(); st[1].Active != 1 {
		t.Errorf("removed backend with an open connection: stats %+v", st)
	}
	tr.CloseIdleConnections()
	eventually(t, "the removed backend to leave Stats", func() bool {
		_, ok := p.Stats()[1]
		return !ok
	})
}

// TestHalfClose: a client that half-closes after its request still gets
// the whole reply, which it would not if the proxy closed on first EOF.
func TestHalfClose(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the client's FIN
		c.Write([]byte(strings.ToUpper(string(b))))
	}()
	_, url := start(t, tend.SchedRoundRobin, []Backend{{ID: 1, Addr: echo.Addr().String()}})
	c, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(bufio.NewReader(c))
	if err != nil || string(got) != "HELLO" {
		t.Errorf("got %q %v", got, err)
	}
}

func TestFreePort(t *testing.T) {
	port, err := sockets.FreePort()
	if err != nil || port <= 0 {
		t.Fatalf("FreePort = %d, %v", port, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d not free: %v", port, err)
	}
	ln.Close()
}
