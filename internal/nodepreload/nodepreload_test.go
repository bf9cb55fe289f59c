package nodepreload

import "testing"

func TestOptions(t *testing.T) {
	for _, tc := range []struct{ current, path, want string }{
		{"", "/run/p.cjs", "--require /run/p.cjs"},
		{"--max-old-space-size=512", "/run/p.cjs", "--max-old-space-size=512 --require /run/p.cjs"},
		{"", "/home/a b/p.cjs", `--require "/home/a b/p.cjs"`},
	} {
		if got := Options(tc.current, tc.path); got != tc.want {
			t.Errorf("Options(%q, %q) = %q, want %q", tc.current, tc.path, got, tc.want)
		}
	}
}
