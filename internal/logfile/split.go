package logfile

import "bytes"

// piece is one line, or one piece of a long line, found by a splitter. Its
// bytes point into the chunk being split or into the splitter's carry buffer
// and stay valid until the next call to keep.
type piece struct {
	b       []byte
	partial bool
}

// splitter cuts a byte stream into lines of at most max bytes. It copies only
// the unterminated end of each chunk (into carry); complete lines are handed
// out as slices of the chunk itself.
type splitter struct {
	max     int
	carry   []byte // start of a line whose end has not arrived yet; at most max, grown on demand
	emitted bool   // carry was handed out by the last split; keep must reset it
	pieces  []piece
}

func newSplitter(max int) *splitter {
	return &splitter{max: max}
}

// split returns the pieces completed by chunk p and the unterminated rest of
// p. The caller consumes the pieces, then passes rest to keep.
func (s *splitter) split(p []byte) (pieces []piece, rest []byte) {
	s.pieces = s.pieces[:0]
	if len(s.carry) > 0 {
		i := bytes.IndexByte(p, '\n')
		end := i
		if i < 0 {
			end = len(p)
		}
		room := s.max - len(s.carry)
		switch {
		case end <= room && i < 0:
			// Still no end of line and it still fits: all of p is carried.
			return s.pieces, p
		case end <= room:
			s.carry = append(s.carry, p[:i]...)
			s.emit(trimCR(s.carry), false)
			p = p[i+1:]
		default:
			// The carried line outgrows max: hand out a full piece. More
			// bytes of this line follow (end > room), so it is Partial.
			s.carry = append(s.carry, p[:room]...)
			s.emit(s.carry, true)
			p = p[room:]
		}
		s.emitted = true
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		line := p[:i]
		for len(line) > s.max {
			s.emit(line[:s.max], true)
			line = line[s.max:]
		}
		s.emit(trimCR(line), false)
		p = p[i+1:]
	}
	// A piece is Partial only if more bytes of its line exist, so a rest of
	// exactly max bytes stays carried until we know whether '\n' follows.
	for len(p) > s.max {
		s.emit(p[:s.max], true)
		p = p[s.max:]
	}
	return s.pieces, p
}

// keep carries rest, as returned by split, over to the next chunk.
func (s *splitter) keep(rest []byte) {
	if s.emitted {
		s.carry = s.carry[:0]
		s.emitted = false
	}
	s.carry = append(s.carry, rest...)
}

// end returns the final unterminated line, if any, when the stream ends.
func (s *splitter) end() []piece {
	s.pieces = s.pieces[:0]
	if len(s.carry) > 0 {
		s.emit(trimCR(s.carry), false)
		s.emitted = true
	}
	return s.pieces
}

func (s *splitter) emit(b []byte, partial bool) {
	s.pieces = append(s.pieces, piece{b: b, partial: partial})
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
