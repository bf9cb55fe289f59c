package nodepreload

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/nodeipc"
)

const testTimeout = 15 * time.Second

// keepAlive is one client connection that sends requests one at a time.
type keepAlive struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, port int) *keepAlive {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{c, bufio.NewReader(c)}
}

// get sends GET path and returns the body and whether the server ends the
// connection after this answer.
func (k *keepAlive) get(path string) (body string, last bool, err error) {
	k.c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return "", false, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return "", false, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b), resp.Close, err
}

// A worker that tend disconnects answers a request on a keep-alive
// connection that was idle when its server closed (Node alone destroys
// that connection at once, and the request meets a reset), and marks its
// answers as the connection's last.
func TestDrainKeepsIdleConnectionsForAnAnswer(t *testing.T) {
	paths, err := Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := nodecluster.New(nodecluster.Options{Listen: func(network, address string, port int) (*net.TCPListener, error) {
		return nodecluster.DefaultListen("tcp4", "127.0.0.1", port)
	}, Logf: t.Logf})
	defer p.Close()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	ch, end, err := nodeipc.NewPair()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join("testdata", "listening.cjs"))
	cmd.Env = append(nodeipc.StripEnv(os.Environ()), nodeipc.Env(3)...)
	cmd.Env = append(cmd.Env, "NODE_UNIQUE_ID=1", fmt.Sprintf("PORT=%d", port), "NODE_OPTIONS="+Options("", paths.Drain))
	cmd.ExtraFiles = []*os.File{end}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	end.Close()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	events := make(chan nodecluster.Event, 16)
	p.AddWorker(1, ch, events)
	defer p.RemoveWorker(1)
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

	idle, poll := dial(t, port), dial(t, port)
	for _, k := range []*keepAlive{idle, poll} {
		if body, last, err := k.get("/listening"); err != nil || body != "true" || last {
			t.Fatalf("before the disconnect: %q, last %v, %v", body, last, err)
		}
	}
	if err := p.Disconnect(1); err != nil {
		t.Fatal(err)
	}
	// The worker has closed its server once it says it no longer listens.
	deadline := time.Now().Add(testTimeout)
	for {
		body, last, err := poll.get("/listening")
		if err != nil {
			t.Fatalf("a connection in use lost a request during the disconnect: %v", err)
		}
		if body == "false" {
			if !last {
				t.Error("an answer during the drain keeps the connection alive; want Connection: close")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker still listens after its disconnect")
		}
	}
	body, last, err := idle.get("/")
	if err != nil {
		t.Fatalf("a request on a connection idle since before the disconnect failed: %v", err)
	}
	if !last {
		t.Errorf("answer %q during the drain keeps the connection alive; want Connection: close", body)
	}
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Errorf("after the last answer the connection reads %v, want EOF", err)
	}
	await(nodecluster.Disconnected) // no connection left: the worker leaves
}
