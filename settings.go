package tend

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// An app's settings are described once, in Settings. The flags of
// `tend start` and `tend run`, the keys of ecosystem files, the fields
// `tend describe` shows, the README's key reference and AppSpec.Validate
// all come from that table, so a value means the same wherever it is
// written.

// Kind is the shape of a setting's value: what its flag takes and what its
// file key may hold.
type Kind int

// The kinds of settings.
const (
	KindText    Kind = iota // a string (in a file, a number is taken as its text)
	KindNumber              // a number, or a string with a unit ("2s", "200M", "max")
	KindSwitch              // true or false; the flag alone means true
	KindWords               // a command line: a list, or one text split as a shell splits it
	KindList                // a list, or one text split at blanks and commas
	KindNumbers             // KindList of numbers
	KindEnv                 // variables: a mapping in a file, KEY=VALUE flags
)

// Input is one setting's value as the user gave it, before parsing.
type Input struct {
	Text string   // KindText, KindNumber and KindSwitch ("true" or "false"); a list as one text
	List []string // KindWords and KindList: the items; KindEnv: KEY=VALUE, or KEY for the shell's value
	Dir  string   // where relative paths start: the shell's directory, or the file's
}

// Setting is one key of an app.
type Setting struct {
	Key         string   // the file key: PM2's name
	Aliases     []string // other file keys PM2 takes for it
	Flag        string   // the flag of tend start and tend run; "" when only a file sets it
	Short       string   // the flag's one-letter form
	FlagAliases []string // other flags for it
	// Invert makes the flag turn the setting off (--no-autorestart).
	Invert bool
	// Bare is the list that the flag alone, or true in a file, stands for
	// (watch: "." watches the app's directory).
	Bare string
	// Pairs makes a mapping in a file a list of key:value items
	// (depends_on: {db: ready} is db:ready).
	Pairs bool
	// TakesBool lets a file give a KindText setting as true or false, which
	// its codec reads as the words (log_rotate_interval: true).
	TakesBool bool
	// After makes it apply after the other settings, whatever the order
	// they are written in: it depends on them (time on log_date_format).
	After   bool
	Kind    Kind
	Group   string // the heading it appears under in describe and the README
	Default string // what applies when it is not given, as help and describe say it
	Example string // a value as a flag takes it, for the README and the tests
	Help    string
	codec
}

// codec reads, checks and shows one AppSpec field.
type codec struct {
	arg   string                           // what the flag's value is, for help: "duration", "size"
	set   func(s *AppSpec, in Input) error // parse in into s
	check func(s *AppSpec) error           // is what s holds valid? the zero value always is
	show  func(s *AppSpec) string          // what s holds, "" when unset
	zero  func(s *AppSpec)                 // unsets it (Repair); nil for what a spec cannot lack
}

// Lookup returns the setting for a file key or one of its aliases.
func Lookup(key string) (*Setting, bool) {
	st, ok := settingByKey[key]
	return st, ok
}

var settingByKey = func() map[string]*Setting {
	m := map[string]*Setting{}
	for i := range Settings {
		st := &Settings[i]
		for _, k := range append([]string{st.Key}, st.Aliases...) {
			if m[k] != nil {
				panic("tend: two settings use the key " + k)
			}
			m[k] = st
		}
	}
	return m
}()

// Arg names what the setting's flag takes, for help: "duration",
// "size", "list"... and "bool" for a switch, which takes nothing.
func (st *Setting) Arg() string {
	if st.arg != "" {
		return st.arg
	}
	switch st.Kind {
	case KindSwitch:
		return "bool"
	case KindWords:
		return "args"
	case KindList, KindNumbers:
		return "list"
	case KindEnv:
		return "KEY=VALUE"
	}
	return "string"
}

// IsList reports whether the setting takes a list.
func (st *Setting) IsList() bool {
	return st.Kind == KindWords || st.Kind == KindList || st.Kind == KindNumbers || st.Kind == KindEnv
}

// Split splits one text given for a list: a command line as a shell
// splits it, other lists at blanks and commas too.
func (st *Setting) Split(text string) ([]string, error) {
	if st.Kind == KindWords {
		return SplitWords(text)
	}
	return SplitList(text)
}

