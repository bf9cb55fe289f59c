package cluster_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tendhq/tend/cluster"
	"github.com/tendhq/tend/internal/testport"
)

// The parts of Node's cluster API beyond TCP and the basic life cycle:
// unix sockets, UDP, address families, and the primary's view of a
// worker's life.

func TestUnixSocket(t *testing.T) {
	for _, sched := range []cluster.Sched{cluster.RoundRobin, cluster.Shared} {
		t.Run(string(sched), func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "app.sock")
			h := newHarness(t, "unix", sched, "SOCK="+sock)
			pids := map[string]bool{}
			for range 2 {
				pids[strconv.Itoa(h.fork(nil).PID())] = true
			}
			for range 2 {
				ev := h.next("listening", kind(cluster.Listening, nil))
				if a, ok := ev.Addr.(*net.UnixAddr); !ok || a.Name != sock {
					t.Fatalf("listening on %v, want the unix socket %s", ev.Addr, sock)
				}
			}
			c := &http.Client{Timeout: testTimeout, Transport: &http.Transport{DisableKeepAlives: true,
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", sock)
				}}}
			served := map[string]int{}
			for range 20 {
				b, err := body(c.Get("http://app/"))
				if err != nil {
					t.Fatal(err)
				}
				if !pids[b] {
					t.Fatalf("answer %q from a process that is not a worker", b)
				}
				served[b]++
			}
			if sched == cluster.RoundRobin && (served[pidsOf(pids)[0]] != 10 || served[pidsOf(pids)[1]] != 10) {
				t.Errorf("round robin served %v, want 10 each", served)
			}
		})
	}
}

func pidsOf(m map[string]bool) []string {
	var out []string
	for p := range m {
		out = append(out, p)
	}
	return out
}

// TestUDP: every worker that binds one address gets the primary's socket,
// as Node shares a dgram socket, whatever the policy.
func TestUDP(t *testing.T) {
	h := newHarness(t, "udp", cluster.RoundRobin, "PORT=0")
	pids := map[string]bool{}
	for range 2 {
		pids[strconv.Itoa(h.fork(nil).PID())] = true
	}
	ports := map[int]bool{}
	listening := 0 // Node's workers report a dgram bind as listening too
	for seen := 0; seen < 4; seen++ {
		ev := h.next("port or listening", func(ev cluster.Event) bool { return ev.Kind == cluster.Message || ev.Kind == cluster.Listening })
		if ev.Kind == cluster.Listening {
			listening++
			continue
		}
		m := decode(t, ev)
		if m["err"] != nil {
			t.Fatalf("ListenPacket in a worker: %v", m["err"])
		}
		ports[int(m["port"].(float64))] = true
	}
	if listening != 2 {
		t.Errorf("%d listening events for 2 workers' ListenPacket", listening)
	}
	if len(ports) != 1 {
		t.Fatalf("the workers bound ports %v, want one shared port", ports)
	}
	var port int
	for p := range ports {
		port = p
	}
	c, err := net.Dial("udp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := range 5 {
		c.SetDeadline(time.Now().Add(testTimeout))
		c.Write([]byte("ping"))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !pids[string(buf[:n])] {
			t.Fatalf("answer %q from a process that is not a worker", buf[:n])
		}
	}
}

// TestAddressFamilies: "tcp6" on "::" is IPv6 only, as Go's net has it;
// "tcp" on "::" takes both families.
func TestAddressFamilies(t *testing.T) {
	h := newHarness(t, "families", cluster.RoundRobin)
	h.fork(nil)
	m := decode(t, h.next("ports", kind(cluster.Message, nil)))
	if m["err"] != nil {
		t.Fatal(m["err"])
	}
	try := func(network string, port float64) error {
		c, err := net.DialTimeout(network, net.JoinHostPort(map[string]string{"tcp4": "127.0.0.1", "tcp6": "::1"}[network],
			strconv.Itoa(int(port))), testTimeout)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := try("tcp6", m["v6only"].(float64)); err != nil {
		t.Errorf("tcp6 [::]: IPv6 refused: %v", err)
	}
	if err := try("tcp4", m["v6only"].(float64)); err == nil {
		t.Errorf("tcp6 [::]: IPv4 connected, want refused (IPv6 only)")
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		if err := try(network, m["dual"].(float64)); err != nil {
			t.Errorf("tcp [::]: %s refused: %v", network, err)
		}
	}
}

// TestLifeCycle: the events and state Node's primary gives for a worker's
// life, down to one that leaves by itself.
func TestLifeCycle(t *testing.T) {
	h := newHarness(t, "leave", cluster.RoundRobin)
	if err := h.p.Setup(h.p.Settings()); err != nil {
		t.Fatal(err)
	}
	h.next("setup", kind(cluster.Configured, nil))
	w := h.fork(nil)
	if ev := h.next("fork or online", func(ev cluster.Event) bool { return ev.Worker == w }); ev.Kind != cluster.Forked {
		t.Fatalf("first event %v, want fork", ev)
	}
	h.next("online", kind(cluster.Online, w))
	if !w.IsConnected() || w.IsDead() {
		t.Fatalf("online worker: connected %v, dead %v", w.IsConnected(), w.IsDead())
	}
	w.Send("go") // it disconnects itself
	h.next("disconnect", kind(cluster.Disconnected, w))
	h.next("exit", kind(cluster.Exit, w))
	if w.IsConnected() || !w.IsDead() {
		t.Errorf("after exit: connected %v, dead %v", w.IsConnected(), w.IsDead())
	}
	if !w.ExitedAfterDisconnect() {
		t.Errorf("a worker that disconnected itself: ExitedAfterDisconnect false, want true as in Node")
	}
}

// TestDisconnectAll: the primary's Disconnect (Node's cluster.disconnect)
// returns once every worker has left.
func TestDisconnectAll(t *testing.T) {
	h := newHarness(t, "http", cluster.RoundRobin, "ADDR=127.0.0.1:0")
	ws := []*cluster.Worker{h.fork(nil), h.fork(nil)}
	h.waitListening(2)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.p.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.IsConnected() {
			t.Errorf("worker %d still connected after Disconnect returned", w.ID())
		}
		if code, sig := w.Wait(); code != 0 || sig != nil {
			t.Errorf("worker %d exited %d %v, want 0 by itself", w.ID(), code, sig)
		}
		if !w.ExitedAfterDisconnect() {
			t.Errorf("worker %d: ExitedAfterDisconnect false", w.ID())
		}
	}
}

// TestListenAgainAfterClose: a worker that closes its only server on an
// address and listens there again gets the same key (Node counts server
// indexes per address from 0 again), so it rejoins the socket the other
// worker still uses instead of failing to bind it.
func TestListenAgainAfterClose(t *testing.T) {
	h := newHarness(t, "relisten", cluster.RoundRobin, "ADDR=127.0.0.1:"+strconv.Itoa(testport.Free(t)))
	w1 := h.fork(nil)
	h.fork(nil)
	for range 2 {
		h.next("port", kind(cluster.Message, nil))
	}
	w1.Send("again")
	m := decode(t, h.next("again", func(ev cluster.Event) bool { return ev.Kind == cluster.Message && ev.Worker == w1 }))
	if m["again"] != "<nil>" {
		t.Errorf("Listen after Close on the same address: %v, want it to rejoin the shared socket", m["again"])
	}
}
