package logfile

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// span marks where one formatted piece ends in a formatter's buffer. Files
// are only rotated at span ends, so never in the middle of a line.
type span struct {
	end     int
	partial bool
}

// formatter renders pieces into file bytes: raw, raw with a per-line time
// prefix, or JSON lines. Each ReadFrom goroutine owns one, so formatting runs
// outside the sink's lock and its buffer is reused chunk after chunk.
type formatter struct {
	layout string
	json   bool
	app    []byte // JSON-escaped app name, computed once
	inst   int

	cont   bool   // the last piece of this stream was Partial: the next one continues its line
	prefix []byte // per-chunk line prefix: the time, or the JSON record up to "message"
	buf    []byte
	spans  []span
}

func newFormatter(opt *Options) *formatter {
	return &formatter{
		layout: opt.TimeLayout,
		json:   opt.JSON,
		app:    appendJSONString(nil, []byte(opt.App)),
		inst:   opt.Instance,
	}
}

// format replaces the buffer's content with pieces, read at now from stream.
func (f *formatter) format(stream Stream, now time.Time, pieces []piece) {
	f.buf = f.buf[:0]
	f.spans = f.spans[:0]
	if len(pieces) == 0 {
		return
	}
	// Every line of a chunk was read at the same instant, so the prefix is
	// rendered once per chunk; formatting a time per line is what made
	// PM2's --log-date-format cost another 9% of a core.
	f.prefix = f.prefix[:0]
	switch {
	case f.json:
		f.prefix = append(f.prefix, `{"time":"`...)
		f.prefix = now.AppendFormat(f.prefix, time.RFC3339Nano)
		f.prefix = append(f.prefix, `","app":`...)
		f.prefix = append(f.prefix, f.app...)
		f.prefix = append(f.prefix, `,"instance":`...)
		f.prefix = strconv.AppendInt(f.prefix, int64(f.inst), 10)
		f.prefix = append(f.prefix, `,"stream":"`...)
		f.prefix = append(f.prefix, stream.String()...)
		f.prefix = append(f.prefix, `","message":`...)
	case f.layout != "":
		f.prefix = now.AppendFormat(f.prefix, f.layout)
		f.prefix = append(f.prefix, ": "...)
	}
	for _, p := range pieces {
		switch {
		case f.json:
			// Each piece is its own record: a JSON line cannot be left open.
			f.buf = append(f.buf, f.prefix...)
			f.buf = appendJSONString(f.buf, p.b)
			if p.partial {
				f.buf = append(f.buf, `,"partial":true`...)
			}
			f.buf = append(f.buf, "}\n"...)
		default:
			// Raw pieces are written back to back, so the file keeps a long
			// line whole; only its first piece gets the time prefix.
			if !f.cont {
				f.buf = append(f.buf, f.prefix...)
			}
			f.buf = append(f.buf, p.b...)
			if !p.partial {
				f.buf = append(f.buf, '\n')
			}
		}
		f.cont = p.partial
		f.spans = append(f.spans, span{end: len(f.buf), partial: p.partial && !f.json})
	}
}

// fileLines reports how many lines of a file a piece accounts for: in raw
// files only the last piece of a line ends one.
func (f *formatter) fileLines(partial bool) int {
	if partial && !f.json {
		return 0
	}
	return 1
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes that go into a JSON string unescaped; a
// table lookup keeps the per-byte loop to one branch.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends b as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does, so a line of binary junk still yields valid JSON.
func appendJSONString(dst, b []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, b[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, b[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript;
		// encoding/json escapes them too.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, b[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, b[start:]...)
	return append(dst, '"')
}
