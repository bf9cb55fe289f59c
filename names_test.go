package tend

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"api", true}, {"api-v2", true}, {"a.b_c+d@e", true}, {"9lives", true}, {strings.Repeat("a", 64), true},
		{"", false}, {"all", false}, {"12", false}, {"-1", false}, {"../../evil", false}, {"a/b", false},
		{"my app", false}, {".hidden", false}, {"-flag", false}, {"a:b", false}, {strings.Repeat("a", 65), false},
		{"ä", false}, {"a\nb", false},
	} {
		if err := CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"server": "server", "1000": "app-1000", "all": "app-all", "my app": "my-app", "..x": "x", "": "app",
		"ünïcode": "n-code", "all-": "app-all", "1000-": "app-1000", "-12-": "app-12", "x-": "x",
		strings.Repeat("b", 80): strings.Repeat("b", 64),
	} {
		got := SafeName(in)
		if got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
		if err := CheckName(got); err != nil {
			t.Errorf("SafeName(%q) = %q: %v", in, got, err)
		}
	}
}
