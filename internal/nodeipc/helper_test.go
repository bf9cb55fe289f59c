package nodeipc

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// child is a started process with its channel.
type child struct {
	ch     *Channel
	cmd    *exec.Cmd
	exited chan struct{} // closed after Wait returned; cmd.ProcessState is then set
}

// startChild starts name with args and the channel on fd 3, and makes sure
// it is killed when the test ends.
func startChild(t *testing.T, env []string, name string, args ...string) *child {
	t.Helper()
	parent, end, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(StripEnv(os.Environ()), Env(3)...), env...)
	cmd.ExtraFiles = []*os.File{end}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	end.Close()
	c := &child{ch: parent, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		parent.Close()
	})
	return c
}

func startNode(t *testing.T, scenario string) *child {
	return startChild(t, nil, "node", "testdata/child.js", scenario)
}

// recv is Recv with the test timeout; it fails the test on any error.
func recv(t *testing.T, ch *Channel) Message {
	t.Helper()
	type res struct {
		m   Message
		err error
	}
	r := make(chan res, 1)
	go func() { m, err := ch.Recv(); r <- res{m, err} }()
	select {
	case x := <-r:
		if x.err != nil {
			t.Fatalf("Recv: %v", x.err)
		}
		return x.m
	case <-time.After(testTimeout):
		t.Fatal("Recv: timed out")
	}
	panic("unreachable")
}

// recvLoop runs Recv in the background (needed for ACKs to be processed)
// and forwards messages; the channel closes when Recv fails fatally.
func recvLoop(ch *Channel) <-chan Message {
	out := make(chan Message, 64)
	go func() {
		defer close(out)
		for {
			m, err := ch.Recv()
			if err != nil {
				if isBad(err) {
					continue
				}
				return
			}
			out <- m
		}
	}()
	return out
}

func next(t *testing.T, ms <-chan Message) Message {
	t.Helper()
	select {
	case m, ok := <-ms:
		if !ok {
			t.Fatal("channel ended")
		}
		return m
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a message")
	}
	panic("unreachable")
}

// result returns what errs delivers, failing the test after testTimeout.
func result(t *testing.T, errs <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(testTimeout):
		t.Fatalf("%s: timed out", what)
	}
	panic("unreachable")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
}

func waitExit(t *testing.T, c *child) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	select {
	case <-c.exited:
		return c.cmd.ProcessState.ExitCode()
	case <-ctx.Done():
		t.Fatal("child did not exit")
	}
	return -1
}
