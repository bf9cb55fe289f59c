package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tendhq/tend/internal/private"
)

// retryInterval bounds how often a failing file is reopened or rewritten and
// how often a healthy one is checked for having been moved or deleted: often
// enough that logging resumes within a second of the disk being freed, rare
// enough that a broken disk costs a couple of syscalls per second, not per
// chunk.
const retryInterval = time.Second

// logFile is one open log file with its rotation and failure state. Out and
// err share one logFile when their paths are equal. All fields are guarded
// by the owning Sink's mutex.
type logFile struct {
	path string
	f    *os.File
	size int64

	// open is set when the file does not end with '\n' (a Partial piece, or a
	// short write); openBy is the stream that left it so. Another stream (or
	// a notice) must start a new line first.
	open   bool
	openBy Stream

	err     error     // current failure; nil when writes succeed
	since   time.Time // when the failure started
	dropped int       // lines lost since then
	nextTry time.Time // failing: next reopen/rewrite; healthy: next check that path is still our file

	rotations int       // how many times the file was rotated; lets the compressor follow renames
	rotateErr error     // last rotation failure; the file keeps growing meanwhile
	nextRot   time.Time // no rotation attempt before this after a failure
	due       time.Time // next rotation by time (Options.RotateAt); zero for none
}

// noStream marks a file left open by a failed write rather than by a stream.
const noStream Stream = 255

// openFile (re)opens lf.path for appending, creating missing directories,
// through no symlink and only if it is a regular file: a log often lies
// in a directory the app's user can write, and the daemon may be root
// (see private.OpenFile).
func (lf *logFile) openFile() error {
	if lf.f != nil {
		lf.f.Close()
		lf.f = nil
	}
	if err := private.MkdirAll(filepath.Dir(lf.path)); err != nil {
		return err
	}
	// Read as well as append: the last byte is read below.
	f, err := private.OpenFile(lf.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, nil)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	lf.f, lf.size = f, st.Size()
	lf.open = false
	if lf.size > 0 {
		// Someone else's bytes may end mid-line; start ours on a new one.
		var last [1]byte
		if n, _ := f.ReadAt(last[:], lf.size-1); n == 1 && last[0] != '\n' {
			lf.open, lf.openBy = true, noStream
		}
	}
	return nil
}

func (lf *logFile) close() error {
	if lf.f == nil {
		return nil
	}
	err := lf.f.Close()
	lf.f = nil
	return err
}

// fail records err, keeping the time of the first failure in a row.
func (lf *logFile) fail(err error, now time.Time) {
	if lf.err == nil {
		lf.since = now
	}
	lf.err = err
	lf.nextTry = now.Add(retryInterval)
}

// moved reports whether lf.path no longer names the open file (an external
// rotator renamed it, its directory was removed, or it was replaced by a
// symlink, which reopening then refuses), in which case writing on would
// go nowhere anyone looks.
func (lf *logFile) moved() bool {
	st, err := os.Lstat(lf.path)
	if err != nil {
		return true
	}
	fst, err := lf.f.Stat()
	return err != nil || !os.SameFile(st, fst)
}

// problem describes the current failure for Sink.Problem.
func (lf *logFile) problem() string {
	if lf.err == nil {
		if lf.rotateErr != nil {
			return fmt.Sprintf("rotating %s: %v", lf.path, errText(lf.rotateErr))
		}
		return ""
	}
	op := "writing"
	var pe *fs.PathError
	if errors.As(lf.err, &pe) && pe.Op == "open" || lf.f == nil {
		op = "opening"
	}
	return fmt.Sprintf("%s %s: %v (since %s; %d lines dropped)",
		op, lf.path, errText(lf.err), lf.since.Format("15:04:05"), lf.dropped)
}

// errText strips the operation and path an *fs.PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// writeSpans writes buf, made of pieces ending at spans, rotating before a
// piece that would take the file past MaxSize (an empty file takes at least
// one piece, however big). It returns how many leading pieces reached the
// file; the caller has made sure the file is open and healthy.
func (s *Sink) writeSpans(lf *logFile, stream Stream, buf []byte, spans []span, now time.Time) int {
	if lf.open && lf.openBy != stream {
		if !s.writeBytes(lf, stream, []byte{'\n'}, false, now) {
			return 0
		}
	}
	limit := s.opt.MaxSize
	off, i := 0, 0
	for i < len(spans) {
		if limit > 0 && lf.size > 0 && lf.size+int64(spans[i].end-off) > limit && !now.Before(lf.nextRot) {
			s.rotate(lf, now)
			if lf.f == nil {
				return i
			}
		}
		j := len(spans) - 1
		if limit > 0 && lf.rotateErr == nil && lf.size+int64(spans[j].end-off) > limit {
			// The last span that still fits, but at least span i. While
			// rotation is failing everything is written: a log that grows
			// too big beats one that loses lines.
			k := sort.Search(len(spans)-i, func(k int) bool {
				return lf.size+int64(spans[i+k].end-off) > limit
			})
			j = max(i+k-1, i)
		}
		if !s.writeBytes(lf, stream, buf[off:spans[j].end], spans[j].partial, now) {
			return i
		}
		off, i = spans[j].end, j+1
	}
	return len(spans)
}

// writeBytes writes b to lf; endsOpen says b ends inside a line. On failure
// it records the error and returns false.
func (s *Sink) writeBytes(lf *logFile, stream Stream, b []byte, endsOpen bool, now time.Time) bool {
	n, err := lf.f.Write(b)
	lf.size += int64(n)
	if err != nil {
		if n > 0 && b[n-1] != '\n' {
			lf.open, lf.openBy = true, noStream
		}
		lf.fail(err, now)
		return false
	}
	lf.open, lf.openBy = endsOpen, stream
	return true
}

// rotate renames path away and opens a fresh path: to a dated name when
// the sink rotates by time, else to path.1, shifting path.k to path.k+1
// and dropping the oldest. If path is no longer the open file, another
// sink of the same path (merge_logs) rotated it already, and this one only
// follows. A failed rename leaves the current file in place and is retried
// after retryInterval; a failed open is an ordinary write failure.
func (s *Sink) rotate(lf *logFile, now time.Time) {
	var err error
	switch {
	case lf.moved():
		// Rotated by another sink: only reopen.
	case s.opt.RotateAt != nil:
		err = rotateDated(lf.path, now)
	default:
		err = shiftNumbered(lf.path, s.opt.Keep)
	}
	if err != nil {
		lf.rotateErr, lf.nextRot = err, now.Add(retryInterval)
		return
	}
	lf.rotations++
	lf.rotateErr = nil
	if s.opt.RotateAt != nil {
		retainDated(lf.path, s.opt.Keep)
	}
	if err := lf.openFile(); err != nil {
		lf.fail(err, now)
		return
	}
	if s.opt.Compress {
		s.startCompress()
	}
}

// shiftNumbered renames path to path.1 after shifting path.k to path.k+1,
// deleting path.keep.
func shiftNumbered(path string, keep int) error {
	for k := keep; k >= 1; k-- {
		for _, ext := range []string{"", ".gz"} {
			from := rotatedName(path, k, ext)
			if k == keep {
				private.Remove(from)
				continue
			}
			if err := private.Rename(from, rotatedName(path, k+1, ext), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return private.Rename(path, rotatedName(path, 1, ""), 0)
}

func rotatedName(path string, k int, ext string) string {
	return fmt.Sprintf("%s.%d%s", path, k, ext)
}
