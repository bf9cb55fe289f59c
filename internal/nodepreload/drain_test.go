package nodepreload

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/rawhttp"
)

const testTimeout = 15 * time.Second

func dial(t *testing.T, port int) *rawhttp.Conn {
	t.Helper()
	c, err := rawhttp.Dial(fmt.Sprintf("127.0.0.1:%d", port), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// A worker that tend disconnects answers a request on a keep-alive
// connection that was idle when its server closed (Node alone destroys
// that connection at once, and the request meets a reset), and marks its
// answers as the connection's last, also when the app asks for keep-alive
// itself.
func TestDrainKeepsIdleConnectionsForAnAnswer(t *testing.T) {
	paths, err := Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := nodecluster.New(nodecluster.Options{Listen: func(network, address string, port int, _ bool) (nodecluster.Socket, error) {
		return nodecluster.DefaultListen("tcp4", "127.0.0.1", port, false)
	}, Logf: t.Logf})
	defer p.Close()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	events, stop, err := startWorker(p, "node", filepath.Join("testdata", "listening.cjs"),
		fmt.Sprintf("PORT=%d", port), "NODE_OPTIONS="+Options("", paths.Drain))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	await := func(k nodecluster.EventKind) {
		t.Helper()
		deadline := time.After(testTimeout)
		for {
			select {
			case ev := <-events:
				if ev.Kind == k {
					return
				}
			case <-deadline:
				t.Fatalf("no %v event from the worker", k)
			}
		}
	}
	await(nodecluster.Listening)

	// Connections idle across the disconnect, one per way of answering.
	routes := []string{"/", "/set", "/object", "/flat", "/pairs"}
	idle := map[string]*rawhttp.Conn{}
	for _, path := range routes {
		idle[path] = dial(t, port)
		if r, err := idle[path].Get(path); err != nil || r.Last {
			t.Fatalf("%s before the disconnect: %+v, %v", path, r, err)
		}
	}
	poll := dial(t, port)
	if r, err := poll.Get("/listening"); err != nil || r.Body != "true" {
		t.Fatalf("before the disconnect: %+v, %v", r, err)
	}
	if err := p.Disconnect(1); err != nil {
		t.Fatal(err)
	}
	// The worker has closed its server once it says it no longer listens.
	deadline := time.Now().Add(testTimeout)
	for {
		r, err := poll.Get("/listening")
		if err != nil {
			t.Fatalf("a connection in use lost a request during the disconnect: %v", err)
		}
		if r.Body == "false" {
			if !r.Last {
				t.Error("an answer during the drain keeps the connection alive; want Connection: close")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker still listens after its disconnect")
		}
	}
	for _, path := range routes {
		c := idle[path]
		r, err := c.Get(path)
		if err != nil {
			t.Fatalf("%s on a connection idle since before the disconnect: %v", path, err)
		}
		if !r.Last {
			t.Errorf("%s: answer %q during the drain keeps the connection alive; want Connection: close", path, r.Body)
		}
		if !c.EOF() {
			t.Errorf("%s: the server did not close the connection after its last answer", path)
		}
	}
	await(nodecluster.Disconnected) // no connection left: the worker leaves
}
