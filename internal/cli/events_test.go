package cli_test

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// command is a tend command left running (events, logs -f, run): its
// output line by line, and its exit code once it ends.
type command struct {
	t        *testing.T
	cmd      *exec.Cmd
	lines    chan string // stdout
	errLines chan string // stderr
	skipped  []tend.Event
	exited   chan struct{} // closed when it has exited; code is then set
	code     int
}

// start runs tend with args in the background; the test's end kills it.
func (h *harness) start(args ...string) *command {
	h.t.Helper()
	return h.startCmd(append([]string{tendBin}, args...)...)
}

// startCmd is start for a command line that runs tend under another
// program (unshare).
func (h *harness) startCmd(argv ...string) *command {
	h.t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = h.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	errOut, err := cmd.StderrPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	c := &command{t: h.t, cmd: cmd, lines: make(chan string, 1000), errLines: make(chan string, 1000), exited: make(chan struct{})}
	var wg sync.WaitGroup
	for _, p := range []struct {
		r  io.Reader
		ch chan string
	}{{out, c.lines}, {errOut, c.errLines}} {
		wg.Go(func() {
			defer close(p.ch)
			sc := bufio.NewScanner(p.r)
			for sc.Scan() {
				p.ch <- sc.Text()
			}
		})
	}
	go func() {
		wg.Wait()
		cmd.Wait()
		c.code = cmd.ProcessState.ExitCode()
		close(c.exited)
	}()
	h.t.Cleanup(func() {
		// Politely first: tend run stops its apps on SIGTERM.
		cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			for range c.lines {
			}
		}()
		go func() {
			for range c.errLines {
			}
		}()
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

func (h *harness) events(args ...string) *command {
	h.t.Helper()
	return h.start(append([]string{"events"}, args...)...)
}

// line returns the next line of stdout.
func (c *command) line() string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("tend %s ended", c.cmd.Args[1])
		}
		return l
	case <-time.After(20 * time.Second):
		c.t.Fatalf("tend %s printed nothing", c.cmd.Args[1])
	}
	return ""
}

// await returns the first line of ch (lines or errLines) that contains
// substr, and the lines it passed over.
func (c *command) await(ch chan string, substr string) (string, []string) {
	c.t.Helper()
	var passed []string
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				c.t.Fatalf("tend %s ended before printing %q; it printed %q", c.cmd.Args[1], substr, passed)
			}
			if strings.Contains(l, substr) {
				return l, passed
			}
			passed = append(passed, l)
		case <-deadline:
			c.t.Fatalf("tend %s did not print %q; it printed %q", c.cmd.Args[1], substr, passed)
		}
	}
}

// awaitAll waits until every one of substrs has appeared in a line of ch,
// in any order, and returns the lines read.
func (c *command) awaitAll(ch chan string, substrs ...string) []string {
	c.t.Helper()
	var read []string
	for _, s := range substrs {
		found := false
		for _, l := range read {
			found = found || strings.Contains(l, s)
		}
		if !found {
			l, passed := c.await(ch, s)
			read = append(append(read, passed...), l)
		}
	}
	return read
}

// wait waits for the command to exit and returns its exit code.
func (c *command) wait() int {
	c.t.Helper()
	select {
	case <-c.exited:
		return c.code
	case <-time.After(20 * time.Second):
		c.t.Fatalf("tend %s did not exit", c.cmd.Args[1])
	}
	return -1
}

// next returns the next event (of --json output) that matches, keeping
// the others in skipped.
func (c *command) next(what string, match func(tend.Event) bool) tend.Event {
	c.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("tend events ended before %s", what)
			}
			var ev tend.Event
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				c.t.Fatalf("tend events --json printed %q: %v", l, err)
			}
			if match(ev) {
				return ev
			}
			c.skipped = append(c.skipped, ev)
		case <-deadline:
			c.t.Fatalf("no event: %s", what)
		}
	}
}

func TestEvents(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "web", "-i", "2", "--", "serve")
	h.await("online", func(in []tend.Instance) bool { return len(in) == 2 && in[0].PID > 0 && in[1].PID > 0 })
	h.ok("start", h.self, "--name", "other", "--", "serve")
	s := h.events("web", "--json")

	// The stream starts with the state of web's instances.
	first := s.next("web[0]'s state", func(ev tend.Event) bool { return ev.Instance == 0 })
	if first.Kind != tend.EventInstance || first.App != "web" || first.PID == 0 || first.Status != tend.StatusOnline {
		t.Fatalf("first event %+v", first)
	}
	s.next("web[1]'s state", func(ev tend.Event) bool { return ev.Instance == 1 })

	// A crash, then the restart with a new pid.
	syscall.Kill(first.PID, syscall.SIGKILL)
	crash := s.next("web[0]'s exit", func(ev tend.Event) bool { return ev.ID == first.ID && ev.PID != first.PID })
	if crash.LastExit == nil || crash.LastExit.Signal != "SIGKILL" {
		t.Errorf("after kill -9 the event is %+v, want the last exit by SIGKILL", crash)
	}
	back := s.next("web[0] online again", func(ev tend.Event) bool {
		return ev.ID == first.ID && ev.PID != 0 && ev.PID != first.PID && ev.Status == tend.StatusOnline
	})
	if back.Restarts != 1 {
		t.Errorf("restart event %+v, want 1 restart", back)
	}

	// other's stop comes before web's scale down: by the removal of
	// web[1], anything of other's would have been read.
	h.ok("stop", "other")
	h.ok("scale", "web", "1")
	gone := s.next("web[1] removed", func(ev tend.Event) bool { return ev.Kind == tend.EventRemoved })
	if gone.App != "web" || gone.Instance != 1 {
		t.Errorf("removal %+v, want web[1]", gone)
	}
	// A reload: the retired process's exit is an event of its own.
	h.ok("reload", "web")
	s.next("the old web[0]'s exit", func(ev tend.Event) bool {
		return ev.Instance == 0 && ev.LastExit != nil && ev.LastExit.Cause == "reload"
	})
	h.ok("delete", "web")
	s.next("web[0] removed", func(ev tend.Event) bool { return ev.Kind == tend.EventRemoved && ev.Instance == 0 })
	for _, ev := range s.skipped {
		if ev.App != "web" {
			t.Errorf("web's stream has an event of another app: %+v", ev)
		}
	}

	// Without --json, for people; all apps by default.
	human := h.events()
	if l := human.line(); !regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} other\[0\] id \d+: stopped`).MatchString(l) {
		t.Errorf("tend events printed %q", l)
	}
	if errOut := h.fail(3, "events", "nope"); !strings.Contains(errOut, `"nope"`) {
		t.Errorf("events of a missing app: %q", errOut)
	}
}