// Apply parses in and sets it in s. The error is the user's: it does not
// name the key or flag, which the caller knows.
func (st *Setting) Apply(s *AppSpec, in Input) error {
	if st.IsList() && st.Kind != KindEnv && in.List == nil && in.Text != "" {
		l, err := st.Split(in.Text)
		if err != nil {
			return err
		}
		in.List = l
	}
	return st.set(s, in)
}

// Show returns what s holds for the setting as describe shows it, and
// whether it is the user's (false: the default applies).
func (st *Setting) Show(s *AppSpec) (string, bool) {
	if v := st.show(s); v != "" {
		return v, true
	}
	return st.Default, false
}

// Repair makes a stored spec valid (one from a dump, or run by an older
// tend that checked less): each setting that fails its check goes back to
// its default, and a note says so. What has no default (script, name,
// cwd) stays for Validate to refuse.
func (s *AppSpec) Repair() (notes []string) {
	for i := range Settings {
		st := &Settings[i]
		if st.check == nil || st.zero == nil {
			continue
		}
		if err := st.check(s); err != nil {
			st.zero(s)
			notes = append(notes, fmt.Sprintf("%s: %s: %v; using the default instead", s.Name, st.Key, err))
		}
	}
	return notes
}

// Complete fills in what a spec built from flags or a file leaves to its
// defaults: the working directory dir, one instance, the name of the
// script. Every spec goes through it once, wherever it was written.
func (s *AppSpec) Complete(dir string) {
	if s.Cwd == "" {
		s.Cwd = dir
	}
	if !s.InstancesGiven && s.Instances == 0 {
		s.Instances = 1
	}
	if s.Name == "" {
		s.Name = DefaultName(s.Script)
	}
}

// Validate checks a whole spec, as the daemon receives it: from the CLI,
// from a saved dump, or from a program using the API. Each setting's
// check runs; the error is EINVALID and names the app and the key.
func (s *AppSpec) Validate() error {
	if strings.TrimSpace(s.Script) == "" {
		return Errorf(EINVALID, "app %q has no script", s.Name)
	}
	if err := CheckName(s.Name); err != nil {
		return Errorf(EINVALID, "app for %s: %v (--name)", s.Script, err)
	}
	if s.Cwd == "" {
		return Errorf(EINVALID, "app %s has no working directory", s.Name)
	}
	if !filepath.IsAbs(s.Cwd) {
		return Errorf(EINVALID, "app %s: working directory %s is not absolute", s.Name, s.Cwd)
	}
	for i := range Settings {
		st := &Settings[i]
		if st.check == nil {
			continue
		}
		if err := st.check(s); err != nil {
			return Causef(err, EINVALID, "app %s: %s: %v", s.Name, st.Key, err)
		}
	}
	return nil
}

// The codecs the table is made of, one per type of field.

// text is a string field; parse checks and normalizes a value (nil: any).
func text[T ~string](f func(*AppSpec) *T, parse func(string) (string, error)) codec {
	c := codec{
		set: func(s *AppSpec, in Input) error {
			v := in.Text
			if parse != nil {
				var err error
				if v, err = parse(v); err != nil {
					return err
				}
			}
			*f(s) = T(v)
			return nil
		},
		show: func(s *AppSpec) string { return string(*f(s)) },
		zero: func(s *AppSpec) { *f(s) = "" },
	}
	if parse != nil {
		c.check = func(s *AppSpec) error {
			if v := string(*f(s)); v != "" {
				_, err := parse(v)
				return err
			}
			return nil
		}
	}
	return c
}

// duration is a Duration field: milliseconds or a Go duration.
func duration(f func(*AppSpec) *Duration) codec {
	return codec{
		arg: "duration",
		set: func(s *AppSpec, in Input) (err error) {
			*f(s), err = ParseDuration(in.Text)
			return err
		},
		check: func(s *AppSpec) error {
			if d := *f(s); d < 0 {
				return fmt.Errorf("%s must not be negative", d.D())
			}
			return nil
		},
		show: func(s *AppSpec) string {
			if d := *f(s); d != 0 {
				return d.D().String()
			}
			return ""
		},
		zero: func(s *AppSpec) { *f(s) = 0 },
	}
}

