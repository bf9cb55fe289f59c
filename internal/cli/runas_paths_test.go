package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendhq/tend"
)

// The tests here are of paths an app's user controls and the root daemon
// uses: its log files, its env_file, the sockets its Node workers ask the
// cluster primary for.

// nobodyDir is a directory owned by nobody, as an app's own directory is.
func nobodyDir(t *testing.T) string {
	t.Helper()
	dir := publicDir(t, nil)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asNobody runs a shell script as nobody: what an app's user can do.
func asNobody(t *testing.T, script string) {
	t.Helper()
	if out, err := exec.Command("su", "-s", "/bin/sh", "nobody", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %s: %v\n%s", script, err, out)
	}
}

// TestRunAsUserLogSymlink: an app running as nobody whose out_file is in
// a directory nobody writes swaps the log for a symlink to a file of
// root's choosing. The root daemon notices the log moved, refuses to
// reopen it through the symlink, says so in describe, and the app runs
// on.
func TestRunAsUserLogSymlink(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	h := newHarness(t)
	dir := nobodyDir(t)
	app := filepath.Join(dir, "app.py")
	os.WriteFile(app, []byte("import time\nwhile True:\n    print('* * * * * root id > /tmp/owned', flush=True)\n    time.sleep(0.05)\n"), 0o644)
	secret := t.TempDir() // root's, 0700
	target := filepath.Join(secret, "cron-job")
	out := filepath.Join(dir, "out.log")
	h.ok("start", app, "--interpreter", "/usr/bin/python3", "--name", "sym", "--user", "nobody", "--output", out)
	h.await("online", allStatus(1, tend.StatusOnline))
	h.poll("the app's output in "+out, func() bool {
		b, _ := os.ReadFile(out)
		return len(b) > 0
	})
	asNobody(t, "rm -f "+out+" && ln -s "+target+" "+out)
	var desc string
	h.poll("describe to report the refused symlink", func() bool {
		desc = h.ok("describe", "sym")
		return strings.Contains(desc, "symlink")
	})
	if !strings.Contains(desc, out) {
		t.Errorf("describe does not name %s:\n%s", out, desc)
	}
	if b, err := os.ReadFile(target); err == nil {
		t.Errorf("root's daemon wrote nobody's output through nobody's symlink into %s:\n%.200s", target, b)
	}
	if in := h.ls(); len(in) != 1 || in[0].Status != tend.StatusOnline || in[0].Restarts != 0 {
		t.Errorf("the app did not run on: %+v", in)
	}
}
