package tend

import (
	"errors"
	"strings"
)

// SplitWords splits s into words the way a POSIX shell would, without
// expanding anything: blanks separate words, single quotes keep everything
// literal, double quotes keep blanks and honour \" and \\, and a backslash
// outside quotes escapes the next character. PM2 splits string args the same
// way, so args: "--name 'my app'" gives ["--name", "my app"]. It is the one
// splitter of command lines in tend: args, interpreter_args, and a script
// given as a command ("python3 -m http.server").
func SplitWords(s string) ([]string, error) { return split(s, false) }

// SplitList splits a list given as one text, "src,config.json" or
// "src config.json": as SplitWords, with commas outside quotes separating
// items as blanks do. The flag and the file key of a list take the same
// text the same way.
func SplitList(s string) ([]string, error) { return split(s, true) }

func split(s string, commas bool) ([]string, error) {
	var (
		out    []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || (commas && c == ','):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New(`unterminated " quote`)
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// JoinWords is the inverse of SplitWords: the words as one command line,
// each quoted when a shell would split or expand it.
func JoinWords(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w != "" && !strings.ContainsAny(w, " \t\n\r'\"\\$`*?[]{}()<>|&;#~!") {
			b.WriteString(w)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(w, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}
