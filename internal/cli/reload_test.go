package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

func bootApp(t *testing.T) string {
	return filepath.Join(repoRoot(t), "internal", "cli", "testdata", "boot.js")
}

// keepAliveLoad is load over persistent connections, counting failures.
// It POSTs: Go's client retries an idempotent request that failed on a
// reused connection, which would hide a connection the server closed under
// it; a POST it has sent is not retried, like most load generators'
// requests.
type keepAliveLoad struct {
	ok, failed int
	errs       []string
	mu         sync.Mutex
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startKeepAlive(url string, conc int) *keepAliveLoad {
	l := &keepAliveLoad{stop: make(chan struct{})}
	for range conc {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		l.wg.Go(func() {
			for n := 0; n < 100_000; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Post(url, "text/plain", strings.NewReader("ping"))
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				l.mu.Lock()
				if err != nil {
					l.failed++
					l.errs = append(l.errs, err.Error())
				} else {
					l.ok++
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *keepAliveLoad) end() { close(l.stop); l.wg.Wait() }

func (l *keepAliveLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok
}

func lastReload(t *testing.T, h *harness, app string) *tend.ReloadReport {
	t.Helper()
	var apps []tend.App
	if err := json.Unmarshal([]byte(h.ok("describe", app, "--json")), &apps); err != nil {
		t.Fatal(err)
	}
	return apps[0].LastReload
}

func TestReloadUnderLoad(t *testing.T) {
	for _, keepAlive := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			h := newHarness(t)
			port := testport.Free(t)
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			h.ok("start", bootApp(t), "--name", "b", "-i", "2", "--port", strconv.Itoa(port))
			before := h.await("listening", func(in []tend.Instance) bool { return len(in) == 2 && in[0].Ready && in[1].Ready })
			const conc = 4
			var failed int
			var errs []string
			var total int
			if keepAlive {
				l := startKeepAlive(url, conc)
				waitCount(t, l.count, 100)
				h.env = append(h.env, "BUILD=b")
				h.ok("reload", "b", "--update-env")
				waitCount(t, l.count, l.count()+100)
				l.end()
				failed, errs, total = l.failed, l.errs, l.ok
			} else {
				l := startLoad(url, conc)
				l.until(t, 100)
				h.env = append(h.env, "BUILD=b")
				h.ok("reload", "b", "--update-env")
				l.until(t, 100)
				l.end()
				failed, total = l.refused+len(l.other), l.total()
				for _, e := range l.other {
					errs = append(errs, e.Error())
				}
			}
			t.Logf("%d requests, %d failed during the reload: %v", total, failed, errs)
			if failed != 0 {
				t.Errorf("%d requests failed during the reload: %v", failed, errs)
			}
			after := h.ls()
			for i := range after {
				if after[i].PID == before[i].PID || after[i].Status != tend.StatusOnline {
					t.Errorf("instance %d not replaced: %+v", i, after[i])
				}
			}
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), "build b") {
				t.Errorf("after reload --update-env the app answers %q, want build b", b)
			}
			rep := lastReload(t, h, "b")
			if rep == nil || !rep.OK || len(rep.Steps) != 2 || rep.Steps[0].ReadyBy != "listening" {
				t.Errorf("describe's last reload = %+v", rep)
			}
		})
	}
}

// helloBin builds examples/hello, the README's example, once per test run.
var helloBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(filepath.Dir(tendBin), "hello")
	cmd := exec.Command("go", "build", "-o", out, "github.com/tendhq/tend/examples/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building examples/hello: %v\n%s", err, b)
	}
	return out, nil
})

// The Go example drains keep-alive connections when tend stops an old
// instance with its signal (cluster.Serve), in socket and proxy modes.
func TestReloadGoUnderKeepAliveLoad(t *testing.T) {
	hello, err := helloBin()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"socket", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t)
			port := testport.Free(t)
			h.ok("start", hello, "--name", "hello", "-i", "2", "--port", strconv.Itoa(port), "--exec-mode", mode)
			h.await("ready", func(in []tend.Instance) bool { return len(in) == 2 && in[0].Ready && in[1].Ready })
			l := startKeepAlive(fmt.Sprintf("http://127.0.0.1:%d/", port), 4)
			waitCount(t, l.count, 100)
			h.ok("reload", "hello")
			waitCount(t, l.count, l.count()+100)
			l.end()
			if l.failed != 0 {
				t.Errorf("%d of %d requests failed during the reload: %v", l.failed, l.failed+l.ok, l.errs)
			}
		})
	}
}

