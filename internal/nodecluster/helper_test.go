package nodecluster

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/nodeipc"
)

// testTimeout bounds every wait.
const testTimeout = 15 * time.Second

// harness is a Primary with real node workers, as the daemon will run it.
type harness struct {
	t      *testing.T
	p      *Primary
	events chan Event

	mu      sync.Mutex
	log     []Event
	changed chan struct{} // closed and replaced on every new event
}

type proc struct {
	id      int
	cmd     *exec.Cmd
	removed chan struct{} // the process exited and RemoveWorker returned
}

// loopbackListen keeps tests off external interfaces: "all addresses"
// becomes 127.0.0.1.
func loopbackListen(network, address string, port int, reuseAddr bool) (Socket, error) {
	if address == "" {
		network, address = "tcp4", "127.0.0.1"
	}
	return DefaultListen(network, address, port, reuseAddr)
}

func newHarness(t *testing.T, sched string) *harness {
	return newHarnessWith(t, Options{Sched: sched})
}

// newHarnessWith is newHarness with more options; Listen and Logf are the
// harness's.
func newHarnessWith(t *testing.T, opt Options) *harness {
	h := &harness{t: t, events: make(chan Event), changed: make(chan struct{})}
	opt.Listen, opt.Logf = loopbackListen, t.Logf
	h.p = New(opt)
	go func() {
		for ev := range h.events {
			h.mu.Lock()
			h.log = append(h.log, ev)
			close(h.changed)
			h.changed = make(chan struct{})
			h.mu.Unlock()
		}
	}()
	t.Cleanup(h.p.Close)
	return h
}

// start spawns worker id running script, the way tend will.
func (h *harness) start(id int, script string, env ...string) *proc {
	h.t.Helper()
	ch, end, err := nodeipc.NewPair()
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command("node", "testdata/"+script)
	cmd.Env = append(nodeipc.StripEnv(os.Environ()), nodeipc.Env(3)...)
	cmd.Env = append(append(cmd.Env, "NODE_UNIQUE_ID="+strconv.Itoa(id)), env...)
	cmd.ExtraFiles = []*os.File{end} // only the channel: never a listening socket
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	end.Close()
	h.p.AddWorker(id, ch, h.events)
	pr := &proc{id: id, cmd: cmd, removed: make(chan struct{})}
	go func() {
		cmd.Wait()
		h.p.RemoveWorker(id)
		close(pr.removed)
	}()
	h.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-pr.removed
	})
	return pr
}

func (pr *proc) kill() { syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL) }

// wait blocks until the process is gone and removed from the Primary.
func (h *harness) wait(pr *proc) int {
	h.t.Helper()
	select {
	case <-pr.removed:
		return pr.cmd.ProcessState.ExitCode()
	case <-time.After(testTimeout):
		h.t.Fatalf("worker %d did not exit", pr.id)
	}
	return -1
}

// waitEvent returns the first event so far or to come that matches.
func (h *harness) waitEvent(what string, match func(Event) bool) Event {
	h.t.Helper()
	deadline := time.After(testTimeout)
	for {
		h.mu.Lock()
		for _, ev := range h.log {
			if match(ev) {
				h.mu.Unlock()
				return ev
			}
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			h.mu.Lock()
			defer h.mu.Unlock()
			h.t.Fatalf("timed out waiting for %s; events: %+v", what, h.log)
		}
	}
}

func (h *harness) waitKind(id int, k EventKind) Event {
	h.t.Helper()
	return h.waitEvent(fmt.Sprintf("%v from worker %d", k, id), func(ev Event) bool {
		return ev.Worker == id && ev.Kind == k
	})
}

// waitListening waits until worker id listens on port.
func (h *harness) waitListening(id, port int) {
	h.t.Helper()
	h.waitEvent(fmt.Sprintf("worker %d listening on %d", id, port), func(ev Event) bool {
		return ev.Worker == id && ev.Kind == Listening && ev.Port == port
	})
}

// get does one request on a fresh connection and returns the body. It uses
// a bare connection so that no client retry can hide a failed request.
func get(port int, tc *tls.Config) (string, error) {
	c, err := net.DialTimeout("tcp4", "127.0.0.1:"+strconv.Itoa(port), testTimeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if tc != nil {
		c = tls.Client(c, tc)
	}
	return request(c, "Connection: close\r\n")
}

// request does one GET on c, with header lines added, and returns the body.
func request(c net.Conn, header string) (string, error) {
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n"+header+"\r\n"); err != nil {
		return "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

// count does n sequential requests and counts answers by worker pid.
func count(t *testing.T, port, n int, tc *tls.Config) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		body, err := get(port, tc)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got[body]++
	}
	return got
}

func pid(pr *proc) string { return strconv.Itoa(pr.cmd.Process.Pid) }
