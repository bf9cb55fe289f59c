package config

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/private"
	"golang.org/x/sys/unix"
)

func TestParseDotenv(t *testing.T) {
	src := strings.Join([]string{
		"# a comment",
		"",
		"PLAIN=value",
		"SPACED =  spaced value  ",
		"export EXPORTED=yes",
		"EMPTY=",
		"COMMENTED=kept # dropped",
		"HASH=a#b",
		"SINGLE='literal $PLAIN \\n # kept'",
		`DOUBLE="tab\there \"q\" \$PLAIN ${PLAIN}"`,
		"BARE_VAR=$PLAIN/${HOME_DIR}/x",
		"DEFAULT=${UNSET:-fallback}",
		`MULTI="line one`,
		`line two"`,
		"MULTI_SINGLE='a",
		"b'",
		"URL=postgres://u:p@h:5432/db?sslmode=disable",
		"EQUALS=a=b=c",
		"CRLF=x\r",
		"EMPTY_COMMENT= # only a comment",
		"TAB_COMMENT=v\t# comment",
	}, "\n")
	got, err := ParseDotenv("\ufeff"+src, func(k string) (string, bool) {
		if k == "HOME_DIR" {
			return "/home/me", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"PLAIN": "value", "SPACED": "spaced value", "EXPORTED": "yes", "EMPTY": "", "COMMENTED": "kept", "HASH": "a#b",
		"SINGLE": `literal $PLAIN \n # kept`, "DOUBLE": "tab\there \"q\" $PLAIN value", "BARE_VAR": "value//home/me/x",
		"DEFAULT": "fallback", "MULTI": "line one\nline two", "MULTI_SINGLE": "a\nb",
		"URL": "postgres://u:p@h:5432/db?sslmode=disable", "EQUALS": "a=b=c", "CRLF": "x", "EMPTY_COMMENT": "", "TAB_COMMENT": "v",
	}
	if !maps.Equal(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s = %q", k, got[k])
			}
		}
	}
	for _, tc := range []struct{ src, err string }{
		{"NOEQUALS", `line 1: "NOEQUALS" is not KEY=VALUE`},
		{"A=1\nBAD KEY=2", `line 2: "BAD KEY=2" is not KEY=VALUE`},
		{"Q=\"open", `line 1: Q: unterminated " quote`},
		{"Q='a' b", `line 1: Q: "b" after the closing quote`},
	} {
		if _, err := ParseDotenv(tc.src, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.err)
		}
	}
}

func TestLoadEnvFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "base.env"), []byte("A=1\nB=${A}2\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "local.env"), []byte("B=override-$A\n"), 0o600)
	got, err := LoadEnvFiles([]string{"base.env", "local.env"}, dir, nil, func(string) (string, bool) { return "", false })
	if err != nil || got["A"] != "1" || got["B"] != "override-1" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := LoadEnvFiles([]string{"nope.env"}, dir, nil, nil); tend.ErrorCode(err) != tend.ENOTFOUND {
		t.Errorf("a missing file: %v", err)
	}
}

// TestLoadEnvFilesRefuses: an env_file is read through no symlink, only
// if it is a regular file, and, for an app of another user, only if that
// user could read it: the daemon, often root, must not hand an app what
// its user cannot read.
func TestLoadEnvFilesRefuses(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret.env")
	os.WriteFile(secret, []byte("ROOT_SECRET=hunter2\n"), 0o600)
	os.Symlink(secret, filepath.Join(dir, "link.env"))
	os.Lchown(filepath.Join(dir, "link.env"), 65534, 65534) // planted by another user
	os.Mkdir(filepath.Join(dir, "real"), 0o700)
	os.WriteFile(filepath.Join(dir, "real", "ok.env"), []byte("A=1\n"), 0o600)
	os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "linkdir"))
	os.Lchown(filepath.Join(dir, "linkdir"), 65534, 65534)
	if err := unix.Mkfifo(filepath.Join(dir, "fifo.env"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{"link.env", "symlink"},
		{"linkdir/ok.env", "symlink"},
		{"fifo.env", "not a regular file"},
	} {
		_, err := LoadEnvFiles([]string{tc.file}, dir, nil, nil)
		if tend.ErrorCode(err) != tend.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an invalid-input error saying %q", tc.file, err, tc.want)
		}
	}
	if os.Getuid() != 0 {
		return
	}
	nobody := &private.User{UID: 65534, GID: 65534}
	_, err := LoadEnvFiles([]string{secret}, dir, nobody, nil)
	if tend.ErrorCode(err) != tend.EINVALID || !strings.Contains(err.Error(), "cannot read it") {
		t.Errorf("root's 0600 file read for nobody: %v", err)
	}
}
