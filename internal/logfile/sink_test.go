package logfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

func TestReadFromPipe(t *testing.T) {
	out := logPath(t, "app-out-0.log")
	s, _ := open(t, Options{App: "app", OutPath: out})
	feed(t, s, Stdout, "one\r\ntw", "o\n", "", "three")
	if got, want := readFile(t, out), "one\ntwo\nthree\n"; got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if got := texts(s.Tail(10)); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Fatalf("Tail = %q", got)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	if s.Problem() != "" {
		t.Errorf("Problem = %q", s.Problem())
	}
}

func TestLongLineBoundedMemory(t *testing.T) {
	out := logPath(t, "out.log")
	s, _ := open(t, Options{OutPath: out})
	line := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16) // 10 MiB
	line = append(line, '\n')

	first, second := string(line[:len(line)/2]), string(line[len(line)/2:])

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	feed(t, s, Stdout, first, second)
	runtime.ReadMemStats(&after)
	// The sink holds a read buffer, a carry buffer, a format buffer and the
	// tail, each about MaxLine; buffering the line would cost 10 MiB.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes for a %d-byte line", alloc, len(line))
	if alloc > 16*MaxLine {
		t.Errorf("allocated %d bytes for a %d-byte line", alloc, len(line))
	}
	if got := readFile(t, out); got != string(line) {
		t.Errorf("file holds %d bytes, want the line (%d bytes) intact", len(got), len(line))
	}
	tail := s.Tail(3)
	if len(tail) != 2 || !tail[0].Partial || tail[1].Partial || len(tail[0].Text) != MaxLine {
		t.Errorf("tail: %d lines, want the last two pieces", len(tail))
	}
}

func TestBinaryJunk(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 1<<20)
	for i := range junk {
		junk[i] = byte(rng.IntN(256))
		if junk[i] == '\r' {
			junk[i] = 0 // keep the raw comparison exact: '\r' before '\n' is dropped
		}
	}
	junk = append(junk, '\n')

	t.Run("raw", func(t *testing.T) {
		out := logPath(t, "out.log")
		s, _ := open(t, Options{OutPath: out})
		feed(t, s, Stdout, string(junk))
		if got := readFile(t, out); got != string(junk) {
			t.Fatal("raw file differs from the input")
		}
	})
	t.Run("json", func(t *testing.T) {
		out := logPath(t, "out.log")
		s, _ := open(t, Options{OutPath: out, JSON: true})
		feed(t, s, Stdout, string(junk))
		data := readFile(t, out)
		if !utf8.ValidString(data) {
			t.Fatal("JSON file is not valid UTF-8")
		}
		lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
		if want := bytes.Count(junk, []byte{'\n'}); len(lines) < want {
			t.Fatalf("%d records for %d lines", len(lines), want)
		}
		for i, l := range lines {
			var rec struct{ Message *string }
			if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Message == nil {
				t.Fatalf("record %d %q: %v", i, l, err)
			}
		}
	})
}

func TestTimeLayoutPerLine(t *testing.T) {
	out := logPath(t, "out.log")
	s, _ := open(t, Options{OutPath: out, TimeLayout: "2006-01-02 15:04:05"})
	long := strings.Repeat("x", MaxLine+10)
	// One write carrying three lines, then a line split across writes, then
	// a line long enough to be cut into pieces.
	feed(t, s, Stdout, "a\nb\nc\n", "d", "e\n", long+"\n")
	want := "2026-03-01 12:00:00: a\n2026-03-01 12:00:00: b\n2026-03-01 12:00:00: c\n" +
		"2026-03-01 12:00:00: de\n2026-03-01 12:00:00: " + long + "\n"
	if got := readFile(t, out); got != want {
		t.Fatalf("file = %.200q...", got)
	}
}

