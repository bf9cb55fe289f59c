package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

// publicDir returns a directory every user can read and enter, holding
// copies of files: an app that runs as another user cannot enter a
// private temp dir, nor the repository when it is under /root.
func publicDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "public")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	for name, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// whoPy prints who it runs as, tries to read the file named by its
// argument, tells tend it is ready through NOTIFY_SOCKET, and waits.
const whoPy = `import os, socket, sys, time
print("ids", os.getuid(), os.getgid(), sorted(os.getgroups()), flush=True)
for k in ("HOME", "USER", "LOGNAME", "SHELL"):
    print("env", k + "=" + os.environ.get(k, ""), flush=True)
try:
    open(sys.argv[1]).read()
    print("read other log: allowed", flush=True)
except PermissionError:
    print("read other log: denied", flush=True)
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", addr)
time.sleep(3600)
`

// statusIDs returns the real uid and gid of pid from /proc.
func statusIDs(t *testing.T, pid int) (uid, gid string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "Uid:" {
			uid = strings.Join(f[1:], " ")
		}
		if len(f) == 5 && f[0] == "Gid:" {
			gid = strings.Join(f[1:], " ")
		}
	}
	return uid, gid
}

// TestRunAsUser: an app with user: nobody runs with nobody's ids, groups
// and login variables, cannot read another app's log, and its sd_notify
// READY=1 reaches tend although it cannot enter tend's home.
func TestRunAsUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: running an app as another user is root's")
	}
	h := newHarness(t)
	h.ok("start", h.self, "--name", "other", "--", "serve")
	h.await("other online", allStatus(1, tend.StatusOnline))
	var apps []tend.App
	if err := json.Unmarshal([]byte(h.ok("describe", "other", "--json")), &apps); err != nil {
		t.Fatal(err)
	}
	otherLog := apps[0].OutLog[0]

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "who.py"), []byte(whoPy), 0o644)
	pub := publicDir(t, map[string]string{"who.py": filepath.Join(dir, "who.py")})
	h.ok("start", filepath.Join(pub, "who.py"), "--interpreter", "/usr/bin/python3", "--name", "who", "--user", "nobody", "--wait-ready", "--listen-timeout", "60s", "--", otherLog)
	list := h.await("who online", func(l []tend.Instance) bool {
		for _, in := range l {
			if in.Name == "who" && in.Status == tend.StatusOnline {
				return true
			}
		}
		return false
	})
	var pid int
	for _, in := range list {
		if want := map[string]string{"who": "nobody", "other": "root"}[in.Name]; in.User != want {
			t.Errorf("ls shows %s running as %q, want %q", in.Name, in.User, want)
		}
		if in.Name == "who" {
			pid = in.PID
		}
	}
	uid, gid := statusIDs(t, pid)
	if uid != "65534 65534 65534 65534" || gid != "65534 65534 65534 65534" {
		t.Errorf("who runs with Uid %q Gid %q, want nobody's 65534 everywhere", uid, gid)
	}
	out := h.awaitLog("who", "read other log:")
	for _, want := range []string{"ids 65534 65534 [65534]", "env HOME=/nonexistent", "env USER=nobody", "env LOGNAME=nobody", "env SHELL=/usr/sbin/nologin", "read other log: denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("who's output lacks %q:\n%s", want, out)
		}
	}
	if d := h.ok("describe", "who"); !strings.Contains(d, "nobody") {
		t.Errorf("describe does not show the user:\n%s", d)
	}
}

// TestRunAsUserNodeCluster: a Node app in cluster mode, as another user,
// serves on its shared port from workers of that user (tend's preload is
// readable by it).
func TestRunAsUserNodeCluster(t *testing.T) {
	uid, _ := otherUser(t)
	h := newHarness(t)
	pub := publicDir(t, map[string]string{
		"index.js":    filepath.Join(repoRoot(t), "examples", "node", "index.js"),
		"content.txt": filepath.Join(repoRoot(t), "examples", "node", "content.txt"),
	})
	port := testport.Free(t)
	h.ok("start", filepath.Join(pub, "index.js"), "--name", "web", "-i", "2", "--port", strconv.Itoa(port), "--user", "tendtest")
	list := h.await("2 online", allStatus(2, tend.StatusOnline))
	for _, in := range list {
		if got, _ := statusIDs(t, in.PID); !strings.HasPrefix(got, strconv.Itoa(uid)+" ") {
			t.Errorf("worker %d runs as Uid %q, want %d", in.PID, got, uid)
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/read-content")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) == 0 {
		t.Errorf("GET /read-content: %d %q", resp.StatusCode, body)
	}
	if d := h.ok("describe", "web"); strings.Contains(d, "preload") && strings.Contains(d, "cannot") {
		t.Errorf("describe reports a preload problem:\n%s", d)
	}
}

// TestRunAsUserRefused: a user that does not exist, and a daemon that is
// not root, are clear errors; nothing starts.
func TestRunAsUserRefused(t *testing.T) {
	uid, gid := otherUser(t)
	h := newHarness(t)
	errOut := h.fail(2, "start", h.self, "--name", "ghost", "--user", "nosuchuser", "--", "serve")
	if !strings.Contains(errOut, "user nosuchuser: no such name") || !strings.Contains(errOut, "--user") {
		t.Errorf("unknown user: %s", errOut)
	}
	if l := h.ls(); len(l) != 0 {
		t.Errorf("something started: %+v", l)
	}

	// A script where the user cannot reach it.
	priv := t.TempDir()
	os.WriteFile(filepath.Join(priv, "who.py"), []byte(whoPy), 0o644)
	errOut = h.fail(2, "start", filepath.Join(priv, "who.py"), "--interpreter", "/usr/bin/python3", "--name", "hidden", "--user", "nobody")
	if !strings.Contains(errOut, "user nobody cannot read "+filepath.Join(priv, "who.py")) {
		t.Errorf("a script nobody cannot reach: %s", errOut)
	}

	// The same as a daemon of the second user.
	bin := publicDir(t, map[string]string{"tend": tendBin})
	home := sharedHome(t, uid, gid, 0o700)
	cmd := exec.Command(filepath.Join(bin, "tend"), "start", "/bin/sleep", "--name", "nap", "--user", "nobody", "--", "600")
	cmd.Env = append(os.Environ(), "TEND_HOME="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() {
		k := exec.Command(filepath.Join(bin, "tend"), "kill")
		k.Env, k.SysProcAttr = cmd.Env, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		k.Run()
	})
	if err == nil || !strings.Contains(string(out), "only root can run an app as another user") {
		t.Errorf("a daemon of uid %d starting an app as nobody: %v\n%s", uid, err, out)
	}
}
