package cli_test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// eventStream is a running `tend events`: its output lines.
type eventStream struct {
	t       *testing.T
	lines   chan string
	skipped []tend.Event // events next passed over
}

func (h *harness) events(args ...string) *eventStream {
	h.t.Helper()
	cmd := exec.Command(tendBin, append([]string{"events"}, args...)...)
	cmd.Env = h.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &eventStream{t: h.t, lines: make(chan string, 100)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s
}

func (s *eventStream) line() string {
	s.t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			s.t.Fatal("tend events ended")
		}
		return l
	case <-time.After(20 * time.Second):
		s.t.Fatal("tend events printed nothing")
	}
	return ""
}

// next returns the next event (of --json output) that matches, keeping
// the others in skipped.
func (s *eventStream) next(what string, match func(tend.Event) bool) tend.Event {
	s.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("tend events ended before %s", what)
			}
			var ev tend.Event
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				s.t.Fatalf("tend events --json printed %q: %v", l, err)
			}
			if match(ev) {
				return ev
			}
			s.skipped = append(s.skipped, ev)
		case <-deadline:
			s.t.Fatalf("no event: %s", what)
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

	// A name that reads as a number is the app, as for every command.
	h.ok("start", h.self, "--name", "+0", "--", "serve")
	named := h.events("+0", "--json")
	if ev := named.next("the state of app +0", func(tend.Event) bool { return true }); ev.App != "+0" {
		t.Errorf("tend events +0 streams %+v, want the app named +0", ev)
	}
}
