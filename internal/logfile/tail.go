package logfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/tendhq/tend/internal/private"
)

// Tail returns the last n lines of both streams, oldest first.
//
// They come from memory while it has them. For more, older lines are read
// back from the files (and their rotated, uncompressed predecessors) with
// TailFile. Those have a zero Time and come from a raw file's text as
// written, time prefix included, unless the sink writes JSON, whose records
// are decoded. When stdout and stderr go to separate raw files their order
// relative to each other is unknown: older stdout lines come first. Tail
// holds the sink's lock while it reads the files, so that they match memory;
// writers wait meanwhile, the pipes absorbing the pause.
func (s *Sink) Tail(n int) []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	mem := s.memTail(n)
	need := n - len(mem)
	if need <= 0 || s.closed {
		return mem
	}
	var older []Line
	for _, lf := range s.files() {
		// The last inMem lines of the file are already in mem.
		inMem := 0
		for i := 0; i < s.tail.n; i++ {
			e := s.tail.at(i)
			if e.inFile && s.fileOf(e.stream) == lf {
				inMem += s.notice.fileLines(e.partial)
			}
		}
		if lf.open {
			inMem++ // the unterminated line at the end of the file
		}
		texts, _ := TailFile(lf.path, need+inMem)
		texts = texts[:max(len(texts)-inMem, 0)]
		stream := Stdout
		if lf == s.err && lf != s.out {
			stream = Stderr
		}
		for _, t := range texts {
			older = append(older, s.parseFileLine(stream, t))
		}
	}
	if s.opt.JSON {
		sort.SliceStable(older, func(i, j int) bool { return older[i].Time.Before(older[j].Time) })
	}
	older = older[max(len(older)-need, 0):]
	return append(older, mem...)
}

// memTail returns the last n lines held in memory. Called with s.mu held.
func (s *Sink) memTail(n int) []Line {
	n = min(max(n, 0), s.tail.n)
	lines := make([]Line, 0, n)
	for i := s.tail.n - n; i < s.tail.n; i++ {
		e := s.tail.at(i)
		lines = append(lines, Line{Time: e.time, App: s.opt.App, Instance: s.opt.Instance,
			Stream: e.stream, Text: s.tail.textOf(e), Partial: e.partial})
	}
	return lines
}

// parseFileLine turns a line read back from a file into a Line.
func (s *Sink) parseFileLine(stream Stream, text string) Line {
	l := Line{App: s.opt.App, Instance: s.opt.Instance, Stream: stream, Text: text}
	if !s.opt.JSON {
		return l
	}
	var rec struct {
		Time    time.Time `json:"time"`
		Stream  string    `json:"stream"`
		Message string    `json:"message"`
		Partial bool      `json:"partial"`
	}
	if json.Unmarshal([]byte(text), &rec) != nil {
		return l
	}
	l.Time, l.Text, l.Partial = rec.Time, rec.Message, rec.Partial
	if rec.Stream == "stderr" {
		l.Stream = Stderr
	}
	return l
}

// tailChunk is how much TailFile reads at a time, backwards, looking for
// line ends: enough for ~700 typical lines per read.
const tailChunk = 64 << 10

// TailFile returns the last n lines of the file at path, oldest first,
// without their newlines. It reads backwards in chunks, so the cost depends
// on n, not on the file's size. When path has fewer than n lines it goes on
// with the files rotated from it that are not compressed, newest first
// (dated ones, then path.1, path.2 ...). Lines longer than MaxLine are cut
// to their first MaxLine bytes, which bounds memory at n*MaxLine. A missing
// path yields no lines and no error.
func TailFile(path string, n int) ([]string, error) {
	lines, err := tailOne(path, n)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(lines) >= n {
		return lines, nil
	}
	if err != nil {
		return nil, err
	}
	out := [][]string{lines}
	got := len(lines)
	rotated, _ := listRotated(path)
	for _, rf := range rotated {
		if got >= n {
			break
		}
		if rf.gz {
			continue
		}
		lines, err := tailOne(rf.name, n-got)
		if errors.Is(err, fs.ErrNotExist) {
			continue // compressed or deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, lines)
		got += len(lines)
	}
	all := make([]string, 0, got)
	for i := len(out) - 1; i >= 0; i-- {
		all = append(all, out[i]...)
	}
	return all, nil
}

func tailOne(path string, n int) ([]string, error) {
	f, err := private.OpenFile(path, os.O_RDONLY, nil)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if n <= 0 || size == 0 {
		return nil, nil
	}
	// Find the starts of the last n lines: the bytes after the last n
	// newlines, a newline ending the file not counting.
	end := size
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return nil, err
	}
	if last[0] == '\n' {
		end--
	}
	starts := make([]int64, 0, n) // newest first
	buf := make([]byte, min(int64(tailChunk), end+1))
	pos := end
	for pos > 0 && len(starts) < n {
		off := max(pos-int64(len(buf)), 0)
		b := buf[:pos-off]
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return nil, err
		}
		for len(b) > 0 && len(starts) < n {
			i := bytes.LastIndexByte(b, '\n')
			if i < 0 {
				break
			}
			starts = append(starts, off+int64(i)+1)
			b = b[:i]
		}
		pos = off
	}
	if len(starts) < n && pos == 0 {
		starts = append(starts, 0) // the first line of the file
	}
	lines := make([]string, len(starts))
	lineEnd := end
	for i, start := range starts {
		b := make([]byte, min(lineEnd-start, MaxLine))
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return nil, err
		}
		lines[len(starts)-1-i] = string(b)
		lineEnd = start - 1
	}
	return lines, nil
}
