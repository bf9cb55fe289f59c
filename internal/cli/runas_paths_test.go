package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
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

// TestRunAsUserEnvFile: the root daemon reads an app's env_file for it,
// with the permissions of the app's user. An app user that swaps its .env
// for a symlink to a root-only file gets a refused restart, not root's
// secrets; and an
// env_file its user cannot read is refused at start, though root can
// read it.
func TestRunAsUserEnvFile(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	h := newHarness(t)
	dir := nobodyDir(t)
	app := filepath.Join(dir, "env.py")
	os.WriteFile(app, []byte("import os, time\nprint('A=' + os.environ.get('A', '') + ' SECRET=' + os.environ.get('ROOT_SECRET', ''), flush=True)\ntime.sleep(3600)\n"), 0o644)
	env := filepath.Join(dir, ".env")
	asNobody(t, "echo A=1 > "+env)
	secret := filepath.Join(t.TempDir(), "secret.env")
	os.WriteFile(secret, []byte("ROOT_SECRET=hunter2\n"), 0o600)
	h.ok("start", app, "--interpreter", "/usr/bin/python3", "--name", "envy", "--user", "nobody", "--env-file", env)
	h.awaitLog("envy", "A=1 SECRET=")

	// nobody's own link is followed with nobody's permissions, which do
	// not reach root's file.
	asNobody(t, "rm "+env+" && ln -s "+secret+" "+env)
	_, stderr, code := h.run("restart", "envy", "--update-env")
	if code == 0 || !strings.Contains(stderr, env) || !strings.Contains(stderr, "cannot read it") {
		t.Errorf("restart --update-env through a symlinked env_file: exit %d, %q; want a failure naming %s", code, stderr, env)
	}
	if out := h.ok("logs", "envy", "--nostream", "--lines", "100"); strings.Contains(out, "hunter2") {
		t.Errorf("nobody's app got root's secret through its env_file symlink:\n%s", out)
	}

	// Root's own file, in nobody's directory: root could read it, nobody
	// cannot.
	rootEnv := filepath.Join(dir, "root.env")
	os.WriteFile(rootEnv, []byte("ROOT_SECRET=hunter2\n"), 0o600)
	out := h.fail(2, "start", app, "--interpreter", "/usr/bin/python3", "--name", "envy2", "--user", "nobody", "--env-file", rootEnv)
	if !strings.Contains(out, rootEnv) || !strings.Contains(out, "cannot read it") {
		t.Errorf("start with an env_file nobody cannot read: %q", out)
	}
}

// privJS: worker 0 asks tend's (root) cluster primary for what its user,
// nobody, could not bind itself: a unix socket (a file the root primary
// would create, and later remove, in a directory nobody controls) and
// port 81. Both fail as nobody's own listen() would; the app's --port
// serves as usual.
const privJS = `const net = require('net'), http = require('http');
http.createServer((q, s) => s.end('pid ' + process.pid)).listen(process.env.PORT, () => console.log('serving'));
if (process.env.NODE_APP_INSTANCE === '0') {
  const report = (what) => (e) => console.log(what + ' ' + e.code);
  net.createServer().on('error', report('unix')).listen(process.argv[2] + '/victim.sock', () => console.log('unix bound'));
  net.createServer().on('error', report('port81')).listen(81, () => console.log('port81 bound'));
}
setInterval(() => {}, 1000);
`

// TestRunAsUserNodeClusterPrivileged: the root primary binds nothing for
// a worker of nobody that nobody could not bind itself.
func TestRunAsUserNodeClusterPrivileged(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node")
	}
	h := newHarness(t)
	pub := publicDir(t, nil)
	os.WriteFile(filepath.Join(pub, "priv.js"), []byte(privJS), 0o644)
	d := nobodyDir(t)
	port := testport.Free(t)
	h.ok("start", filepath.Join(pub, "priv.js"), "--name", "priv", "-i", "2", "--port", strconv.Itoa(port), "--user", "nobody", "--", d)
	h.await("2 online", allStatus(2, tend.StatusOnline))
	h.awaitLog("priv", "unix EACCES")
	out := h.awaitLog("priv", "port81 EACCES")
	if strings.Contains(out, "bound") {
		t.Errorf("the root primary bound a unix socket or port 81 for nobody's worker:\n%s", out)
	}
	if _, err := os.Lstat(filepath.Join(d, "victim.sock")); err == nil {
		t.Errorf("the root primary made a socket file in nobody's directory")
	}
	if _, err := get("http://127.0.0.1:" + strconv.Itoa(port) + "/"); err != nil {
		t.Errorf("the app's --port: %v", err)
	}
}

// TestLogsUnderSymlinkedHome: logs follow no symlink, but a TEND_HOME
// under one (/home linked to /data/home) is the user's own choice: its
// logs are written where it resolves, with no problem reported.
func TestLogsUnderSymlinkedHome(t *testing.T) {
	h := newHarness(t)
	link := h.home + "-link"
	if err := os.Symlink(h.home, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	home := filepath.Join(link, "home")
	h.env = append(h.env, "TEND_HOME="+home) // the last one wins
	t.Cleanup(func() { h.run("kill") })
	h.ok("start", h.self, "--name", "tick", "--", "ticker")
	out := filepath.Join(h.home, "home", "logs", "tick-out-0.log")
	h.poll("ticks in "+out, func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "tick 1 ")
	})
	if desc := h.ok("describe", "tick"); strings.Contains(desc, "symlink") {
		t.Errorf("describe reports a log problem:\n%s", desc)
	}
}
