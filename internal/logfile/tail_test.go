package logfile

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestTailFile(t *testing.T) {
	path := logPath(t, "out.log")
	os.MkdirAll(strings.TrimSuffix(path, "/out.log"), 0o700)
	os.WriteFile(path+".1", []byte("1\n2\n3\n4\n5\n"), 0o600)
	os.WriteFile(path, []byte("6\n\n8"), 0o600)
	tests := []struct {
		n    int
		want []string
	}{
		{0, nil},
		{1, []string{"8"}},
		{3, []string{"6", "", "8"}},
		{5, []string{"4", "5", "6", "", "8"}},
		{100, []string{"1", "2", "3", "4", "5", "6", "", "8"}},
	}
	for _, tt := range tests {
		got, err := TailFile(path, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("TailFile(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got, err := TailFile(path+".missing", 3); err != nil || len(got) != 0 {
		t.Errorf("missing file: %q, %v", got, err)
	}
}

func TestTailFileLongFile(t *testing.T) {
	// Many chunks back, with lines straddling chunk boundaries.
	path := logPath(t, "out.log")
	os.MkdirAll(strings.TrimSuffix(path, "/out.log"), 0o700)
	data := numbered("line", 0, 100000)
	os.WriteFile(path, []byte(data), 0o600)
	got, err := TailFile(path, 30000)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Split(strings.TrimSuffix(numbered("line", 70000, 100000), "\n"), "\n"); !slices.Equal(got, want) {
		t.Fatalf("got %d lines, first %q", len(got), got[0])
	}
}

func TestSinkTailFromFiles(t *testing.T) {
	out := logPath(t, "out.log")
	errp := logPath(t, "err.log")
	s, _ := open(t, Options{OutPath: out, ErrPath: errp, MaxSize: 80, Keep: 10, TailLines: 5})
	feed(t, s, Stdout, numbered("o", 0, 30)) // 8-byte lines: rotates every 10
	if got, want := texts(s.Tail(12)), strings.Fields(numbered("o", 18, 30)); !slices.Equal(got, want) {
		t.Fatalf("Tail(12) = %q, want %q", got, want)
	}
	feed(t, s, Stderr, numbered("e", 0, 3))
	// Memory: o-00027..29 (3) is evicted down to o-28, o-29, e-0..2. Older
	// lines come from the files, stdout's first.
	got := texts(s.Tail(8))
	want := []string{"o-00025", "o-00026", "o-00027", "o-00028", "o-00029", "e-00000", "e-00001", "e-00002"}
	if !slices.Equal(got, want) {
		t.Fatalf("Tail(8) = %q, want %q", got, want)
	}
}