func waitCount(t *testing.T, count func() int, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d", count())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReloadAbortKeepsOldInstances(t *testing.T) {
	for _, tc := range []struct {
		name, env, timeout, want string
	}{
		// A crash must be seen as a crash, however slow node is to boot.
		{"crash on boot", "CRASH_ON_START=1", "20s", "exited (exit code 1)"},
		{"never ready", "NEVER_READY=1", "500ms", "not ready within listen_timeout (500ms)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			port := testport.Free(t)
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			h.ok("start", bootApp(t), "--name", "b", "-i", "2", "--port", strconv.Itoa(port), "--listen-timeout", tc.timeout)
			before := h.await("listening", func(in []tend.Instance) bool { return len(in) == 2 && in[0].Ready && in[1].Ready })
			l := startLoad(url, 4)
			l.until(t, 50)
			h.env = append(h.env, tc.env)
			_, errOut, code := h.run("reload", "b", "--update-env")
			l.until(t, 50)
			l.end()
			if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "kept serving") {
				t.Errorf("reload: exit %d, stderr:\n%s\nwant exit 1 naming %q", code, errOut, tc.want)
			}
			if l.refused+len(l.other) != 0 {
				t.Errorf("%d refused, %d failed during the aborted reload: %v", l.refused, len(l.other), l.other)
			}
			after := h.ls()
			for i := range after {
				if after[i].PID != before[i].PID || after[i].Status != tend.StatusOnline {
					t.Errorf("old instance %d was not kept: %+v", i, after[i])
				}
			}
			if rep := lastReload(t, h, "b"); rep == nil || rep.OK || rep.Steps[0].Error == "" {
				t.Errorf("describe's last reload = %+v", rep)
			}
			// The failed settings were rolled back: a crashed old
			// instance comes back healthy.
			h.ok("restart", "0")
			h.await("instance 0 back", func(in []tend.Instance) bool { return in[0].Ready && in[0].Status == tend.StatusOnline })
		})
	}
}

func TestReadinessSignals(t *testing.T) {
	py := filepath.Join(repoRoot(t), "examples", "node", "index.js")
	for _, tc := range []struct {
		name string
		args []string
		by   string
	}{
		{"sd_notify READY=1", []string{h0, "--name", "x", "--exec-mode", "socket", "--", "activated"}, "notify"},
		{"process.send ready", []string{py, "--name", "x", "--wait-ready"}, "ready"},
		{"node listening", []string{filepath.Join(repoRoot(t), "internal", "cli", "testdata", "boot.js"), "--name", "x"}, "listening"},
		{"tcp probe", []string{h0, "--name", "x", "--exec-mode", "proxy", "--", "portserver"}, "tcp"},
		{"http probe", []string{h0, "--name", "x", "--exec-mode", "proxy", "--ready-url", "http://127.0.0.1:$PORT/health", "--", "portserver"}, "http"},
		{"listen_timeout", []string{h0, "--name", "x", "--listen-timeout", "200ms", "--", "serve"}, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			args := append([]string{"start"}, tc.args...)
			for i := range args {
				if args[i] == h0 {
					args[i] = h.self
				}
			}
			if tc.by != "timeout" { // a plain fork app has no port
				dash := slices.Index(args, "--")
				if dash < 0 {
					dash = len(args)
				}
				args = slices.Insert(args, dash, "--port", strconv.Itoa(testport.Free(t)))
			}
			h.env = append(h.env, "HEALTH_DELAY_MS=150")
			h.ok(args...)
			h.await("online", allStatus(1, tend.StatusOnline))
			h.ok("reload", "x")
			rep := lastReload(t, h, "x")
			if rep == nil || !rep.OK || len(rep.Steps) != 1 || rep.Steps[0].ReadyBy != tc.by {
				t.Fatalf("reload report = %+v, want ready by %s", rep, tc.by)
			}
			if tc.by == "http" && rep.Steps[0].ReadyMS < 150 {
				t.Errorf("ready after %d ms, before /health answered 200 (150 ms)", rep.Steps[0].ReadyMS)
			}
		})
	}
}

// h0 stands for the test binary in tables built before a harness exists.
const h0 = "<self>"

