package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// open opens a sink with a fake clock, closed at the end of the test.
func open(t testing.TB, opt Options) (*Sink, *clock) {
	t.Helper()
	c := newClock()
	if opt.Now == nil {
		opt.Now = c.Now
	}
	s, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

// feed writes data to a real pipe, as an app would, and returns once the
// sink has read it all (ReadFrom returned at EOF).
func feed(t testing.TB, s *Sink, stream Stream, data ...string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		for _, d := range data {
			w.WriteString(d)
		}
		w.Close()
	}()
	if err := s.ReadFrom(stream, r); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func texts(lines []Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

func logPath(t testing.TB, name string) string {
	return filepath.Join(t.TempDir(), "logs", name)
}

// numbered returns "prefix-<from>\n" ... "prefix-<to-1>\n", numbers
// zero-padded to 5 digits.
func numbered(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s-%05d\n", prefix, i)
	}
	return b.String()
}

// fmtSscanf parses "<prefix>-<n>".
func fmtSscanf(text, prefix string, n *int) (int, error) {
	return fmt.Sscanf(text, prefix+"-%d", n)
}
