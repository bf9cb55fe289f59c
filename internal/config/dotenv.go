package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/private"
)

// LoadEnvFiles reads an app's env_file list, each path relative to dir,
// in order: a later file's variable wins over an earlier one's. lookup
// gives what ${VAR} means when no file so far set VAR (the shell's
// environment). Errors name the file and line.
//
// The files are opened as private.OpenFile opens: through no symlink,
// regular files only, and, with as set (an app that runs as another user),
// with that user's permissions, so the daemon reads for the app only what
// the app's user could read itself.
func LoadEnvFiles(paths []string, dir string, as *private.User, lookup func(string) (string, bool)) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			p = dir + "/" + p
		}
		data, err := readEnvFile(p, as)
		if err != nil {
			return nil, err
		}
		vars, err := ParseDotenv(string(data), func(k string) (string, bool) {
			if v, ok := out[k]; ok {
				return v, true
			}
			return lookup(k)
		})
		if err != nil {
			return nil, tend.Errorf(tend.EINVALID, "env_file %s:%v", p, err)
		}
		for k, v := range vars {
			out[k] = v
		}
	}
	return out, nil
}

// maxEnvFile bounds an env_file: it is read into the daemon.
const maxEnvFile = 1 << 20

// readEnvFile reads p, a regular file of at most maxEnvFile bytes: not a
// FIFO that would hang the daemon, nor a device that never ends, nor a
// symlink to a file the app's user may not read.
func readEnvFile(p string, as *private.User) ([]byte, error) {
	f, err := private.OpenFile(p, os.O_RDONLY, as)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, tend.Causef(err, tend.ENOTFOUND, "env_file %s does not exist", p)
		case errors.Is(err, private.ErrSymlink), errors.Is(err, private.ErrNotRegular):
			return nil, tend.Causef(err, tend.EINVALID, "env_file %s: %v", p, unwrapPath(err))
		case as != nil && errors.Is(err, fs.ErrPermission):
			return nil, tend.Causef(err, tend.EINVALID, "env_file %s: the app's user (uid %d) cannot read it, and an app gets only what its user can read: make it readable by that user", p, as.UID)
		}
		return nil, tend.Causef(err, tend.EFAILED, "env_file %s: %v", p, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, tend.Causef(err, tend.EFAILED, "env_file %s: %v", p, err)
	case !fi.Mode().IsRegular():
		return nil, tend.Errorf(tend.EINVALID, "env_file %s is not a regular file", p)
	case fi.Size() > maxEnvFile:
		return nil, tend.Errorf(tend.EINVALID, "env_file %s is %d bytes; at most %d", p, fi.Size(), maxEnvFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFile+1))
	if err != nil {
		return nil, tend.Causef(err, tend.EFAILED, "env_file %s: %v", p, err)
	}
	return data, nil
}

// ParseDotenv parses a dotenv file as docker compose and the dotenv
// libraries read one: KEY=VALUE lines, an optional "export " before the
// key, blank lines and # comments. A value is
//   - bare: trimmed, up to a " #" comment, ${VAR}, ${VAR:-default} and
//     $VAR expanded;
//   - in single quotes: literal, across lines if need be;
//   - in double quotes: \n \r \t \" \\ \$ escapes and ${VAR} expanded,
//     across lines if need be.
//
// VAR is an earlier key of the file, else lookup's. An error says the line
// (": line 3: ...").
func ParseDotenv(data string, lookup func(string) (string, bool)) (map[string]string, error) {
	out := map[string]string{}
	get := func(k string) string {
		if v, ok := out[k]; ok {
			return v
		}
		v, _ := lookup(k)
		return v
	}
	data = strings.TrimPrefix(data, "\ufeff") // editors on Windows add a BOM
	lines := strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, rest, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t\"'$\x00") {
			return nil, fmt.Errorf(" line %d: %q is not KEY=VALUE", n, lines[i])
		}
		rest = strings.TrimLeft(rest, " \t")
		var val string
		switch {
		case strings.HasPrefix(rest, "'"), strings.HasPrefix(rest, `"`):
			q := rest[0]
			body := rest[1:]
			// A quoted value may go on over the next lines.
			for end := closing(body, q); end < 0; end = closing(body, q) {
				if i+1 >= len(lines) {
					return nil, fmt.Errorf(" line %d: %s: unterminated %c quote", n, key, q)
				}
				i++
				body += "\n" + lines[i]
			}
			end := closing(body, q)
			if tail := strings.TrimSpace(body[end+1:]); tail != "" && !strings.HasPrefix(tail, "#") {
				return nil, fmt.Errorf(" line %d: %s: %q after the closing quote", n, key, tail)
			}
			val = body[:end]
			if q == '"' {
				val = unescape(val, get)
			}
		default:
			// A # after a blank starts a comment (KEY= # a comment too);
			// one inside a word (a#b) does not.
			for j := range len(rest) {
				if rest[j] == '#' && (j == 0 || rest[j-1] == ' ' || rest[j-1] == '\t') {
					rest = rest[:j]
					break
				}
			}
			val = expand(strings.TrimSpace(rest), get)
		}
		if strings.IndexByte(val, 0) >= 0 {
			return nil, fmt.Errorf(" line %d: %s: the value contains a NUL byte", n, key)
		}
		out[key] = val
	}
	return out, nil
}

// closing is the index of the quote q that ends s, -1 if none: in double
// quotes a backslash escapes the next character.
func closing(s string, q byte) int {
	for i := 0; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q:
			return i
		}
	}
	return -1
}

// unescape reads a double-quoted value: its escapes, and ${VAR} and $VAR
// expanded unless the $ is escaped.
func unescape(s string, get func(string) string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default: // \" \\ \$ and anything else: the character itself
				b.WriteByte(s[i])
			}
			continue
		}
		if s[i] == '$' {
			name, size := varAt(s[i+1:])
			if size > 0 {
				name, def, hasDef := strings.Cut(name, ":-")
				v := get(name)
				if v == "" && hasDef {
					v = def // ${VAR:-default}
				}
				b.WriteString(v)
				i += size
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// expand replaces ${VAR} and $VAR in a bare value.
func expand(s string, get func(string) string) string {
	return unescape(strings.ReplaceAll(s, `\`, `\\`), get)
}

// varAt reads a variable reference after a '$': {NAME} or NAME. size is
// how many bytes it took, 0 when there is none.
func varAt(s string) (name string, size int) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 2 {
			return "", 0
		}
		return s[1:end], end + 1
	}
	n := 0
	for n < len(s) && (s[n] == '_' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= 'a' && s[n] <= 'z' || n > 0 && s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return s[:n], n
}
