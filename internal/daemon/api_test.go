package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
)

// serveTest serves a daemon with no keeper on a home of its own.
func serveTest(t *testing.T) (*Daemon, string) {
	t.Helper()
	home, err := os.MkdirTemp("", "tendd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := EnsureHome(home); err != nil {
		t.Fatal(err)
	}
	l, err := listenSocket(home)
	if err != nil {
		t.Fatal(err)
	}
	d := New(home)
	done := make(chan error, 1)
	go func() { done <- d.Serve(l) }()
	t.Cleanup(func() {
		d.shutdown()
		d.end()
		<-done
	})
	return d, home
}

// TestSlowClientsAreCut: clients that open a request and send nothing
// more are cut off after requestTimeout, and meanwhile the daemon answers.
func TestSlowClientsAreCut(t *testing.T) {
	defer func(d time.Duration) { requestTimeout = d }(requestTimeout)
	requestTimeout = 300 * time.Millisecond
	_, home := serveTest(t)
	var conns []net.Conn
	for range 300 {
		c, err := net.Dial("unix", tend.Home(home).Socket())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "POST /v1/start HTTP/1.1\r\nHost: tend\r\nContent-Length: 1000\r\n\r\n{")
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.New(home).Ping(ctx); err != nil {
		t.Fatalf("ping beside 300 slow clients: %v", err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("slow client %d is still connected after 10 s", i)
				}
				break // closed by the daemon, after its answer or not
			}
		}
		c.Close()
	}
}

// TestInstanceLimitOverflow: counts whose sum passes the largest int are
// refused like any count over the limit, and nothing is made.
func TestInstanceLimitOverflow(t *testing.T) {
	d, home := serveTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spec := func(name string) tend.AppSpec {
		return tend.AppSpec{Name: name, Script: "/bin/sleep", Args: []string{"1000"}, Interpreter: "none", Cwd: "/", Instances: 1 << 62}
	}
	_, err := client.New(home).Start(ctx, tend.StartRequest{Apps: []tend.AppSpec{spec("a"), spec("b")}})
	if tend.ErrorCode(err) != tend.EINVALID {
		t.Fatalf("two apps of 2^62 instances: %v, want %s", err, tend.EINVALID)
	}
	d.mu.Lock()
	held := d.reserved
	d.mu.Unlock()
	if n := len(d.instances()); n != 0 || held != 0 {
		t.Errorf("%d instances made, %d held after a refused start", n, held)
	}
}

// TestScaleOverALoweredLimit: with more instances than the limit allows
// (it was lowered), growing is refused and changes nothing; shrinking
// works.
func TestScaleOverALoweredLimit(t *testing.T) {
	d, home := serveTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := client.New(home)
	if _, err := c.Start(ctx, tend.StartRequest{Apps: []tend.AppSpec{{Name: "s", Script: "/bin/sleep", Args: []string{"1000"},
		Interpreter: "none", Cwd: "/", Instances: 4}}}); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.settings.MaxInstances = 2
	d.mu.Unlock()
	for _, req := range []tend.ScaleRequest{{App: "s", Count: 1, Relative: true}, {App: "s", Count: 5}} {
		if _, err := c.Scale(ctx, req.App, req.Count, req.Relative); tend.ErrorCode(err) != tend.EINVALID {
			t.Errorf("scale %+v over the limit: %v, want %s", req, err, tend.EINVALID)
		}
		if n := len(d.instances()); n != 4 {
			t.Fatalf("scale %+v: %d instances, want the 4 there were", req, n)
		}
	}
	if _, err := c.Scale(ctx, "s", -1, true); err != nil {
		t.Errorf("scale -1 over the limit: %v, want it to shrink", err)
	}
	if n := len(d.instances()); n != 3 {
		t.Errorf("after scale -1: %d instances, want 3", n)
	}
}