func TestScaleUnderLoad(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	h.ok("start", bootApp(t), "--name", "b", "-i", "2", "--port", strconv.Itoa(port))
	h.await("listening", func(in []tend.Instance) bool { return len(in) == 2 && in[0].Ready && in[1].Ready })
	l := startLoad(url, 4)
	l.until(t, 50)
	h.ok("scale", "b", "+2")
	if insts := h.ls(); len(insts) != 4 || !insts[3].Ready {
		t.Errorf("after scale +2: %+v", insts)
	}
	l.until(t, 100)
	h.ok("scale", "b", "1")
	l.until(t, 50)
	l.end()
	insts := h.ls()
	if len(insts) != 1 || insts[0].Instance != 0 {
		t.Errorf("after scale 1: %+v", insts)
	}
	if l.refused+len(l.other) != 0 {
		t.Errorf("%d refused, %d failed while scaling: %v", l.refused, len(l.other), l.other)
	}
	if len(l.perPID) < 3 {
		t.Errorf("answers came from %v: the added instances never served", l.perPID)
	}
	if errOut := h.fail(2, "scale", "b", "zero"); !strings.Contains(errOut, "not a count") {
		t.Errorf("bad count: %q", errOut)
	}
}

func TestRestartKeepsPortBound(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	h.ok("start", bootApp(t), "--name", "b", "-i", "1", "--port", strconv.Itoa(port))
	h.await("listening", func(in []tend.Instance) bool { return len(in) == 1 && in[0].Ready })
	l := startLoad(url, 2)
	l.until(t, 50)
	h.ok("restart", "b")
	l.until(t, 50)
	l.end()
	if l.refused != 0 {
		t.Errorf("%d connections refused during restart: the port should stay bound", l.refused)
	}
	t.Logf("restart: %d requests, %d failed (%v)", l.total(), len(l.other), l.other)
}

func TestSingleInstanceReload(t *testing.T) {
	h := newHarness(t)
	port := testport.Free(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	h.ok("start", bootApp(t), "--name", "b", "-i", "1", "--port", strconv.Itoa(port))
	h.await("listening", func(in []tend.Instance) bool { return len(in) == 1 && in[0].Ready })
	l := startLoad(url, 4)
	l.until(t, 50)
	h.ok("reload", "b")
	l.until(t, 50)
	l.end()
	if n := l.refused + len(l.other); n != 0 {
		t.Errorf("%d requests failed reloading a single instance: %v", n, l.other)
	}
}

// TestUpdateEnv: --update-env adds and changes what the shell has, keeps
// what it lacks (a reload from a cron job keeps the variables the app was
// started with), removes only --unset-env keys, and says what changed.
func TestUpdateEnv(t *testing.T) {
	h := newHarness(t)
	base := h.env
	h.env = append(base, "FROM_SHELL=old")
	h.ok("start", bootApp(t), "--name", "b", "--port", strconv.Itoa(testport.Free(t)))
	h.awaitLog("b", "env FROM_SHELL=old")
	reload := func(env []string, args ...string) (string, int) {
		h.env = env
		_, errOut, _ := h.run(append([]string{"reload", "b"}, args...)...)
		pid := h.ls()[0].PID
		h.awaitLog("b", fmt.Sprintf(" pid %d", pid))
		return errOut, pid
	}
	// The key is gone from this shell: it stays.
	errOut, pid := reload(base, "--update-env")
	h.awaitLog("b", fmt.Sprintf("env FROM_SHELL=old pid %d", pid))
	if strings.Contains(errOut, "-FROM_SHELL") {
		t.Errorf("the reload removed FROM_SHELL: %q", errOut)
	}
	errOut, pid = reload(append(base, "FROM_SHELL=new", "ADDED=1"), "--update-env")
	h.awaitLog("b", fmt.Sprintf("env FROM_SHELL=new pid %d", pid))
	if !strings.Contains(errOut, "environment: +ADDED ~FROM_SHELL") {
		t.Errorf("the reload did not say what changed: %q", errOut)
	}
	errOut, pid = reload(base, "--unset-env", "FROM_SHELL")
	h.awaitLog("b", fmt.Sprintf("env FROM_SHELL= pid %d", pid))
	if !strings.Contains(errOut, "environment: -FROM_SHELL") {
		t.Errorf("--unset-env: %q", errOut)
	}
	if !strings.Contains(h.ok("describe", "b"), "last reload") {
		t.Error("describe does not show the last reload")
	}
}

func TestShutdownWithMessage(t *testing.T) {
	h := newHarness(t)
	h.ok("start", bootApp(t), "--name", "b", "--port", strconv.Itoa(testport.Free(t)), "--shutdown-with-message")
	h.await("listening", func(in []tend.Instance) bool { return len(in) == 1 && in[0].Ready })
	h.ok("stop", "b")
	h.awaitLog("b", "shutdown message")
	if ex := h.ls()[0].LastExit; ex == nil || ex.Code != 0 || ex.Signal != "" {
		t.Errorf("last exit = %+v, want a clean exit after the message", ex)
	}
}
