package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/notify"
)

func TestSaveAndResurrect(t *testing.T) {
	h := newHarness(t)
	dump := filepath.Join(h.home, "dump.json")
	if errOut := h.fail(3, "resurrect"); !strings.Contains(errOut, dump+" does not exist") {
		t.Errorf("resurrect with nothing saved: %q", errOut)
	}
	if errOut := h.fail(2, "save"); !strings.Contains(errOut, "--force") {
		t.Errorf("saving an empty list: %q", errOut)
	}

	h.ok("start", h.self, "--name", "web", "-i", "3", "--env", "FROM_FLAG=saved", "--kill-timeout", "2s", "--", "serve")
	h.ok("start", h.self, "--name", "idle", "--", "serve")
	h.await("4 online", allStatus(4, tend.StatusOnline))
	h.ok("stop", "idle")
	h.ok("stop", "2") // web[2]
	h.ok("save")
	if fi, err := os.Stat(dump); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dump.json: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	h.ok("kill")

	// Back as saved: the stopped instances stay stopped.
	h.ok("resurrect")
	insts := h.await("restored", func(in []tend.Instance) bool {
		return len(in) == 4 && in[0].Status == tend.StatusOnline && in[1].Status == tend.StatusOnline
	})
	want := []string{"web/0/online", "web/1/online", "web/2/stopped", "idle/0/stopped"}
	for i, in := range insts {
		if got := in.Name + "/" + strconv.Itoa(in.Instance) + "/" + string(in.Status); got != want[i] {
			t.Errorf("instance %d is %s, want %s", i, got, want[i])
		}
	}
	h.awaitLog("web", "flag=saved")
	if out := h.ok("describe", "web"); !strings.Contains(out, "2s") {
		t.Errorf("describe web after resurrect does not show kill_timeout 2s:\n%s", out)
	}
	// What runs is left alone.
	if _, errOut, code := h.run("resurrect"); code != 0 || !strings.Contains(errOut, "already there, left as they are: web, idle") {
		t.Errorf("a second resurrect: exit %d, %q", code, errOut)
	}

	// A damaged file: the previous save (.bak) is used, and said so.
	h.ok("save")
	h.ok("kill")
	os.WriteFile(dump, []byte("{"), 0o600)
	if _, errOut, code := h.run("resurrect"); code != 0 || !strings.Contains(errOut, "damaged") || !strings.Contains(errOut, "dump.json.bak") {
		t.Errorf("resurrect from a damaged file: exit %d, %q", code, errOut)
	}
	h.await("restored from .bak", func(in []tend.Instance) bool { return len(in) == 4 })
	h.ok("kill")
	os.WriteFile(dump+".bak", []byte("[]"), 0o600)
	if errOut := h.fail(2, "resurrect"); !strings.Contains(errOut, "no usable "+dump+".bak") {
		t.Errorf("both files damaged: %q", errOut)
	}
	if out := h.ok("save", "--force"); out != "" {
		t.Errorf("save --force printed %q on stdout", out)
	}
}

func TestResurrectStartsWhatItCan(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "gone.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755)
	h.ok("start", script, "--name", "gone")
	h.ok("start", h.self, "--name", "web", "--", "serve")
	h.ok("save")
	h.ok("kill")
	os.Remove(script)
	errOut := h.fail(1, "resurrect")
	if !strings.Contains(errOut, "could not restore: gone:") || !strings.Contains(errOut, "restored web") {
		t.Errorf("resurrect with a script gone: %q", errOut)
	}
	h.await("web back", allStatus(1, tend.StatusOnline))
}

// The daemon of tend startup's unit: it restores the saved apps, then tells
// systemd it is ready (Type=notify).
func TestDaemonResurrect(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "web", "-i", "2", "--", "serve")
	h.ok("save")
	h.ok("kill")

	sock := filepath.Join(h.home, "systemd.sock")
	srv, err := notify.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h.env = append(h.env, "NOTIFY_SOCKET="+sock)
	d := h.start("daemon", "--resurrect")
	select {
	case m := <-srv.Messages():
		if !m.Ready {
			t.Fatalf("the daemon sent %+v, want READY=1", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not say READY=1")
	}
	// Ready means restored.
	if insts := h.ls(); len(insts) != 2 || insts[0].Name != "web" {
		t.Fatalf("after READY=1: %+v", insts)
	}
	h.await("2 online", allStatus(2, tend.StatusOnline))
	h.ok("kill")
	if code := d.wait(); code != 0 {
		t.Errorf("tend daemon exited %d after tend kill", code)
	}
}

func TestStartupUnit(t *testing.T) {
	h := newHarness(t)
	out := h.ok("startup", "--service-name", "apps")
	for _, want := range []string{
		"Type=notify", `Environment="TEND_HOME=` + h.home + `"`, `ExecStart="` + tendBin + `" daemon --resurrect`,
		`ExecReload="` + tendBin + `" reload all`, "KillMode=mixed", "/etc/systemd/system/apps.service", "WantedBy=multi-user.target",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the unit lacks %q:\n%s", want, out)
		}
	}
}

