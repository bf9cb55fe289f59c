package logfile

import "time"

// Stream says which pipe a line came from.
type Stream uint8

// The two streams of an instance.
const (
	Stdout Stream = iota
	Stderr
)

// String returns "stdout" or "stderr", the names the JSON records use.
func (s Stream) String() string {
	if s == Stderr {
		return "stderr"
	}
	return "stdout"
}

// Line is one line (or one piece of a very long line) an instance printed.
type Line struct {
	Time     time.Time // when the daemon read it; zero for lines read back from raw files
	App      string
	Instance int
	Stream   Stream
	// Text is the line without its trailing newline (and '\r'). Bytes that
	// are not valid UTF-8 are kept as they are in raw files; JSON encoders
	// (encoding/json and this package's) replace them with U+FFFD.
	Text string
	// Partial is true on every piece but the last of a line longer than
	// MaxLine; the pieces follow in order and the last one has Partial
	// false, so joining pieces up to the first non-Partial one rebuilds the
	// line.
	Partial bool
}

// MaxLine is the longest piece of a line the sink handles at once. Longer
// lines are cut into pieces marked Partial, so a 10 MB line costs no more
// memory than a short one. 64 KiB is the default Linux pipe capacity: any line
// an app writes in one go up to that size reaches us in one read and is never
// cut, while a sink still holds only a few buffers of this size (read buffer,
// carry buffer, tail).
const MaxLine = 64 << 10