// size is a size in bytes.
func size(f func(*AppSpec) *int64) codec {
	return codec{
		arg: "size",
		set: func(s *AppSpec, in Input) (err error) {
			*f(s), err = ParseBytes(in.Text)
			return err
		},
		check: func(s *AppSpec) error { return notNegative(*f(s)) },
		show: func(s *AppSpec) string {
			if b := *f(s); b != 0 {
				return formatBytes(b)
			}
			return ""
		},
		zero: func(s *AppSpec) { *f(s) = 0 },
	}
}

// count is a whole number that is not negative.
func count(f func(*AppSpec) *int) codec {
	return codec{
		arg: "n",
		set: func(s *AppSpec, in Input) error {
			n, err := parseInt(in.Text)
			if err == nil {
				err = notNegative(int64(n))
			}
			*f(s) = n
			return err
		},
		check: func(s *AppSpec) error { return notNegative(int64(*f(s))) },
		show: func(s *AppSpec) string {
			if n := *f(s); n != 0 {
				return strconv.Itoa(n)
			}
			return ""
		},
		zero: func(s *AppSpec) { *f(s) = 0 },
	}
}

// boolean is a bool field whose zero value is false.
func boolean(f func(*AppSpec) *bool) codec {
	return codec{
		set: func(s *AppSpec, in Input) (err error) {
			*f(s), err = parseBool(in.Text)
			return err
		},
		show: func(s *AppSpec) string {
			if *f(s) {
				return "true"
			}
			return ""
		},
	}
}

// optFlag is a bool field that is on unless set to false (nil: default).
func optFlag(f func(*AppSpec) **bool) codec {
	return codec{
		set: func(s *AppSpec, in Input) error {
			b, err := parseBool(in.Text)
			*f(s) = &b
			return err
		},
		show: func(s *AppSpec) string {
			if p := *f(s); p != nil {
				return strconv.FormatBool(*p)
			}
			return ""
		},
	}
}

// required marks a codec's field as one a spec cannot do without:
// Repair leaves it to Validate.
func required(c codec) codec {
	c.zero = nil
	return c
}

// list is a list of strings; check, if set, checks the items.
func list(f func(*AppSpec) *[]string, check func([]string) error) codec {
	c := codec{
		set: func(s *AppSpec, in Input) error {
			*f(s) = in.List
			if check != nil {
				return check(in.List)
			}
			return nil
		},
		show: func(s *AppSpec) string { return JoinWords(*f(s)) },
		zero: func(s *AppSpec) { *f(s) = nil },
	}
	if check != nil {
		c.check = func(s *AppSpec) error { return check(*f(s)) }
	}
	return c
}

func parseBool(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s is not true or false", quoteWord(s))
}

// parseInt parses a whole number.
func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s is not a whole number", quoteWord(s))
	}
	return n, nil
}

// quoteWord quotes s unless it reads as a number, as a file would show it.
func quoteWord(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return strconv.Quote(s)
}

func notNegative(n int64) error {
	if n < 0 {
		return fmt.Errorf("%d must not be negative", n)
	}
	return nil
}

// formatBytes shows a size with the largest binary unit that divides it.
func formatBytes(b int64) string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if b%u.n == 0 {
			return strconv.FormatInt(b/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(b, 10)
}

// envList reads KEY=VALUE items (a bare KEY takes this process's value).
func envList(s *AppSpec, in Input) error {
	for _, kv := range in.List {
		k, v, err := ParseEnvArg(kv)
		if err != nil {
			return err
		}
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		s.Env[k] = v
	}
	return nil
}

// absPath makes p absolute: "~/x" is under the home directory, a relative
// path is under dir.
func absPath(p, dir string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[1:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// percent is a share of one CPU: "150%", or "1.5" CPUs.
func percent(f func(*AppSpec) *int) codec {
	return codec{
		arg: "percent",
		set: func(s *AppSpec, in Input) (err error) {
			*f(s), err = ParsePercent(in.Text)
			return err
		},
		check: func(s *AppSpec) error { return notNegative(int64(*f(s))) },
		show: func(s *AppSpec) string {
			if n := *f(s); n != 0 {
				return strconv.Itoa(n) + "%"
			}
			return ""
		},
	}
}