func TestAutostartFalse(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "tend.yaml")
	os.WriteFile(file, []byte("apps:\n  - name: later\n    script: "+h.self+"\n    args: serve\n    autostart: false\n"), 0o644)
	h.ok("start", file)
	if insts := h.ls(); len(insts) != 1 || insts[0].Status != tend.StatusStopped || insts[0].PID != 0 {
		t.Fatalf("autostart: false started %+v", insts)
	}
	h.ok("start", "later")
	h.await("started by name", allStatus(1, tend.StatusOnline))
}

func TestCronRestart(t *testing.T) {
	h := newHarness(t)
	if errOut := h.fail(2, "start", h.self, "--cron-restart", "0 3 * *", "--", "serve"); !strings.Contains(errOut, `--cron-restart: "0 3 * *": expected 5 to 6 fields`) {
		t.Errorf("a bad schedule: %q", errOut)
	}
	// Every second (seconds first), both instances replaced in turn, as a
	// reload does: each old process leaves with cause cron.
	h.ok("start", h.self, "--name", "web", "-i", "2", "--cron-restart", "* * * * * *", "--listen-timeout", "100ms", "--", "serve")
	first := h.await("2 online", allStatus(2, tend.StatusOnline))
	h.await("both replaced by cron", func(in []tend.Instance) bool {
		for i, x := range in {
			if x.PID == first[i].PID || x.Status != tend.StatusOnline || x.LastExit == nil || x.LastExit.Cause != "cron" {
				return false
			}
		}
		return len(in) == 2
	})
	if out := h.ok("describe", "web"); !strings.Contains(out, "cron restart:") || !strings.Contains(out, "* * * * * *") {
		t.Errorf("describe web does not show the schedule:\n%s", out)
	}
	h.ok("delete", "web")
}

