package cli_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

// An instance that crashes runs its on_exit hook, with what happened in
// its environment, and posts the same to notify_url as JSON; one that
// gives up runs on_errored.
func TestHooks(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	posts := make(chan map[string]any, 16)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if json.Unmarshal(b, &m) == nil && r.Header.Get("Content-Type") == "application/json" {
			select {
			case posts <- m:
			default:
			}
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	out := filepath.Join(dir, "exits")
	h.ok("start", h.self, "--name", "cr", "--max-restarts", "2", "--min-uptime", "10s",
		"--on-exit", "sh -c 'echo $TEND_EVENT $TEND_APP $TEND_INSTANCE $TEND_EXIT_CODE $TEND_PID >> "+out+"'",
		"--on-errored", "sh -c 'echo \"$TEND_REASON\" > "+filepath.Join(dir, "errored")+"'",
		"--notify-url", "http://"+ln.Addr().String()+"/hook", "--", "crash")
	h.await("errored", allStatus(1, tend.StatusErrored))
	h.poll("the on_errored hook", func() bool { _, err := os.Stat(filepath.Join(dir, "errored")); return err == nil })
	h.poll("two on_exit hooks", func() bool { b, _ := os.ReadFile(out); return strings.Count(string(b), "\n") >= 2 })
	b, _ := os.ReadFile(out)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "exit" || f[1] != "cr" || f[2] != "0" || f[3] != "3" {
			t.Errorf("on_exit saw %q, want exit cr 0 3 <pid>", line)
		}
		if pid, _ := strconv.Atoi(f[len(f)-1]); pid <= 0 {
			t.Errorf("on_exit saw no pid: %q", line)
		}
	}
	if r, _ := os.ReadFile(filepath.Join(dir, "errored")); !strings.Contains(string(r), "not restarting") {
		t.Errorf("on_errored reason %q", r)
	}
	select {
	case m := <-posts:
		if m["event"] != "exit" || m["app"] != "cr" || m["exit_code"] != 3.0 {
			t.Errorf("notify_url got %v", m)
		}
		if _, ok := m["log"].([]any); !ok {
			t.Errorf("notify_url got no log lines: %v", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("notify_url got nothing")
	}
}

// A hook that never ends and a notify_url that refuses every post change
// nothing for the app or the daemon: restarts go on, commands answer, and
// the failures are in the daemon's log.
func TestHooksThatFail(t *testing.T) {
	h := newHarness(t)
	refused := testport.Free(t) // nothing listens there
	h.ok("start", h.self, "--name", "cr", "--restart-delay", "100ms", "--min-uptime", "1ms",
		"--on-exit", "sleep 987", "--notify-url", "http://127.0.0.1:"+strconv.Itoa(refused)+"/", "--", "crash")
	h.await("ten restarts", func(in []tend.Instance) bool { return len(in) == 1 && in[0].Restarts >= 10 })
	h.ok("ls")
	h.poll("the refused post in the daemon's log", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.home, "tend.log"))
		return strings.Contains(string(b), "notify_url of exit") && strings.Contains(string(b), "connection refused")
	})
	// None outlives the daemon.
	h.ok("kill")
	h.poll("the hanging hooks killed with the daemon", func() bool { return len(procsNamed("sleep 987")) == 0 })
}

// procsNamed returns the pids whose command line is cmdline.
func procsNamed(cmdline string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ") == cmdline {
			pids = append(pids, pid)
		}
	}
	return pids
}

// What an app writes reaches a hook as data, never as code: a log line
// with $(...) in it is not run by the hook's shell.
func TestHookNoInjection(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	pwned, got := filepath.Join(dir, "pwned"), filepath.Join(dir, "lines")
	h.ok("start", h.self, "--name", "inj", "--no-autorestart",
		"--on-exit", "sh -c 'printf %s \"$TEND_LOG_LINES\" > "+got+"'", "--", "sayexit", "GET /q=$(touch "+pwned+") 404")
	h.poll("the hook's output", func() bool { b, _ := os.ReadFile(got); return len(b) > 0 })
	b, _ := os.ReadFile(got)
	if !strings.Contains(string(b), "$(touch "+pwned+")") {
		t.Errorf("the hook got %q, want the line as written", b)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("a log line ran as a command in the hook")
	}
}
