// Package logfile: TEMPORARY STUB, replaced by the real package at merge.
package logfile

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

type Stream uint8

const (
	Stdout Stream = iota
	Stderr
)

type Line struct {
	Time     time.Time
	App      string
	Instance int
	Stream   Stream
	Text     string
	Partial  bool
}

type Options struct {
	App              string
	Instance         int
	OutPath, ErrPath string
	MaxSize          int64
	Keep             int
	Compress         bool
	TimeLayout       string
	JSON             bool
	TailLines        int
	Now              func() time.Time
}

type Sink struct {
	mu   sync.Mutex
	opt  Options
	out  *os.File
	err  *os.File
	tail []Line
	subs map[chan Line]bool
}

func Open(opt Options) (*Sink, error) {
	s := &Sink{opt: opt, subs: map[chan Line]bool{}}
	var err error
	os.MkdirAll(filepath.Dir(opt.OutPath), 0o700)
	s.out, err = os.OpenFile(opt.OutPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	s.err, err = os.OpenFile(opt.ErrPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	return s, err
}

func (s *Sink) ReadFrom(st Stream, r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := Line{Time: time.Now(), App: s.opt.App, Instance: s.opt.Instance, Stream: st, Text: sc.Text()}
		s.mu.Lock()
		f := s.out
		if st == Stderr {
			f = s.err
		}
		f.WriteString(l.Text + "\n")
		s.tail = append(s.tail, l)
		if len(s.tail) > 200 {
			s.tail = s.tail[1:]
		}
		for c := range s.subs {
			select {
			case c <- l:
			default:
			}
		}
		s.mu.Unlock()
	}
	return nil
}

func (s *Sink) Subscribe(n int) ([]Line, <-chan Line, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := make(chan Line, 1024)
	s.subs[c] = true
	b := s.tail
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return append([]Line(nil), b...), c, func() { s.mu.Lock(); delete(s.subs, c); s.mu.Unlock() }
}
func (s *Sink) Tail(n int) []Line       { b, _, c := s.Subscribe(n); c(); return b }
func (s *Sink) Reopen() error           { return nil }
func (s *Sink) Flush() error            { return nil }
func (s *Sink) Problem() string         { return "" }
func (s *Sink) Close() error            { s.out.Close(); return s.err.Close() }
func (s *Sink) Paths() (string, string) { return s.opt.OutPath, s.opt.ErrPath }