func TestWatch(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	if errOut := h.fail(2, "start", h.self, "--cwd", dir, "--watch=nope", "--", "serve"); !strings.Contains(errOut, "watch: nope:") {
		t.Errorf("watching a missing path: %q", errOut)
	}
	if insts := h.ls(); len(insts) != 0 {
		t.Fatalf("a bad watch path started %+v", insts)
	}
	h.ok("start", h.self, "--name", "web", "-i", "2", "--cwd", dir, "--watch", "--watch-delay", "100ms", "--listen-timeout", "100ms", "--", "serve")
	before := h.await("2 online", allStatus(2, tend.StatusOnline))
	if out := h.ok("describe", "web"); !strings.Contains(out, "watch:") {
		t.Errorf("describe does not show watch:\n%s", out)
	}
	replaced := func(what string) []tend.Instance {
		t.Helper()
		return h.await(what, func(in []tend.Instance) bool {
			for i, x := range in {
				if x.PID == before[i].PID || x.Status != tend.StatusOnline || x.LastExit == nil || x.LastExit.Cause != "watch" {
					return false
				}
			}
			return len(in) == 2
		})
	}
	daemonLog := func() string {
		b, _ := os.ReadFile(filepath.Join(h.home, "tend.log"))
		return string(b)
	}
	// An ignored change first, then a watched one: the reload names the
	// watched file.
	os.MkdirAll(filepath.Join(dir, "node_modules", "m"), 0o755)
	os.WriteFile(filepath.Join(dir, "node_modules", "m", "x.js"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "app.log"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.txt"), []byte("1"), 0o644)
	before = replaced("a reload for main.txt")
	if l := daemonLog(); !strings.Contains(l, "web: main.txt changed: replacing 2 instances") || strings.Contains(l, "node_modules") || strings.Contains(l, "app.log changed") {
		t.Errorf("the daemon log says:\n%s", l)
	}
	// A directory created later is watched too.
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	before = replaced("a reload for the new directory")
	os.WriteFile(filepath.Join(dir, "sub", "f.txt"), []byte("1"), 0o644)
	replaced("a reload for a file in the new directory")
	if l := daemonLog(); !strings.Contains(l, "web: "+filepath.Join("sub", "f.txt")+" changed") {
		t.Errorf("the daemon log says:\n%s", l)
	}
}

// Replacements by watch (and cron, memory) respect what the user does
// meanwhile: a delete leaves no process behind, and a reload that changes
// the watch settings applies them.
func TestWatchMeetsOtherCommands(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "tend.yaml")
	app := "apps:\n  - name: web\n    cwd: " + dir + "\n    script: " + h.self + "\n    args: stubborn\n    instances: 2\n    kill_timeout: 1s\n    listen_timeout: 100ms\n    out_file: out.txt\n"
	os.WriteFile(file, []byte(app), 0o644)
	h.ok("start", file)
	before := h.await("2 online", allStatus(2, tend.StatusOnline))
	os.WriteFile(filepath.Join(dir, "main.txt"), []byte("1"), 0o644) // not watched yet

	// watch added by a reload of the file; the app's own log (out.txt,
	// out-1.txt, in the watched directory) is not a change.
	os.WriteFile(file, []byte(app+"    watch: true\n    watch_delay: 100ms\n"), 0o644)
	h.ok("reload", file)
	before = h.await("reloaded", func(in []tend.Instance) bool {
		return len(in) == 2 && in[0].PID != before[0].PID && in[1].PID != before[1].PID && in[1].Status == tend.StatusOnline
	})
	os.WriteFile(filepath.Join(dir, "main.txt"), []byte("2"), 0o644)
	h.await("the first instance's new process", func(in []tend.Instance) bool {
		return in[0].PID != before[0].PID && in[0].Status == tend.StatusOnline
	})
	b, _ := os.ReadFile(filepath.Join(h.home, "tend.log"))
	if !strings.Contains(string(b), "web: main.txt changed") {
		t.Errorf("the daemon log says:\n%s", b)
	}
	// Delete while the replacement goes on (the first old process takes
	// its kill_timeout to go, the second instance is next): nothing of web
	// may be left.
	h.ok("delete", "web")
	for _, pid := range processesWith("TEND_HOME=" + h.home) {
		if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(cmd), "stubborn") {
			t.Errorf("pid %d of web survived tend delete", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func TestResurrectKeepsWhatRan(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "tend.yaml")
	os.WriteFile(file, []byte("apps:\n  - name: lazy\n    script: "+h.self+"\n    args: serve\n    autostart: false\n"), 0o644)
	h.ok("start", file)
	h.ok("start", "lazy")
	h.await("lazy online", allStatus(1, tend.StatusOnline))
	h.ok("save")
	h.ok("kill")
	h.ok("resurrect")
	h.await("lazy back online, as saved", allStatus(1, tend.StatusOnline))
}

// An app that lives inside $TEND_HOME is watched like any other; only
// tend's own files there are ignored.
func TestWatchInsideTendHome(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.home, "proj")
	os.MkdirAll(dir, 0o755)
	h.ok("start", h.self, "--name", "web", "--cwd", dir, "--watch", "--watch-delay", "100ms", "--listen-timeout", "100ms", "--", "serve")
	before := h.await("online", allStatus(1, tend.StatusOnline))
	os.WriteFile(filepath.Join(dir, "main.txt"), []byte("1"), 0o644)
	h.await("replaced by watch", func(in []tend.Instance) bool {
		return in[0].PID != before[0].PID && in[0].LastExit != nil && in[0].LastExit.Cause == "watch"
	})
}

// A dump written by an older tend, which checked less, comes back: what
// this one refuses goes back to its default, and a note says so.
func TestResurrectOlderDump(t *testing.T) {
	h := newHarness(t)
	cwd := t.TempDir()
	spec := map[string]any{
		"name": "old", "script": h.self, "args": []string{"serve"}, "cwd": cwd, "instances": 1,
		"exec_mode": "fork", "log_type": "text", "ready_url": "localhost:3000", "stop_exit_codes": []int{300},
		"host": "localhost6", "instance_var": "A=B", "kill_timeout": 2000,
		"base_env": h.env, // TEND_FAKE_APP: h.self is the app
	}
	b, _ := json.Marshal(map[string]any{"version": 1, "tend": "0.0.9", "apps": []any{map[string]any{"spec": spec}}})
	if err := os.MkdirAll(h.home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.home, "dump.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := h.run("resurrect")
	if code != 0 {
		t.Fatalf("resurrect of an older dump: exit %d: %s", code, errOut)
	}
	for _, key := range []string{"log_type", "ready_url", "stop_exit_codes", "host", "instance_var"} {
		if !strings.Contains(errOut, key) {
			t.Errorf("no note about %s: %s", key, errOut)
		}
	}
	h.await("online", allStatus(1, tend.StatusOnline))
	if out := h.ok("describe", "old"); !strings.Contains(out, "kill timeout:") || !strings.Contains(out, "2s") {
		t.Errorf("the valid settings were not kept:\n%s", out)
	}
}
