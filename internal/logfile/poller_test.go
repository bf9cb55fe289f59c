package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPollerReadsManyPipes: three writers make one write per line, the
// last line unterminated; every line of every pipe reaches its sink, in
// order, and done is called at EOF.
func TestPollerReadsManyPipes(t *testing.T) {
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const pipes, lines = 3, 2000
	dir := t.TempDir()
	done := make(chan int, pipes)
	var sinks []*Sink
	for i := range pipes {
		s, err := Open(Options{App: "a", Instance: i, OutPath: filepath.Join(dir, fmt.Sprint(i, ".out")), ErrPath: filepath.Join(dir, fmt.Sprint(i, ".err"))})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sinks = append(sinks, s)
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		w, _ := s.Writer(Stdout)
		if err := p.Add(fds[0], w, func() { done <- i }); err != nil {
			t.Fatal(err)
		}
		go func() {
			f := os.NewFile(uintptr(fds[1]), "w")
			for n := range lines {
				fmt.Fprintf(f, "pipe %d line %d\n", i, n)
			}
			f.WriteString("no newline at the end")
			f.Close()
		}()
	}
	for range pipes {
		<-done
	}
	for i, s := range sinks {
		s.Close()
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(i, ".out")))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(got) != lines+1 || got[lines] != "no newline at the end" {
			t.Fatalf("pipe %d: %d lines, last %q", i, len(got), got[len(got)-1])
		}
		for n := range lines {
			if want := fmt.Sprintf("pipe %d line %d", i, n); got[n] != want {
				t.Fatalf("pipe %d line %d = %q, want %q", i, n, got[n], want)
			}
		}
	}
}
