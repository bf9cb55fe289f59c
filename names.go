package tend

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// MaxNameLen bounds app and namespace names: they become log file names,
// and 64 leaves room for the rest of a path.
const MaxNameLen = 64

// CheckName reports why name cannot name an app or a namespace, nil if it
// can. A name is 1 to 64 letters, digits and . _ - + @, starting with a
// letter or a digit: it becomes part of file names in $TEND_HOME, so it
// holds no '/', no space, nothing a shell would read. "all" and numbers
// are taken: they target every app and an instance id.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a name must not be empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name %.20q... is %d characters long; at most %d", name, len(name), MaxNameLen)
	case name == "all":
		return fmt.Errorf(`"all" is reserved: it targets every app`)
	case isNumber(name):
		return fmt.Errorf("%q would be read as an instance id; use a name with a letter", name)
	case !isAlnum(name[0]):
		return fmt.Errorf("name %q must start with a letter or a digit", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && !strings.ContainsRune("._-+@", rune(c)) {
			return fmt.Errorf("name %q has %q in it: use letters, digits and . _ - + @", name, c)
		}
	}
	return nil
}

// SafeName makes a valid name of s, a name tend derived itself (from a
// script's file name): other characters become '-'.
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 128 && (isAlnum(byte(r)) || strings.ContainsRune("._-+@", r)):
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	name := clip(strings.TrimLeft(b.String(), "._-+@"))
	if CheckName(name) != nil {
		name = clip("app-" + name)
	}
	return name
}

// clip cuts name to MaxNameLen and drops the dashes it ends with.
func clip(name string) string {
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	return strings.TrimRight(name, "-")
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// interpreters are commands that run the next word, so the app is named for
// that word: "python3 app.py" is "app", as PM2 names it.
var interpreters = regexp.MustCompile(`^(node|nodejs|bun|deno|tsx|ts-node|python[0-9.]*|pypy[0-9.]*|ruby|php|perl|bash|sh|dash|zsh|ksh|fish|java|env|uv|uvx|exec)$`)

// DefaultName is PM2's default app name: the script's base name without
// its extension. For a command it is the first word that is not an
// interpreter or a flag. What would not be a valid name is made one
// (SafeName).
func DefaultName(script string) string { return SafeName(baseName(script)) }

func baseName(script string) string {
	ws, err := SplitWords(script)
	if err != nil || len(ws) == 0 {
		ws = strings.Fields(script)
	}
	word := ""
	for _, w := range ws {
		if strings.HasPrefix(w, "-") || interpreters.MatchString(filepath.Base(w)) {
			continue
		}
		word = w
		break
	}
	if word == "" && len(ws) > 0 {
		word = ws[0]
	}
	base := filepath.Base(word)
	if name := strings.TrimSuffix(base, filepath.Ext(base)); name != "" {
		return name
	}
	return base
}
