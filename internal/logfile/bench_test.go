package logfile

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// lineSource serves lines of ~90 bytes, as much as asked for, in reads of
// up to 64 KiB like a pipe. It allocates nothing per read.
type lineSource struct {
	block []byte // whole lines, ~64 KiB
	left  int    // bytes still to serve
	off   int
}

func newLineSource(total int) *lineSource {
	var b strings.Builder
	for i := 0; b.Len() < readBufSize-100; i++ {
		// 89 characters + '\n', like the 20k lines/s app of pm2.md §6.4.
		fmt.Fprintf(&b, "%-89.89s\n", fmt.Sprintf("GET /read-content 200 13.2ms req=%08d ua=autocannon/8.0 host=localhost:3000", i))
	}
	return &lineSource{block: []byte(b.String()), left: total}
}

func (r *lineSource) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.left)], r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= n
	return n, nil
}

// BenchmarkSinkThroughput measures ReadFrom end to end into a real file
// (page cache), one op being one 90-byte line.
func BenchmarkSinkThroughput(b *testing.B) {
	const lineLen = 90
	for _, bc := range []struct {
		name string
		opt  Options
	}{
		{"raw", Options{}},
		{"time", Options{TimeLayout: "2006-01-02T15:04:05.000"}},
		{"json", Options{JSON: true}},
		{"raw-rotate", Options{MaxSize: 10 << 20, Keep: 2}},
		{"raw-rotate-time", Options{MaxSize: 10 << 20, Keep: 2, RotateAt: every(time.Hour)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opt := bc.opt
			opt.App = "api"
			opt.OutPath = logPath(b, "out.log")
			s, _ := open(b, opt)
			b.SetBytes(lineLen)
			b.ReportAllocs()
			b.ResetTimer()
			if err := s.ReadFrom(Stdout, newLineSource(b.N*lineLen)); err != nil {
				b.Fatal(err)
			}
		})
	}
}
