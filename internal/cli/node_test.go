package cli_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

func nodeApp(t *testing.T) string {
	return filepath.Join(repoRoot(t), "examples", "node", "index.js")
}

func TestNodeClusterRoundRobin(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	h.ok("start", nodeApp(t), "--name", "web", "-i", "2", "--port", strconv.Itoa(port))
	insts := h.await("both workers listening", func(in []tend.Instance) bool {
		return allStatus(2, tend.StatusOnline)(in) && in[0].Ready && in[1].Ready
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	seen := map[int]int{}
	for range 40 {
		pid, err := get(url)
		if err != nil {
			t.Fatal(err)
		}
		seen[pid]++
	}
	// Exact to within one connection (see nodecluster's TestRoundRobinIsExact).
	if a, b := seen[insts[0].PID], seen[insts[1].PID]; a+b != 40 || a < 19 || b < 19 {
		t.Errorf("round robin over 40 requests: %v, want 20 (±1) each for %d and %d", seen, insts[0].PID, insts[1].PID)
	}
	insts = h.ls()
	for _, in := range insts {
		if in.Mode != tend.ModeCluster || in.Sched != tend.SchedRoundRobin || in.Port != port || in.Connections < 19 || in.Connections > 21 {
			t.Errorf("ls shows %+v, want cluster/rr on %d with 20 connections", in, port)
		}
	}
	logs := h.ok("logs", "web", "--nostream")
	if !strings.Contains(logs, fmt.Sprintf("is listening on port %d", port)) {
		t.Errorf("logs lack the app's own line:\n%s", logs)
	}

	// kill -9 of a worker under load: no refused connection, at most the
	// requests it held fail, and it comes back.
	const conc = 4
	l := startLoad(url, conc)
	l.until(t, 100)
	victim := insts[0].PID
	syscall.Kill(victim, syscall.SIGKILL)
	h.await("the worker restarted and listening", func(in []tend.Instance) bool {
		return in[0].PID != victim && in[0].PID != 0 && in[0].Ready
	})
	l.until(t, 100)
	l.end()
	if l.refused > 0 || len(l.other) > conc {
		t.Errorf("around kill -9: %d refused, %d failed (%v)", l.refused, len(l.other), l.other)
	}
	t.Logf("%d requests around the kill, %d failed, per pid %v", l.total(), len(l.other), l.perPID)
}

func TestNodeClusterShared(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	h.ok("start", nodeApp(t), "-i", "2", "--port", strconv.Itoa(port), "--sched", "shared")
	h.await("listening", func(in []tend.Instance) bool { return len(in) == 2 && in[0].Ready && in[1].Ready })
	for range 20 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/read-content", port))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "Content read from a file\n" {
			t.Fatalf("/read-content = %q", b)
		}
	}
	if !strings.Contains(h.ok("ls"), "cluster/shared") {
		t.Error("ls does not show cluster/shared")
	}
	pid, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil || pid == 0 {
		t.Errorf("shared socket did not serve: %v", err)
	}
}

func TestNodeClusterReports(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	td := filepath.Join(repoRoot(t), "internal", "cli", "testdata")
	other := testport.Free(t)
	h.ok("start", filepath.Join(td, "otherport.js"), "-i", "2", "--port", strconv.Itoa(port), "--env", "OTHER_PORT="+strconv.Itoa(other))
	h.ok("start", filepath.Join(td, "nolisten.js"), "-i", "2", "--listen-timeout", "300ms")
	insts := h.await("both reported", func(in []tend.Instance) bool {
		return len(in) == 4 && in[0].Problem != "" && in[3].Problem != ""
	})
	want := fmt.Sprintf("listens on port %d, not on --port %d", other, port)
	if !strings.Contains(insts[0].Problem, want) {
		t.Errorf("otherport problem = %q, want %q", insts[0].Problem, want)
	}
	if !strings.Contains(insts[3].Problem, "not ready within listen_timeout (300ms): no listen() on a port") || insts[3].Status != tend.StatusOnline {
		t.Errorf("nolisten = %+v, want online with a listen_timeout problem", insts[3])
	}
	if out := h.ok("ls"); !strings.Contains(out, "no listen() on a port") {
		t.Errorf("ls does not print the problem:\n%s", out)
	}
}

func TestNodePortInUseByAnotherApp(t *testing.T) {
	h := newHarness(t)
	port := strconv.Itoa(testport.Free(t))
	h.ok("start", nodeApp(t), "--name", "a", "--port", port)
	errOut := h.fail(1, "start", nodeApp(t), "--name", "b", "--port", port)
	if !strings.Contains(errOut, "port "+port+" is already used by the tend app a") {
		t.Errorf("stderr = %q", errOut)
	}
}

