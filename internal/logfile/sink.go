package logfile

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Options configure a Sink. The zero value of every field but App is usable.
type Options struct {
	App      string
	Instance int

	// OutPath and ErrPath are the files for stdout and stderr. "" or
	// "/dev/null" disables a stream's file (its lines still reach Tail and
	// subscribers). Equal paths make one merged file.
	OutPath string
	ErrPath string

	// MaxSize rotates a file before a write would take it past this many
	// bytes. Rotation happens between lines, or between the pieces of a
	// line longer than MaxLine, so a file may exceed MaxSize only when a
	// single piece does. 0 never rotates.
	MaxSize int64
	// RotateAt, when set, also rotates the files at the times it gives
	// (a cron schedule), even if the app prints nothing then; a file
	// still empty at that time is left alone. Rotated files then get dated
	// names (see datedName), whether rotated by time or by size, and a
	// file last written before a time that passed while no sink had it
	// open is rotated by Open.
	RotateAt Schedule
	// Keep is how many rotated files are kept (path.1 ... path.Keep, newest
	// first, or the newest Keep dated files); older ones are deleted. 0
	// means DefaultKeep. Ignored when neither MaxSize nor RotateAt is set.
	Keep int
	// Compress gzips rotated files to path.N.gz (dated ones to
	// <name>.log.gz) in the background.
	Compress bool

	// TimeLayout, when set, prefixes every line in the file (not every
	// read chunk) with "<time>: ", the time formatted with this Go layout.
	TimeLayout string
	// JSON writes one JSON object per line (per piece for lines longer
	// than MaxLine): {"time","app","instance","stream","message"} plus
	// "partial":true on pieces that do not end their line. TimeLayout is
	// ignored; times are RFC 3339 with nanoseconds.
	JSON bool

	// TailLines is how many lines the in-memory tail holds; 0 means
	// DefaultTailLines. The tail also holds at most TailBytes of text.
	TailLines int
	// TailBytes bounds the text the in-memory tail holds, so memory stays
	// bounded when lines are long; 0 means DefaultTailBytes. Values below
	// MaxLine are raised to MaxLine so any piece fits.
	TailBytes int
	// LiveBuffer is how many lines each subscriber's channel buffers
	// before lines are dropped for it; 0 means DefaultLiveBuffer.
	LiveBuffer int

	// Now returns the current time: line times, when to retry a failing
	// file, and when a rotation by time is due and what it names the file.
	// nil means time.Now. A test seam.
	Now func() time.Time
}

// Schedule gives the times of time-based rotation; a cron.Schedule is one.
type Schedule interface {
	// Next returns the first time after t, or the zero time for never.
	Next(t time.Time) time.Time
}

// Defaults for the zero values of Options.
const (
	// DefaultKeep bounds a stream's disk use to 6 x MaxSize (current + 5).
	DefaultKeep = 5
	// DefaultTailLines covers a screenful of `tend logs` and the TUI's
	// log pane, PM2's default --lines being 15.
	DefaultTailLines = 200
	// DefaultTailBytes holds 200 lines of up to 640 bytes, and at least two
	// full MaxLine pieces.
	DefaultTailBytes = 2 * MaxLine
	// DefaultLiveBuffer is a couple of seconds of a busy app at the pace a
	// terminal or TUI drains it; a viewer slower than that loses lines
	// rather than slowing the app.
	DefaultLiveBuffer = 1024
)

// readBufSize is the size of each read from a pipe: the Linux pipe capacity,
// so one read drains a full pipe.
const readBufSize = 64 << 10

// ErrClosed is returned by Reopen and Flush after Close.
var ErrClosed = errors.New("logfile: sink closed")

// Sink receives the output of one instance slot. Its methods are safe for
// concurrent use; ReadFrom must run at most once at a time per stream.
type Sink struct {
	opt Options
	now func() time.Time

	mu          sync.Mutex
	out, err    *logFile // nil when disabled; equal when merged
	tail        *ring
	subs        map[*subscriber]struct{}
	notice      *formatter // formats the sink's own lines, under mu
	closed      bool
	compressing bool
	compressErr error
	wg          sync.WaitGroup // the compressor
	due         time.Time      // the files' earliest time rotation; zero when none

	// The sink's place in rotations, guarded by rotations.mu.
	queuedAt   time.Time
	queueIndex int
}

