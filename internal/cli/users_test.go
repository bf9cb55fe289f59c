package cli_test

import (
	"bufio"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A home shared with other users: tend uses only what is its user's own.

// otherUser returns the ids of a second local user, created if missing;
// it needs root, and skips (saying so) without it.
func otherUser(t *testing.T) (uid, gid int) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the test acts as a second local user, which it creates")
	}
	const name = "tendtest"
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// sharedHome returns a directory under /tmp that another user made.
func sharedHome(t *testing.T, uid, gid int, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shared")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, mode)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestForeignHome: a home another user made, or one others can write in,
// or a symlink, is refused before anything is written there.
func TestForeignHome(t *testing.T) {
	uid, gid := otherUser(t)
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		home func() string
		want string
	}{
		{"owned by another user", func() string { return sharedHome(t, uid, gid, 0o755) }, "belongs to uid"},
		{"writable by others", func() string { return sharedHome(t, 0, 0, 0o777) }, "writable by other users"},
		{"a symlink", func() string {
			target := sharedHome(t, 0, 0, 0o755)
			link := target + "-link"
			os.Symlink(target, link)
			t.Cleanup(func() { os.Remove(link) })
			return link
		}, "is a symlink"},
		{"under a directory another user owns", func() string {
			home := filepath.Join(sharedHome(t, uid, gid, 0o755), "home")
			os.Mkdir(home, 0o700)
			return home
		}, "belongs to uid"},
		{"under a directory others can write in", func() string {
			home := filepath.Join(sharedHome(t, 0, 0, 0o777), "a", "home")
			os.MkdirAll(home, 0o700)
			return home
		}, "writable by other users"},
		{"logs owned by another user", func() string {
			home := sharedHome(t, 0, 0, 0o700)
			logs := filepath.Join(home, "logs")
			os.Mkdir(logs, 0o755)
			os.Chown(logs, uid, gid)
			// What the other user planted: root's tend must not write there.
			os.Symlink("/etc/passwd", filepath.Join(logs, "web-out-0.log"))
			return home
		}, "belongs to uid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := tc.home()
			before := listTree(home)
			env := append(h.env, "TEND_HOME="+home)
			cmd := exec.Command(tendBin, "start", h.self, "--name", "web", "--", "serve")
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("tend start in a home %s: %v\n%s\nwant exit 2 saying %q", tc.name, err, out, tc.want)
			}
			if after := listTree(home); after != before {
				t.Errorf("the home changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// listTree describes every entry under dir, with its mode and owner.
func listTree(dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		b.WriteString(path + " " + fi.Mode().String() + " " + strconv.Itoa(int(st.Uid)) + "\n")
		return nil
	})
	return b.String()
}

// TestForeignSocket: the CLI talks only to a daemon of its own user (or
// root): one that another user got to bind first learns nothing.
func TestForeignSocket(t *testing.T) {
	uid, gid := otherUser(t)
	h := newHarness(t)
	// The other user binds tend.sock while it can, then the home is made
	// private again: what a race at creation time would leave.
	os.Chmod(h.home, 0o777)
	sock := filepath.Join(h.home, "tend.sock")
	spy := exec.Command("/usr/bin/python3", "-c", `
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(5)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(5)
try:
    data = c.recv(65536)
except Exception:
    data = b""
print("got", len(data), flush=True)
`, sock)
	spy.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	stdout, _ := spy.StdoutPipe()
	if err := spy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spy.Process.Kill(); spy.Wait() })
	r := bufio.NewReader(stdout)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "listening") {
		t.Fatalf("spy: %q", line)
	}
	os.Chmod(h.home, 0o700)
	h.env = append(h.env, "SECRET_TOKEN=hunter2")
	errOut := h.fail(1, "start", h.self, "--name", "web", "--", "serve")
	if !strings.Contains(errOut, "served by uid "+strconv.Itoa(uid)) {
		t.Errorf("tend start with another user's socket: %q", errOut)
	}
	done := make(chan string, 1)
	go func() { line, _ := r.ReadString('\n'); done <- line }()
	select {
	case line := <-done:
		if strings.TrimSpace(line) != "got 0" {
			t.Errorf("the other user's socket received: %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the spy never reported")
	}
}

// TestForeignDump: tend resurrect never runs a dump another user wrote.
func TestForeignDump(t *testing.T) {
	uid, gid := otherUser(t)
	h := newHarness(t)
	h.ok("start", h.self, "--name", "web", "--", "serve")
	h.ok("save")
	h.ok("delete", "web")
	dump := filepath.Join(h.home, "dump.json")
	os.Chown(dump, uid, gid)
	os.Remove(dump + ".bak")
	errOut := h.fail(2, "resurrect")
	if !strings.Contains(errOut, "belongs to uid") {
		t.Errorf("resurrect of another user's dump: %q", errOut)
	}
	if insts := h.ls(); len(insts) != 0 {
		t.Errorf("resurrect started %+v", insts)
	}
}