func TestSend(t *testing.T) {
	h := newHarness(t)
	h.ok("start", nodeApp(t), "--name", "web", "-i", "2", "--port", strconv.Itoa(testport.Free(t)))
	h.ok("start", h.self, "--name", "py", "--", "channel")
	h.await("workers listening", func(in []tend.Instance) bool { return len(in) == 3 && in[0].Ready && in[1].Ready })
	h.awaitLog("py", "channel fd 3")

	h.ok("send", "web", `{"hello":"all"}`) // broadcast
	h.awaitLog("0", `message from tend: {"hello":"all"}`)
	h.awaitLog("1", `message from tend: {"hello":"all"}`)
	h.ok("send", "1", `"just one"`)
	logs := h.awaitLog("web", `message from tend: "just one"`)
	if strings.Count(logs, `"just one"`) != 1 {
		t.Errorf("send to id 1 reached more than one instance:\n%s", logs)
	}
	h.ok("send", "py", `{"n":1}`)
	h.awaitLog("py", `got {"n":1}`)
	// Messages the apps send back reach tend logs.
	h.awaitLog("py", `[message] {"ack":true}`)
	h.ok("send", "0", `{"ping":5}`)
	h.awaitLog("0", `[message] {"pong":5,`)

	if errOut := h.fail(2, "send", "web", "not json"); !strings.Contains(errOut, "not JSON") {
		t.Errorf("bad message: %q", errOut)
	}
	if errOut := h.fail(3, "send", "nosuch", "1"); !strings.Contains(errOut, "nosuch") {
		t.Errorf("bad target: %q", errOut)
	}
}

func TestNodeFallbackWithoutClusterProtocol(t *testing.T) {
	h := newHarness(t)
	h.env = append(h.env, "TEND_NODE_CLUSTER=off") // the probe fails as on a Node tend does not understand
	port := testport.Free(t)
	_, errOut, code := h.run("start", nodeApp(t), "--name", "web", "-i", "2", "--port", strconv.Itoa(port))
	if code != 0 || !strings.Contains(errOut, "note: web: Node's cluster protocol failed tend's check") {
		t.Fatalf("start: exit %d, stderr %q", code, errOut)
	}
	insts := h.await("online", allStatus(2, tend.StatusOnline))
	if insts[0].Mode != tend.ModeSocket {
		t.Errorf("mode = %s, want the socket fallback", insts[0].Mode)
	}
	// Both unmodified instances listen(PORT) on tend's socket through the preload.
	for _, id := range []string{"0", "1"} {
		h.awaitLog(id, fmt.Sprintf("is listening on port %d", port))
	}
	for range 10 {
		if _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			t.Fatal(err)
		}
	}
	errOut = h.fail(1, "start", nodeApp(t), "--name", "noport", "-i", "2")
	if !strings.Contains(errOut, "give --port") {
		t.Errorf("without --port: %q", errOut)
	}
}

// TestClusterWorkerStop: a disconnected Node worker leaves by itself, its
// 'disconnect' cleanup run, with its own exit code; one that cannot (an
// open event stream) gets its stop signal before SIGKILL, so that its
// handler runs.
func TestClusterWorkerStop(t *testing.T) {
	sse := filepath.Join(repoRoot(t), "internal", "cli", "testdata", "sse.js")
	t.Run("leaves by itself", func(t *testing.T) {
		h := newHarness(t)
		h.env = append(h.env, "CLEANUP_MS=300")
		port := strconv.Itoa(testport.Free(t))
		h.ok("start", sse, "--name", "web", "-i", "1", "--port", port, "--kill-timeout", "4s")
		h.await("ready", func(in []tend.Instance) bool { return len(in) == 1 && in[0].Ready })
		h.ok("stop", "web")
		h.awaitLog("web", "cleanup done")
		in := h.ls()[0]
		if in.LastExit == nil || in.LastExit.Code != 0 || in.LastExit.Signal != "" {
			t.Errorf("last exit %+v, want code 0 and no signal", in.LastExit)
		}
		if out := h.ok("logs", "web", "--nostream"); strings.Contains(out, "sigint handler ran") {
			t.Errorf("a worker that left by itself got SIGINT:\n%s", out)
		}
	})
	t.Run("held by a stream", func(t *testing.T) {
		h := newHarness(t)
		port := strconv.Itoa(testport.Free(t))
		h.ok("start", sse, "--name", "web", "-i", "1", "--port", port, "--kill-timeout", "4s")
		h.await("ready", func(in []tend.Instance) bool { return len(in) == 1 && in[0].Ready })
		resp, err := http.Get("http://127.0.0.1:" + port + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		begin := time.Now()
		h.ok("stop", "web")
		took := time.Since(begin)
		h.awaitLog("web", "sigint handler ran")
		in := h.ls()[0]
		if in.LastExit == nil || in.LastExit.Signal == "SIGKILL" || took > 3900*time.Millisecond {
			t.Errorf("stop took %v, last exit %+v: want the SIGINT handler to end it before SIGKILL", took, in.LastExit)
		}
	})
}