// Open returns a Sink for opt, opening (and creating, with mode 0600 in
// directories made 0700) its files for appending. Open fails only for
// invalid options: a file that cannot be opened is reported by Problem and
// retried as writes come in, because a broken log must not keep the app
// from starting.
func Open(opt Options) (*Sink, error) {
	switch {
	case opt.MaxSize < 0:
		return nil, fmt.Errorf("logfile: negative MaxSize %d", opt.MaxSize)
	case opt.Keep < 0:
		return nil, fmt.Errorf("logfile: negative Keep %d", opt.Keep)
	case opt.TailLines < 0 || opt.TailBytes < 0 || opt.LiveBuffer < 0:
		return nil, errors.New("logfile: negative TailLines, TailBytes or LiveBuffer")
	}
	if opt.Keep == 0 {
		opt.Keep = DefaultKeep
	}
	if opt.TailLines == 0 {
		opt.TailLines = DefaultTailLines
	}
	if opt.TailBytes == 0 {
		opt.TailBytes = DefaultTailBytes
	}
	opt.TailBytes = max(opt.TailBytes, MaxLine)
	if opt.LiveBuffer == 0 {
		opt.LiveBuffer = DefaultLiveBuffer
	}
	opt.LiveBuffer = max(opt.LiveBuffer, 2) // room for a line and a drop notice
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.OutPath == "/dev/null" {
		opt.OutPath = ""
	}
	if opt.ErrPath == "/dev/null" {
		opt.ErrPath = ""
	}
	s := &Sink{
		opt:    opt,
		now:    opt.Now,
		tail:   newRing(opt.TailLines, opt.TailBytes),
		subs:   make(map[*subscriber]struct{}),
		notice: newFormatter(&opt),

		queueIndex: -1,
	}
	now := s.now()
	if opt.OutPath != "" {
		s.out = &logFile{path: opt.OutPath}
	}
	if opt.ErrPath != "" {
		if opt.ErrPath == opt.OutPath {
			s.err = s.out
		} else {
			s.err = &logFile{path: opt.ErrPath}
		}
	}
	for _, lf := range s.files() {
		if err := lf.openFile(); err != nil {
			lf.fail(err, now)
		}
	}
	if opt.RotateAt != nil {
		s.mu.Lock()
		s.startTimeRotation(now)
		s.mu.Unlock()
	}
	return s, nil
}

// files returns the distinct open-able files.
func (s *Sink) files() []*logFile {
	switch {
	case s.out != nil && s.err != nil && s.out != s.err:
		return []*logFile{s.out, s.err}
	case s.out != nil:
		return []*logFile{s.out}
	case s.err != nil:
		return []*logFile{s.err}
	}
	return nil
}

func (s *Sink) fileOf(stream Stream) *logFile {
	if stream == Stderr {
		return s.err
	}
	return s.out
}

// Paths returns the files of stdout and stderr, "" for a disabled one.
func (s *Sink) Paths() (out, err string) { return s.opt.OutPath, s.opt.ErrPath }