func TestJSON(t *testing.T) {
	out := logPath(t, "out.log")
	s, _ := open(t, Options{App: "api", Instance: 3, OutPath: out, ErrPath: out, JSON: true})
	feed(t, s, Stderr, "say \"hi\"\t\x01\n", strings.Repeat("y", MaxLine+1)+"\n")
	type record struct {
		Time     time.Time `json:"time"`
		App      string    `json:"app"`
		Instance int       `json:"instance"`
		Stream   string    `json:"stream"`
		Message  string    `json:"message"`
		Partial  bool      `json:"partial"`
	}
	var recs []record
	dec := json.NewDecoder(strings.NewReader(readFile(t, out)))
	for dec.More() {
		var r record
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	want := record{Time: newClock().Now(), App: "api", Instance: 3, Stream: "stderr", Message: "say \"hi\"\t\x01"}
	if len(recs) != 3 || recs[0] != want {
		t.Fatalf("records = %+v", recs)
	}
	if !recs[1].Partial || len(recs[1].Message) != MaxLine || recs[2].Partial || recs[2].Message != "y" {
		t.Errorf("long line records: %+v / %+v", recs[1].Partial, recs[2])
	}
	// Read back from the file by Tail, with fields decoded.
	s.Flush() // empties memory but also the file; write again to test Tail from disk
	feed(t, s, Stdout, "z1\nz2\n")
	s.tail.reset()
	got := s.Tail(5)
	if len(got) != 2 || got[1].Text != "z2" || !got[1].Time.Equal(want.Time) || got[1].Stream != Stdout {
		t.Errorf("Tail from JSON file = %+v", got)
	}
}

func TestMergedFileKeepsLinesWhole(t *testing.T) {
	out := logPath(t, "app.log")
	s, _ := open(t, Options{OutPath: out, ErrPath: out})
	var wg sync.WaitGroup
	for _, st := range []Stream{Stdout, Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			feed(t, s, st, numbered(st.String(), 0, 5000))
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(readFile(t, out), "\n"), "\n")
	if len(lines) != 10000 {
		t.Fatalf("%d lines, want 10000", len(lines))
	}
	for _, l := range lines {
		if len(l) != len("stdout-00000") {
			t.Fatalf("mangled line %q", l)
		}
	}
}

func TestSubscribeNoGapNoDup(t *testing.T) {
	const total = 20000
	s, _ := open(t, Options{OutPath: logPath(t, "out.log"), LiveBuffer: 4 * total})
	_, first, cancelFirst := s.Subscribe(0)
	defer cancelFirst()

	var wg sync.WaitGroup
	for _, st := range []Stream{Stdout, Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Writes of varied sizes so that lines straddle reads.
			data := numbered(st.String(), 0, total)
			var parts []string
			for len(data) > 0 {
				k := min(len(data), 1+len(parts)*37%5000)
				parts = append(parts, data[:k])
				data = data[k:]
			}
			feed(t, s, st, parts...)
		}()
	}
	// Subscribe in the middle of the flood.
	for l := range first {
		if l.Text == "stdout-05000" {
			break
		}
	}
	backlog, live, cancel := s.Subscribe(150)
	defer cancel()
	if len(backlog) != 150 {
		t.Fatalf("backlog has %d lines, want 150", len(backlog))
	}
	next := map[Stream]int{Stdout: -1, Stderr: -1}
	check := func(l Line) {
		var n int
		if _, err := fmtSscanf(l.Text, l.Stream.String(), &n); err != nil {
			t.Fatalf("unexpected line %q", l.Text)
		}
		if next[l.Stream] >= 0 && n != next[l.Stream] {
			t.Fatalf("%s: got line %d, want %d", l.Stream, n, next[l.Stream])
		}
		next[l.Stream] = n + 1
	}
	for _, l := range backlog {
		check(l)
	}
	// Once both feeds are done every line has been handed to the channel,
	// which is big enough to hold them all.
	wg.Wait()
	for len(live) > 0 {
		check(<-live)
	}
	// A stream may have finished before the subscription began (the
	// reader of first can lag far behind the sink on a busy machine), its
	// lines all older than the backlog; a stream that shows must show to
	// its end.
	for _, st := range []Stream{Stdout, Stderr} {
		if next[st] != -1 && next[st] != total {
			t.Errorf("%s ended at %d, want %d", st, next[st], total)
		}
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	s, _ := open(t, Options{OutPath: logPath(t, "out.log"), LiveBuffer: 10})
	_, live, cancel := s.Subscribe(0)
	defer cancel()
	done := make(chan struct{})
	go func() {
		feed(t, s, Stdout, numbered("l", 0, 100))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer is blocked by a subscriber that does not read")
	}
	for i := range 10 {
		if l := <-live; l.Text != numbered("l", i, i+1)[:7] {
			t.Fatalf("line %d = %q", i, l.Text)
		}
	}
	feed(t, s, Stdout, "after\n")
	if l := <-live; l.Text != "[tend: 90 lines dropped]" {
		t.Fatalf("got %q, want the drop notice", l.Text)
	}
	if l := <-live; l.Text != "after" {
		t.Fatalf("got %q after the notice", l.Text)
	}
}

func TestUnwritableLogResumes(t *testing.T) {
	// The log path is a directory: open fails with EISDIR, even for root.
	out := logPath(t, "out.log")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	s, clk := open(t, Options{OutPath: out})
	if p := s.Problem(); !strings.Contains(p, "opening "+out+": is a directory") {
		t.Fatalf("Problem = %q", p)
	}
	feed(t, s, Stdout, "a\nb\nc\n") // returns: the app is not blocked
	if p := s.Problem(); !strings.Contains(p, "3 lines dropped") {
		t.Fatalf("Problem = %q", p)
	}
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	feed(t, s, Stdout, "d\n") // less than a second later: not retried yet
	clk.Add(retryInterval)
	feed(t, s, Stdout, "e\n")
	want := "[tend: 4 lines dropped while the log could not be written: open " + out + ": is a directory]\ne\n"
	if got := readFile(t, out); got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if p := s.Problem(); p != "" {
		t.Fatalf("Problem after recovery = %q", p)
	}
	if got := texts(s.Tail(2)); !strings.HasPrefix(got[0], "[tend: 4 lines dropped") || got[1] != "e" {
		t.Errorf("Tail = %q", got)
	}
}

func TestDirectoryRemovedResumes(t *testing.T) {
	out := logPath(t, "out.log")
	s, clk := open(t, Options{OutPath: out})
	feed(t, s, Stdout, "a\n")
	os.RemoveAll(filepath.Dir(out))
	clk.Add(retryInterval)
	feed(t, s, Stdout, "b\n") // noticed the file is gone: recreated
	if got := readFile(t, out); got != "b\n" {
		t.Fatalf("file = %q", got)
	}
}

func TestReopenAfterMove(t *testing.T) {
	out := logPath(t, "out.log")
	s, clk := open(t, Options{OutPath: out})
	feed(t, s, Stdout, "a\n")
	if err := os.Rename(out, out+".old"); err != nil {
		t.Fatal(err)
	}
	feed(t, s, Stdout, "b\n") // still the open file, like any process until told
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	feed(t, s, Stdout, "c\n")
	if got := readFile(t, out+".old"); got != "a\nb\n" {
		t.Errorf("moved file = %q", got)
	}
	if got := readFile(t, out); got != "c\n" {
		t.Errorf("reopened file = %q", got)
	}

	// Without Reopen, the move is noticed within retryInterval.
	if err := os.Rename(out, out+".old2"); err != nil {
		t.Fatal(err)
	}
	clk.Add(retryInterval)
	feed(t, s, Stdout, "d\n")
	if got := readFile(t, out); got != "d\n" {
		t.Errorf("file after an unannounced move = %q", got)
	}
}

func TestFlush(t *testing.T) {
	out := logPath(t, "out.log")
	s, _ := open(t, Options{OutPath: out})
	feed(t, s, Stdout, "a\nb\n")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, out); got != "" {
		t.Fatalf("file after Flush = %q", got)
	}
	if got := s.Tail(10); len(got) != 0 {
		t.Fatalf("Tail after Flush = %q", texts(got))
	}
	feed(t, s, Stdout, "c\n")
	if got := readFile(t, out); got != "c\n" {
		t.Fatalf("file = %q", got)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	s, _ := open(t, Options{})
	_, live, cancel := s.Subscribe(0)
	s.Close()
	if _, ok := <-live; ok {
		t.Fatal("channel open after Close")
	}
	cancel() // no double close
	feed(t, s, Stdout, "ignored\n")
}

func TestDiskFullResumes(t *testing.T) {
	// A small tmpfs, filled up, fails writes with ENOSPC as a full disk
	// does, for root too. (Not a symlink to /dev/full: the sink refuses
	// symlinks.)
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	out := filepath.Join(dir, "logs", "out.log")
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = f.Write(make([]byte, 4096))
	}
	f.Close()
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v", err)
	}
	s, clk := open(t, Options{OutPath: out, TimeLayout: "15:04:05"})
	feed(t, s, Stdout, "a\nb\n")
	if p, want := s.Problem(), "writing "+out+": no space left on device (since 12:00:00; 2 lines dropped)"; p != want {
		t.Fatalf("Problem = %q, want %q", p, want)
	}
	clk.Add(retryInterval)
	feed(t, s, Stdout, "c\n") // retried, still full
	if p := s.Problem(); !strings.Contains(p, "3 lines dropped") {
		t.Fatalf("Problem = %q", p)
	}
	os.Remove(filler) // the user makes room
	clk.Add(retryInterval)
	feed(t, s, Stdout, "d\n")
	want := "12:00:02: [tend: 3 lines dropped while the log could not be written: write " + out + ": no space left on device]\n12:00:02: d\n"
	if got := readFile(t, out); got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if s.Problem() != "" {
		t.Fatalf("Problem = %q", s.Problem())
	}
}
