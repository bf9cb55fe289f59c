package logfile

import (
	"compress/gzip"
	"io"
	"os"
	"strings"
	"testing"
)

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRotation(t *testing.T) {
	// Lines are 8 bytes ("l-00000\n"): 12 fit in 100 bytes. 50 lines in a
	// single write make files of 12, 12, 12, 12 and 2 lines; Keep 2 keeps
	// the last three files.
	data := numbered("l", 0, 50)
	for _, compress := range []bool{false, true} {
		name := "plain"
		if compress {
			name = "gzip"
		}
		t.Run(name, func(t *testing.T) {
			out := logPath(t, "out.log")
			s, _ := open(t, Options{OutPath: out, MaxSize: 100, Keep: 2, Compress: compress})
			feed(t, s, Stdout, data)
			if err := s.Close(); err != nil { // waits for the compressor
				t.Fatal(err)
			}
			read := func(k int) string {
				if k == 0 {
					return readFile(t, out)
				}
				if compress {
					if _, err := os.Stat(rotatedName(out, k, "")); err == nil {
						t.Errorf("%s left uncompressed", rotatedName(out, k, ""))
					}
					return gunzip(t, rotatedName(out, k, ".gz"))
				}
				return readFile(t, rotatedName(out, k, ""))
			}
			want := []string{numbered("l", 48, 50), numbered("l", 36, 48), numbered("l", 24, 36)}
			for k, w := range want {
				if got := read(k); got != w {
					t.Errorf("file %d = %q, want %q", k, got, w)
				}
			}
			for _, ext := range []string{"", ".gz"} {
				if _, err := os.Stat(rotatedName(out, 3, ext)); err == nil {
					t.Errorf("%s kept beyond Keep", rotatedName(out, 3, ext))
				}
			}
			if _, err := os.Stat(out + ".gz.tmp"); err == nil {
				t.Error("temporary file left behind")
			}
			if s.Problem() != "" {
				t.Errorf("Problem = %q", s.Problem())
			}
		})
	}
}

func TestRotationAcrossWrites(t *testing.T) {
	// Lines arriving one read at a time rotate the same way as in one read,
	// and a piece larger than MaxSize gets a file of its own.
	out := logPath(t, "out.log")
	s, _ := open(t, Options{OutPath: out, MaxSize: 20, Keep: 3})
	big := strings.Repeat("B", 30)
	feed(t, s, Stdout, "aaaaaaaaa\n", "bbbbbbbbb\n", big+"\n", "ccccccccc\n")
	want := []string{"ccccccccc\n", big + "\n", "aaaaaaaaa\nbbbbbbbbb\n"}
	for k, w := range want {
		name := out
		if k > 0 {
			name = rotatedName(out, k, "")
		}
		if got := readFile(t, name); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
}

func TestCompressFailureKeepsFile(t *testing.T) {
	out := logPath(t, "out.log")
	s, _ := open(t, Options{OutPath: out, MaxSize: 10, Keep: 2, Compress: true})
	// A directory where the compressor's temporary file goes makes gzip fail.
	if err := os.MkdirAll(out+".gz.tmp/x", 0o700); err != nil {
		t.Fatal(err)
	}
	feed(t, s, Stdout, "123456789\n", "abcdefghi\n")
	s.Close()
	if got := readFile(t, rotatedName(out, 1, "")); got != "123456789\n" {
		t.Fatalf("rotated file = %q", got)
	}
	if p := s.Problem(); !strings.Contains(p, "compressing") {
		t.Errorf("Problem = %q", p)
	}
}