// TestNames: app names are a safe set; names derived from a script are
// made safe.
func TestNames(t *testing.T) {
	h := newHarness(t)
	// Names that would read as a target of another kind, or a path.
	for _, name := range []string{"../../evil", "a/b", "all", "12", "+0", "my app"} {
		if errOut := h.fail(2, "start", h.self, "--name", name, "--", "serve"); !strings.Contains(errOut, "name") {
			t.Errorf("--name %q: %q", name, errOut)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(h.home, "logs")); len(entries) != 0 {
		t.Errorf("log files were made: %v", entries)
	}
	h.ok("start", "sleep 1000")
	if insts := h.ls(); len(insts) != 1 || insts[0].Name != "sleep" {
		t.Errorf("tend start \"sleep 1000\" named it %+v, want sleep", insts)
	}
}

// TestInstanceLimit: a count beyond the daemon's limit is refused up front,
// with where the limit comes from, and nothing starts.
func TestInstanceLimit(t *testing.T) {
	h := newHarness(t)
	os.WriteFile(filepath.Join(h.home, "config.yaml"), []byte("max_instances: 3\n"), 0o600)
	for _, args := range [][]string{
		{"start", h.self, "--name", "huge", "-i", "1000000000", "--", "serve"},
		{"start", h.self, "--name", "four", "-i", "4", "--", "serve"},
	} {
		if errOut := h.fail(2, args...); !strings.Contains(errOut, "limit of 3 instances") || !strings.Contains(errOut, "max_instances") {
			t.Errorf("tend %v: %q", args[:4], errOut)
		}
	}
	// Ready when listen_timeout passes: scale waits for that.
	h.ok("start", h.self, "--name", "web", "-i", "2", "--listen-timeout", "100ms", "--", "serve")
	for _, n := range []string{"+2147483647", "9223372036854775807", "4"} {
		if errOut := h.fail(2, "scale", "web", n); !strings.Contains(errOut, "limit of 3") {
			t.Errorf("tend scale web %s: %q", n, errOut)
		}
	}
	h.ok("scale", "web", "3")
	if n := len(h.ls()); n != 3 {
		t.Errorf("%d instances, want 3", n)
	}
}

// TestHugeMessage: a message over the channel's limit closes that app's
// channel, with a word in its log, instead of growing the daemon; one
// under it (1 MiB) is delivered.
func TestHugeMessage(t *testing.T) {
	h := newHarness(t)
	script := filepath.Join(repoRoot(t), "internal", "cli", "testdata", "bigmsg.js")
	logHas := func(name, stream, substr string) func() bool {
		return func() bool {
			b, _ := os.ReadFile(filepath.Join(h.home, "logs", name+"-"+stream+"-0.log"))
			return strings.Contains(string(b), substr)
		}
	}
	h.env = append(h.env, "MSG_MB=1")
	h.ok("start", script, "--name", "ok")
	h.poll("the 1 MiB message in the log", logHas("ok", "out", `[message] {"big":"xxxx`))
	before := anonMemory(h.ping().PID)
	h.env = append(h.env, "MSG_MB=80")
	h.ok("start", script, "--name", "huge")
	h.poll("the refusal in the log", logHas("huge", "error", "message channel was closed: nodeipc: message over 4 MiB"))
	if grown := anonMemory(h.ping().PID) - before; grown > 48<<20 {
		t.Errorf("the daemon grew by %d MB for an 80 MB message", grown>>20)
	}
}

// TestOwnLogBounded: tend.log rotates like an app's log, and what an app
// makes the daemon complain about over and over is counted, not written
// each time: no app fills the disk through tend.
func TestOwnLogBounded(t *testing.T) {
	h := newHarness(t)
	os.WriteFile(filepath.Join(h.home, "config.yaml"), []byte("logs:\n  max_size: 4K\n  retain: 2\n"), 0o600)
	h.ok("start", h.self, "--name", "noisy", "--", "badchannel")
	h.awaitLog("noisy", "garbage sent")
	own := filepath.Join(h.home, "tend.log")
	b, _ := os.ReadFile(own)
	if n := strings.Count(string(b), "bad message"); n > 10 {
		t.Errorf("tend.log has %d complaints about the bad lines, want at most 10 a minute", n)
	}
	// Lines of its own past 4K: rotated, 2 files kept.
	for i := range 40 {
		name := "app" + strconv.Itoa(i)
		h.ok("start", h.self, "--name", name, "--", "hello")
		h.ok("delete", name)
	}
	fi, err := os.Stat(own)
	if err != nil || fi.Size() > 8<<10 {
		t.Errorf("tend.log: %v, size %d, want rotated at 4K", err, fi.Size())
	}
	if _, err := os.Stat(own + ".1"); err != nil {
		t.Errorf("no rotated tend.log.1: %v", err)
	}
	if _, err := os.Stat(own + ".3"); err == nil {
		t.Error("tend.log.3 exists: retain is 2")
	}
}