// ReadFrom copies r, one stream of the app's output, into the sink until
// EOF. It is called in its own goroutine per pipe. The daemon reads its
// pipes through a Poller instead, which costs far less when apps flood.
func (s *Sink) ReadFrom(stream Stream, r io.Reader) error {
	w, err := s.Writer(stream)
	if err != nil {
		return err
	}
	buf := make([]byte, readBufSize)
	for {
		n, err := r.Read(buf)
		w.Write(buf[:n])
		if err != nil {
			w.Close()
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// StreamWriter takes one stream of an app's output in chunks of any size
// and splits it into lines for the sink. It is not safe for concurrent
// use: one writer per pipe.
type StreamWriter struct {
	s      *Sink
	stream Stream
	sp     *splitter
	f      *formatter
}

// Writer returns a StreamWriter for stream.
func (s *Sink) Writer(stream Stream) (*StreamWriter, error) {
	if stream > Stderr {
		return nil, fmt.Errorf("logfile: bad stream %d", stream)
	}
	return &StreamWriter{s: s, stream: stream, sp: newSplitter(MaxLine), f: newFormatter(&s.opt)}, nil
}

// Write takes the next chunk of output. It never fails: what cannot be
// written is counted and reported by Problem.
func (w *StreamWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		pieces, rest := w.sp.split(p)
		w.s.deliver(w.stream, w.f, pieces)
		w.sp.keep(rest)
	}
	return len(p), nil
}

// Close delivers an unterminated last line: the stream ended.
func (w *StreamWriter) Close() error {
	w.s.deliver(w.stream, w.f, w.sp.end())
	return nil
}

// deliver formats pieces, writes them to the file with one write (more
// around a rotation), and hands them to the tail and the subscribers.
func (s *Sink) deliver(stream Stream, f *formatter, pieces []piece) {
	if len(pieces) == 0 {
		return
	}
	now := s.now()
	f.format(stream, now, pieces)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if !s.due.IsZero() && !now.Before(s.due) {
		s.rotateByTime(now) // before the timer: these lines go to the new file
	}
	written := 0
	if lf := s.fileOf(stream); lf != nil {
		written = s.write(lf, stream, f, now)
	}
	// Only the last TailLines pieces can survive in the tail.
	from := max(len(pieces)-s.opt.TailLines, 0)
	for i := from; i < len(pieces); i++ {
		p := pieces[i]
		s.tail.add(entry{time: now, stream: stream, partial: p.partial, inFile: i < written}, p.b)
	}
	if len(s.subs) > 0 {
		s.publish(stream, now, pieces)
	}
}

// write writes f's formatted pieces to lf, dealing with failures and
// recovery, and returns how many leading pieces reached the file.
func (s *Sink) write(lf *logFile, stream Stream, f *formatter, now time.Time) int {
	if lf.err == nil && lf.f != nil && !now.Before(lf.nextTry) {
		// Healthy: once per retryInterval make sure path is still our
		// file; an external rotator may have moved it, or the directory
		// may be gone, and bytes written there would be lost for good.
		lf.nextTry = now.Add(retryInterval)
		if lf.moved() {
			if err := lf.openFile(); err != nil {
				lf.fail(err, now)
			}
		}
	}
	if lf.err != nil {
		if now.Before(lf.nextTry) || !s.recover(lf, stream, now) {
			s.drop(lf, f, 0)
			return 0
		}
	}
	n := s.writeSpans(lf, stream, f.buf, f.spans, now)
	if n < len(f.spans) {
		s.drop(lf, f, n)
	}
	return n
}

// drop counts the lines of f's pieces from index i on as lost.
func (s *Sink) drop(lf *logFile, f *formatter, i int) {
	for _, sp := range f.spans[i:] {
		lf.dropped += f.fileLines(sp.partial)
	}
}

// recover retries a failing file: reopen it if needed, then write the
// notice of what was lost. The notice also goes to the tail and the
// subscribers, so they know the file has a gap.
func (s *Sink) recover(lf *logFile, stream Stream, now time.Time) bool {
	lf.nextTry = now.Add(retryInterval)
	// Reopen when the file was moved or removed while failing (the user
	// made room by deleting it), not only when it never opened.
	if lf.f == nil || lf.moved() {
		if err := lf.openFile(); err != nil {
			lf.fail(err, now)
			return false
		}
	}
	text := fmt.Appendf(nil, "[tend: %d lines dropped while the log could not be written: %v]", lf.dropped, lf.err)
	pieces := []piece{{b: text}}
	s.notice.cont = false
	s.notice.format(stream, now, pieces)
	if s.writeSpans(lf, stream, s.notice.buf, s.notice.spans, now) == 0 {
		return false
	}
	lf.err, lf.dropped = nil, 0
	lf.nextTry = now.Add(retryInterval)
	s.tail.add(entry{time: now, stream: stream, inFile: true}, text)
	if len(s.subs) > 0 {
		s.publish(stream, now, pieces)
	}
	return true
}

// Problem returns "" when logging works, or what went wrong last, such as
// "writing /x/app-out-0.log: no space left on device (since 12:01:03; 1532
// lines dropped)". The daemon shows it in `tend ls` and `tend describe`.
func (s *Sink) Problem() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lf := range s.files() {
		if p := lf.problem(); p != "" {
			return p
		}
	}
	if s.compressErr != nil {
		return s.compressErr.Error()
	}
	return ""
}

// Reopen closes and reopens the files, for external rotators that moved
// them (the daemon calls it on SIGUSR1/SIGHUP). A file that fails to open
// is reported by Problem and retried as usual.
func (s *Sink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	now := s.now()
	var errs []error
	for _, lf := range s.files() {
		if err := lf.openFile(); err != nil {
			lf.fail(err, now)
			errs = append(errs, err)
			continue
		}
		lf.nextTry = now.Add(retryInterval)
		if lf.err != nil {
			// Reopened: let the next write clear the failure with its
			// notice now instead of in a second.
			lf.nextTry = now
		}
	}
	return errors.Join(errs...)
}

// Flush truncates the current files (`tend flush`) and empties the memory
// tail. Rotated files are left alone.
func (s *Sink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.tail.reset()
	var errs []error
	for _, lf := range s.files() {
		if lf.f == nil {
			continue
		}
		if err := lf.f.Truncate(0); err != nil {
			errs = append(errs, fmt.Errorf("flushing %s: %s", lf.path, errText(err)))
			continue
		}
		lf.size, lf.open = 0, false
	}
	return errors.Join(errs...)
}

// Close closes the files, ends every subscription (their channels are
// closed) and waits for background compression to finish. Lines arriving
// after Close are discarded.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	rotations.remove(s)
	var errs []error
	for _, lf := range s.files() {
		if err := lf.close(); err != nil {
			errs = append(errs, err)
		}
	}
	for sub := range s.subs {
		sub.close()
		delete(s.subs, sub)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return errors.Join(errs...)
}
