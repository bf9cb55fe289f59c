package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// every is a Schedule at each multiple of d since the zero time.
type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Truncate(time.Duration(e)).Add(time.Duration(e)) }

// rotatedFiles returns the names of the files rotated from path, oldest
// first, and fails the test if any is not dated.
func rotatedFiles(t testing.TB, path string) []string {
	t.Helper()
	files, err := listRotated(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := len(files) - 1; i >= 0; i-- {
		if files[i].k != 0 {
			t.Errorf("numbered file %s while rotating by time", files[i].name)
		}
		names = append(names, filepath.Base(files[i].name))
	}
	return names
}

// awaitFiles polls until cond holds for the files rotated from path, for
// the rotations a timer makes.
func awaitFiles(t *testing.T, path string, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		names := rotatedFiles(t, path)
		if cond(names) {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out; rotated files: %q", names)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTimeRotationNamesAndRetention(t *testing.T) {
	out := logPath(t, "out.log")
	s, c := open(t, Options{OutPath: out, RotateAt: every(time.Hour), Keep: 2})
	feed(t, s, Stdout, numbered("a", 0, 3))
	c.Add(time.Hour + 30*time.Second) // 13:00:30: due since 13:00
	feed(t, s, Stdout, numbered("b", 0, 2))
	if got := rotatedFiles(t, out); len(got) != 1 || got[0] != "out__2026-03-01_13-00-30.log" {
		t.Fatalf("rotated files = %q, want out__2026-03-01_13-00-30.log", got)
	}
	if got := readFile(t, filepath.Join(filepath.Dir(out), "out__2026-03-01_13-00-30.log")); got != numbered("a", 0, 3) {
		t.Errorf("rotated file = %q", got)
	}
	if got := readFile(t, out); got != numbered("b", 0, 2) {
		t.Errorf("live file = %q", got)
	}

	// A due time with nothing written since the last rotation leaves the
	// file alone: no empty dated files.
	c.Add(time.Hour)
	s.rotateDue()
	c.Add(time.Hour)
	s.rotateDue()
	if got := rotatedFiles(t, out); len(got) != 2 {
		t.Errorf("after one rotation of a written file: %q", got)
	}
	if readFile(t, out) != "" {
		t.Error("live file not empty after the rotation")
	}
	s.rotateDue() // not due: nothing happens
	if got := rotatedFiles(t, out); len(got) != 2 {
		t.Errorf("a rotation before its time: %q", got)
	}

	// Keep 2: the third dated file deletes the oldest.
	feed(t, s, Stdout, "c-00000\n")
	c.Add(time.Hour)
	s.rotateDue()
	want := []string{"out__2026-03-01_14-00-30.log", "out__2026-03-01_16-00-30.log"}
	if got := rotatedFiles(t, out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("rotated files = %q, want %q", got, want)
	}
}

func TestSizeAndTimeRotationNeverCollide(t *testing.T) {
	// The clock stands still: every rotation, by size or by time, happens
	// in the same second and still gets a name of its own, in order.
	out := logPath(t, "app.out")
	s, c := open(t, Options{OutPath: out, MaxSize: 100, RotateAt: every(time.Minute), Keep: 100})
	feed(t, s, Stdout, numbered("l", 0, 30)) // 8-byte lines: 12 per file
	c.Add(time.Minute)
	feed(t, s, Stdout, numbered("l", 30, 40)) // rotated by time first
	got := rotatedFiles(t, out)
	want := []string{"app__2026-03-01_12-00-00.out", "app__2026-03-01_12-00-00_001.out", "app__2026-03-01_12-01-00.out"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("rotated files = %q, want %q", got, want)
	}
	var all strings.Builder
	for _, name := range got {
		all.WriteString(readFile(t, filepath.Join(filepath.Dir(out), name)))
	}
	all.WriteString(readFile(t, out))
	if all.String() != numbered("l", 0, 40) {
		t.Errorf("the files together = %q, want every line once, in order", all.String())
	}
}

func TestTimeRotationCompressesAndTails(t *testing.T) {
	out := logPath(t, "out.log")
	s, c := open(t, Options{OutPath: out, RotateAt: every(time.Hour), Keep: 5, Compress: true, TailLines: 2})
	for i := range 3 {
		feed(t, s, Stdout, numbered("l", i*10, i*10+10))
		c.Add(time.Hour)
		s.rotateDue()
	}
	feed(t, s, Stdout, numbered("l", 30, 35))
	// Tail reads back past the live file into the rotated ones while they
	// are not compressed yet; once they are, it stops at the live file.
	if got := strings.Join(texts(s.Tail(8)), ","); got != strings.Join(strings.Fields(numbered("l", 27, 35)), ",") && got != strings.Join(strings.Fields(numbered("l", 30, 35)), ",") {
		t.Errorf("Tail(8) = %s", got)
	}
	if err := s.Close(); err != nil { // waits for the compressor
		t.Fatal(err)
	}
	got := rotatedFiles(t, out)
	if len(got) != 3 {
		t.Fatalf("rotated files = %q, want 3", got)
	}
	for i, name := range got {
		if !strings.HasSuffix(name, ".log.gz") {
			t.Errorf("%s left uncompressed", name)
			continue
		}
		if text := gunzip(t, filepath.Join(filepath.Dir(out), name)); text != numbered("l", i*10, i*10+10) {
			t.Errorf("%s = %q", name, text)
		}
	}
	if _, err := os.Stat(out + ".gz.tmp"); err == nil {
		t.Error("temporary file left behind")
	}
}

func TestTailFileReadsDatedFiles(t *testing.T) {
	out := logPath(t, "out.log")
	s, c := open(t, Options{OutPath: out, RotateAt: every(time.Hour), TailLines: 1})
	for i := range 3 {
		feed(t, s, Stdout, numbered("l", i*4, i*4+4))
		c.Add(time.Hour)
		s.rotateDue()
	}
	feed(t, s, Stdout, numbered("l", 12, 14))
	got, err := TailFile(out, 11)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Fields(numbered("l", 3, 14)); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("TailFile(11) = %q, want %q", got, want)
	}
	if got := texts(s.Tail(6)); strings.Join(got, ",") != strings.Join(strings.Fields(numbered("l", 8, 14)), ",") {
		t.Errorf("Tail(6) = %q", got)
	}
}

func TestOpenRotatesAFileLeftFromBeforeItsTime(t *testing.T) {
	// The daemon was down at 14:00; the file was last written at 13:29.
	out := logPath(t, "out.log")
	os.MkdirAll(filepath.Dir(out), 0o700)
	os.WriteFile(out, []byte("old\n"), 0o600)
	c := newClock()
	c.Add(150 * time.Minute) // 14:30
	os.Chtimes(out, c.Now().Add(-61*time.Minute), c.Now().Add(-61*time.Minute))
	s, _ := open(t, Options{OutPath: out, RotateAt: every(time.Hour), Now: c.Now})
	if got := rotatedFiles(t, out); len(got) != 1 || readFile(t, filepath.Join(filepath.Dir(out), got[0])) != "old\n" {
		t.Fatalf("rotated files = %q, want the old file", got)
	}
	// A file written since the last due time stays.
	s.Close()
	os.WriteFile(out, []byte("new\n"), 0o600)
	os.Chtimes(out, c.Now().Add(-time.Minute), c.Now().Add(-time.Minute))
	open(t, Options{OutPath: out, RotateAt: every(time.Hour), Now: c.Now})
	if got := rotatedFiles(t, out); len(got) != 1 {
		t.Errorf("rotated files = %q, want only the old one", got)
	}
}

func TestTimerRotatesWithoutWrites(t *testing.T) {
	// The real clock and the process's timer: the files rotate while the
	// app prints nothing.
	out := logPath(t, "out.log")
	errPath := logPath(t, "err.log")
	s, err := Open(Options{OutPath: out, ErrPath: errPath, RotateAt: every(50 * time.Millisecond), Keep: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, _ := s.Writer(Stdout)
	w.Write([]byte("before\n"))
	names := awaitFiles(t, out, func(n []string) bool { return len(n) == 1 })
	if got := readFile(t, filepath.Join(filepath.Dir(out), names[0])); got != "before\n" {
		t.Errorf("rotated file = %q", got)
	}
	if _, err := os.Stat(errPath); err != nil || len(rotatedFiles(t, errPath)) != 0 {
		t.Errorf("the empty stderr file was rotated or removed: %v", err)
	}
	w.Write([]byte("after\n"))
	awaitFiles(t, out, func(n []string) bool { return len(n) == 2 })
}

func TestOneTimerForAllSinks(t *testing.T) {
	// Sinks rotating by time add no goroutine or timer of their own: they
	// wait in one queue, and closing them empties it.
	base := runtime.NumGoroutine()
	var sinks []*Sink
	for i := range 100 {
		s, err := Open(Options{OutPath: logPath(t, fmt.Sprintf("a%d.log", i)), RotateAt: every(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, s)
	}
	rotations.mu.Lock()
	queued, armed := len(rotations.sinks), rotations.armed
	rotations.mu.Unlock()
	if queued < 100 || armed.IsZero() || time.Until(armed) > time.Hour {
		t.Errorf("%d sinks queued, timer armed for %v: want 100, within the hour", queued, armed)
	}
	if n := runtime.NumGoroutine(); n > base+5 {
		t.Errorf("%d goroutines for 100 sinks, %d before", n, base)
	}
	for _, s := range sinks {
		s.Close()
	}
	rotations.mu.Lock()
	defer rotations.mu.Unlock()
	for _, q := range rotations.sinks {
		for _, s := range sinks {
			if q == s {
				t.Fatal("a closed sink is still queued")
			}
		}
	}
}

func TestBurstAcrossTimeRotations(t *testing.T) {
	// An app writes as fast as it can while the timer rotates every 20 ms:
	// every line is in exactly one file, in order.
	out := logPath(t, "out.log")
	s, err := Open(Options{OutPath: out, RotateAt: every(20 * time.Millisecond), Keep: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ReadFrom(Stdout, r) }()
	n := 0
	for ; n < 2000000 && len(rotatedFiles(t, out)) < 5; n += 1000 {
		w.WriteString(numbered("l", n, n+1000))
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.Close()
	s.Close() // no more rotations while the files are read
	var all strings.Builder
	names := rotatedFiles(t, out)
	for _, name := range names {
		all.WriteString(readFile(t, filepath.Join(filepath.Dir(out), name)))
	}
	all.WriteString(readFile(t, out))
	if len(names) < 5 {
		t.Fatalf("%d rotations while %d lines were written", len(names), n)
	}
	if got, want := all.String(), numbered("l", 0, n); got != want {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Errorf("the %d files hold %d bytes, want the %d lines (%d bytes) once each, in order; they differ from byte %d: %.40q",
			len(names)+1, len(got), n, len(want), i, got[max(i-20, 0):])
	}
}

func TestParseRotated(t *testing.T) {
	path := "/logs/api-out-0.log"
	for _, tt := range []struct {
		base string
		ok   bool
	}{
		{"api-out-0__2026-03-01_00-00-00.log", true},
		{"api-out-0__2026-03-01_00-00-00.log.gz", true},
		{"api-out-0__2026-03-01_00-00-00_012.log", true},
		{"api-out-0.log.3", true},
		{"api-out-0.log.3.gz", true},
		{"api-out-0.log", false},
		{"api-out-0.log.gz.tmp", false},
		{"api-out-0.log.03", false},
		{"api-out-0__2026-03-01.log", false},
		{"api-out-0__2026-13-01_00-00-00.log", false},
		{"api-out-0__2026-03-01_00-00-00_x.log", false},
		{"api-out-0__2026-03-01_00-00-00.txt", false},
		{"api-out-1__2026-03-01_00-00-00.log", false},
	} {
		if _, ok := parseRotated(path, tt.base); ok != tt.ok {
			t.Errorf("parseRotated(%q) = %v, want %v", tt.base, ok, tt.ok)
		}
	}
}
