package tend

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// pinCPUs makes "max" and "-N" deterministic.
func pinCPUs(t *testing.T, n int) {
	t.Helper()
	old := NumCPU
	NumCPU = func() int { return n }
	t.Cleanup(func() { NumCPU = old })
}

func ms(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }

// checkErr checks that err is an *Error with code and message msg.
func checkErr(t *testing.T, err error, code Code, msg string) {
	t.Helper()
	te, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("error %T %q is not a *Error", err, err)
	}
	if te.Code != code {
		t.Errorf("code %q, want %q", te.Code, code)
	}
	if te.Message != msg {
		t.Errorf("message\n got %s\nwant %s", te.Message, msg)
	}
}

func TestParseInstances(t *testing.T) {
	pinCPUs(t, 8)
	tests := []struct {
		in   string
		want int
		err  string
	}{
		{"1", 1, ""}, {"16", 16, ""}, {"max", 8, ""}, {"MAX", 8, ""}, {"0", 8, ""},
		{"-1", 7, ""}, {"-7", 1, ""}, {"-100", 1, ""}, {" 2 ", 2, ""},
		{"lots", 0, `"lots" is not a number, "max" or "-N"`},
		{"", 0, `"" is not a number, "max" or "-N"`},
		{"1.5", 0, `"1.5" is not a number, "max" or "-N"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseInstances(tt.in)
			checkFlag(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
		err  string
	}{
		{"1500", ms(1500), ""}, {"1500ms", ms(1500), ""}, {"2s", ms(2000), ""}, {"1m", ms(60000), ""},
		{"1h", ms(3600000), ""}, {"0", 0, ""}, {"2.5", Duration(2500 * time.Microsecond), ""},
		{"1m30s", ms(90000), ""}, {"-0", 0, ""},
		{"-5", 0, "-5 must not be negative"},
		{"-1s", 0, "-1s must not be negative"},
		{"1e3", 0, `"1e3" is not a duration; use milliseconds or a unit: 1500, 1500ms, 2s, 1m, 1h`},
		{"2 s", 0, `"2 s" is not a duration; use milliseconds or a unit: 1500, 1500ms, 2s, 1m, 1h`},
		{"soon", 0, `"soon" is not a duration; use milliseconds or a unit: 1500, 1500ms, 2s, 1m, 1h`},
		{"", 0, `"" is not a duration; use milliseconds or a unit: 1500, 1500ms, 2s, 1m, 1h`},
		{"99999999999999999999", 0, "99999999999999999999 is too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			checkFlag(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseBytes(t *testing.T) {
	const badSize = " is not a size; use bytes or a unit: 1024, 512K, 200M, 1G"
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"1024", 1024, ""}, {"512K", 512 << 10, ""}, {"200M", 200 << 20, ""}, {"1G", 1 << 30, ""},
		{"2T", 2 << 40, ""}, {"200m", 200 << 20, ""}, {"200MB", 200 << 20, ""}, {"1GiB", 1 << 30, ""},
		{"1.5G", 3 << 29, ""}, {"0", 0, ""}, {"100 M", 100 << 20, ""},
		{"-1M", 0, "-1M must not be negative"},
		{"lots", 0, `"lots"` + badSize},
		{"1X", 0, `"1X"` + badSize},
		{"M", 0, `"M"` + badSize},
		{"", 0, `""` + badSize},
		{"1e3", 0, `"1e3"` + badSize},
		{"99999999999T", 0, "99999999999T is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBytes(tt.in)
			checkFlag(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"SIGTERM", "SIGTERM", ""}, {"TERM", "SIGTERM", ""}, {"sigterm", "SIGTERM", ""}, {"term", "SIGTERM", ""},
		{"15", "SIGTERM", ""}, {"2", "SIGINT", ""}, {"9", "SIGKILL", ""}, {"SIGUSR2", "SIGUSR2", ""}, {"hup", "SIGHUP", ""},
		{"SIGFOO", "", `unknown signal "SIGFOO"`},
		{"0", "", `unknown signal "0"`},
		{"999", "", `unknown signal "999"`},
		{"", "", `unknown signal ""`},
		{"SIG", "", `unknown signal "SIG"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			checkFlag(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseEnvArg(t *testing.T) {
	t.Setenv("TEND_TEST_FROM_SHELL", "shell value")
	tests := []struct{ in, key, value, err string }{
		{"KEY=VAL", "KEY", "VAL", ""},
		{"KEY=", "KEY", "", ""},
		{"KEY=a=b", "KEY", "a=b", ""},
		{"TEND_TEST_FROM_SHELL", "TEND_TEST_FROM_SHELL", "shell value", ""},
		{"TEND_TEST_UNSET_VARIABLE", "TEND_TEST_UNSET_VARIABLE", "", ""},
		{"=x", "", "", `"=x": the variable name is empty; use KEY=VALUE`},
		{"", "", "", `"": the variable name is empty; use KEY=VALUE`},
		{"A\x00B=1", "", "", `"A\x00B=1": "A\x00B" is not a variable name; use KEY=VALUE`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			k, v, err := ParseEnvArg(tt.in)
			checkFlag(t, [2]string{k, v}, err, [2]string{tt.key, tt.value}, tt.err)
		})
	}
}

// checkFlag checks the result of one of the Parse* flag parsers.
func checkFlag[T comparable](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil {
			t.Fatalf("got %v, want error %q", got, wantErr)
		}
		checkErr(t, err, EINVALID, wantErr)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestGoLayout(t *testing.T) {
	tests := []struct{ in, want string }{
		{"YYYY-MM-DD HH:mm:ss", "2006-01-02 15:04:05"},
		{"YYYY-MM-DDTHH:mm:ss.SSSZ", "2006-01-02T15:04:05.000-07:00"},
		{"DD/MM/YY hh:mm A", "02/01/06 03:04 PM"},
		{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05Z07:00"},
		{"[day] D MMM", "day 2 Jan"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := GoLayout(tt.in); got != tt.want {
				t.Errorf("GoLayout(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"  a  b\tc ", []string{"a", "b", "c"}, ""},
		{`--name 'my app'`, []string{"--name", "my app"}, ""},
		{`"a \"b\" \\ \n"`, []string{`a "b" \ \n`}, ""},
		{`a\ b ''`, []string{"a b", ""}, ""},
		{`x"y"'z'`, []string{"xyz"}, ""},
		{`'open`, nil, "unterminated ' quote"},
		{`"open`, nil, `unterminated " quote`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SplitWords(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestJoinWords(t *testing.T) {
	for _, words := range [][]string{
		{"node", "--title", "my api", "app.js"},
		{"a'b", `c"d`, "", "$HOME", `back\slash`, "*.js"},
		{},
	} {
		got, err := SplitWords(JoinWords(words))
		if err != nil || !reflect.DeepEqual(got, words) && len(words) > 0 {
			t.Errorf("SplitWords(JoinWords(%q)) = %q, %v", words, got, err)
		}
	}
	if got := JoinWords([]string{"node", "--title", "my api"}); got != "node --title 'my api'" {
		t.Errorf("JoinWords = %q", got)
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]int{"150%": 150, "150": 150, " 50 % ": 50, "0": 0} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"1.5", "-10%", "lots", "%", ""} {
		if _, err := ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q) took it", in)
		}
	}
}
