package logfile

import (
	"fmt"
	"testing"
)

type want struct {
	text    string
	partial bool
}

// splitAll feeds in to a splitter in chunks of size n and collects pieces.
func splitAll(max int, in string, n int) []want {
	s := newSplitter(max)
	var got []want
	collect := func(ps []piece) {
		for _, p := range ps {
			got = append(got, want{string(p.b), p.partial})
		}
	}
	for len(in) > 0 {
		k := min(n, len(in))
		ps, rest := s.split([]byte(in[:k]))
		collect(ps)
		s.keep(rest)
		in = in[k:]
	}
	collect(s.end())
	return got
}

func TestSplit(t *testing.T) {
	const max = 8
	tests := []struct {
		name string
		in   string
		want []want
	}{
		{"lines", "a\nbb\n", []want{{"a", false}, {"bb", false}}},
		{"crlf", "a\r\nbb\r\n", []want{{"a", false}, {"bb", false}}},
		{"only the last cr", "a\r\r\n", []want{{"a\r", false}}},
		{"empty lines", "\n\n", []want{{"", false}, {"", false}}},
		{"unterminated last line", "a\nbc", []want{{"a", false}, {"bc", false}}},
		{"unterminated crlf", "a\r", []want{{"a", false}}},
		{"exactly max", "12345678\n", []want{{"12345678", false}}},
		{"exactly max unterminated", "12345678", []want{{"12345678", false}}},
		{"max plus one", "123456789\n", []want{{"12345678", true}, {"9", false}}},
		{"two pieces", "1234567812345678\nz\n", []want{{"12345678", true}, {"12345678", false}, {"z", false}}},
		{"two pieces unterminated", "1234567812345678", []want{{"12345678", true}, {"12345678", false}}},
		{"cr after a full piece", "12345678\r\n", []want{{"12345678", true}, {"", false}}},
		{"binary", "\x00\xff\xfe\n\x01", []want{{"\x00\xff\xfe", false}, {"\x01", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// However the bytes are cut into reads, the lines are the same.
			for n := 1; n <= len(tt.in); n++ {
				got := splitAll(max, tt.in, n)
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("chunks of %d: got %+v, want %+v", n, got, tt.want)
				}
			}
		})
	}
}
