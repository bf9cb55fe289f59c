package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

// pm2Version is the PM2 the import is tested against: bench's
// (bench/package.json), so one PM2 serves both.
const pm2Version = "7.0.4"

// installPM2 returns the pm2 command of PM2 pm2Version: bench's if
// bench/run installed it, else one installed from the npm registry into
// the user's cache directory on first use (npmModules, about 5 s) and
// reused after.
// A failed install fails the test: the import is tested against the real
// PM2 or not at all.
func installPM2(t *testing.T) string {
	t.Helper()
	if b, err := os.ReadFile("../../bench/node_modules/pm2/package.json"); err == nil && bytes.Contains(b, []byte(`"version": "`+pm2Version+`"`)) {
		bin, err := filepath.Abs("../../bench/node_modules/.bin/pm2")
		if err != nil {
			t.Fatal(err)
		}
		return bin
	}
	return filepath.Join(npmModules(t, "pm2@"+pm2Version), ".bin", "pm2")
}

// pm2 runs a private PM2 (its own PM2_HOME) for a test, and kills it at
// the end.
type pm2 struct {
	t    *testing.T
	bin  string
	home string
	env  []string
	dir  string // where pm2 runs, as a user in the apps' directory
}

func newPM2(t *testing.T) *pm2 {
	t.Helper()
	home := t.TempDir()
	// PM2 asks nothing and phones nowhere with these (as bench/run runs it).
	os.WriteFile(filepath.Join(home, "touch"), nil, 0o644)
	p := &pm2{t: t, bin: installPM2(t), home: home,
		env: append(os.Environ(), "PM2_HOME="+home, "PM2_DISABLE_VERSION_CHECK=true", "PM2_NO_INTERACTION=true")}
	t.Cleanup(func() {
		p.run(nil, "kill")
		// A PM2 daemon that outlived pm2 kill: its pid is in pm2.pid
		// (and it is still PM2's, not a reused pid).
		if b, err := os.ReadFile(filepath.Join(home, "pm2.pid")); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			if pid > 0 && alive(pid) && bytes.Contains(cmdline, []byte("PM2")) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return p
}

// run runs pm2 with args and extra variables, and returns its output.
func (p *pm2) run(extra []string, args ...string) (string, error) {
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(slices.Clone(p.env), extra...)
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *pm2) ok(extra []string, args ...string) {
	p.t.Helper()
	if out, err := p.run(extra, args...); err != nil {
		p.t.Fatalf("pm2 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// pids returns the pids of PM2's processes, from pm2 jlist.
func (p *pm2) pids() []int {
	p.t.Helper()
	cmd := exec.Command(p.bin, "jlist")
	cmd.Env = p.env
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("pm2 jlist: %v", err)
	}
	var list []struct{ PID int }
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &list); err != nil {
		p.t.Fatalf("pm2 jlist: %v\n%s", err, out)
	}
	var pids []int
	for _, l := range list {
		pids = append(pids, l.PID)
	}
	return pids
}

const (
	pm2WebApp = `const http = require('http');
http.createServer((q, r) => r.end('pid ' + process.pid + ' greeting ' + process.env.GREETING + ' home ' + (process.env.PM2_HOME || '') + '\n'))
  .listen(Number(process.env.PORT), '127.0.0.1');
`
	pm2WorkerApp = `console.log('worker args ' + process.argv.slice(2).join(' '));
setInterval(() => {}, 1 << 30);
`
	pm2PythonApp = `import sys, time
print("job on python " + sys.version.split()[0] + " args " + " ".join(sys.argv[1:]), flush=True)
while True:
    time.sleep(3600)
`
)

// TestImportPM2 runs three apps under the real PM2 (a Node cluster app of
// 2 instances with variables, a Node fork app with args and
// max_memory_restart, a Python script with its interpreter), saves PM2's
// dump, kills PM2, and imports the dump: tend runs the same apps with the
// same settings, and only the variables the user gave.
func TestImportPM2(t *testing.T) {
	h := newHarness(t)
	p := newPM2(t)
	dir := t.TempDir()
	p.dir = dir
	for name, src := range map[string]string{"web.js": pm2WebApp, "worker.js": pm2WorkerApp, "job.py": pm2PythonApp} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := testport.Free(t)
	p.ok([]string{"GREETING=hello", "PORT=" + strconv.Itoa(port)}, "start", filepath.Join(dir, "web.js"), "--name", "web", "-i", "2")
	p.ok(nil, "start", filepath.Join(dir, "worker.js"), "--name", "worker", "--max-memory-restart", "200M", "--kill-timeout", "4000", "--", "--queue", "high")
	p.ok(nil, "start", filepath.Join(dir, "job.py"), "--name", "job", "--interpreter", "python3", "--namespace", "batch")
	p.ok(nil, "save")
	dump := filepath.Join(p.home, "dump.pm2")

	// --running asks the running PM2 and finds what its dump says.
	fromFile := h.ok("import", "pm2", "--file", dump, "--dry-run")
	shellEnv := h.env
	h.env = append(slices.Clone(h.env), "PM2_HOME="+p.home, "PATH="+filepath.Dir(p.bin)+":"+os.Getenv("PATH"))
	fromPM2 := h.ok("import", "pm2", "--running", "--dry-run")
	h.env = shellEnv
	_, fileApps, _ := strings.Cut(fromFile, "\n")
	_, runningApps, _ := strings.Cut(fromPM2, "\n")
	if fileApps != runningApps {
		t.Errorf("pm2 jlist and the dump import differently:\n%s\n%s", fromFile, fromPM2)
	}
	if len(h.ls()) != 0 {
		t.Fatal("--dry-run started apps")
	}

	pids := p.pids()
	p.ok(nil, "kill")
	awaitGone(t, pids...)

	_, errOut, code := h.run("import", "pm2", "--file", dump)
	if code != 0 {
		t.Fatalf("tend import pm2: exit %d\n%s", code, errOut)
	}
	insts := h.await("4 instances online", func(insts []tend.Instance) bool {
		return len(insts) == 4 && !slices.ContainsFunc(insts, func(in tend.Instance) bool { return in.Status != tend.StatusOnline })
	})
	for _, want := range []string{"imported web (2 instances)", "imported worker (1 instance)", "imported job (1 instance)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("import says:\n%s\nwant %q", errOut, want)
		}
	}
	if strings.Contains(errOut, "not carried over") {
		t.Errorf("everything PM2 had should carry over:\n%s", errOut)
	}

	apps := describeApps(h, "all")
	web, worker, job := apps["web"], apps["worker"], apps["job"]
	if web.Instances != 2 || web.ExecMode != tend.ModeCluster || web.Cwd != dir {
		t.Errorf("web: instances %d, exec_mode %q, cwd %q", web.Instances, web.ExecMode, web.Cwd)
	}
	if want := map[string]string{"GREETING": "hello", "PORT": strconv.Itoa(port)}; len(web.Env) != 2 || web.Env["GREETING"] != "hello" || web.Env["PORT"] != want["PORT"] {
		t.Errorf("web env = %v, want %v: the user's variables, none of PM2's or the shell's", web.Env, want)
	}
	if worker.MaxMemoryRestart != 200<<20 || worker.KillTimeout.D() != 4*time.Second || !slices.Equal(worker.Args, []string{"--queue", "high"}) {
		t.Errorf("worker: max_memory_restart %d, kill_timeout %s, args %q", worker.MaxMemoryRestart, worker.KillTimeout.D(), worker.Args)
	}
	if job.Interpreter != "python3" || job.Namespace != "batch" || len(job.Env) != 0 {
		t.Errorf("job: interpreter %q, namespace %q, env %v", job.Interpreter, job.Namespace, job.Env)
	}
	h.awaitLog("worker", "worker args --queue high")
	h.awaitLog("job", "job on python 3")

	// The port answers from tend's web instances, with the user's variable and without PM2's.
	webPIDs := map[int]bool{}
	for _, in := range insts {
		if in.Name == "web" {
			webPIDs[in.PID] = true
		}
	}
	body := h.awaitHTTP("http://127.0.0.1:"+strconv.Itoa(port)+"/", "greeting hello")
	if pid, _ := strconv.Atoi(strings.Fields(body)[1]); !webPIDs[pid] || strings.Contains(body, p.home) {
		t.Errorf("answer %q: want one of tend's web pids %v, and no PM2_HOME", body, webPIDs)
	}

	// Again: the names are taken, nothing changes.
	errOut = h.fail(1, "import", "pm2", "--file", dump)
	if !strings.Contains(errOut, "web, worker, job") || !strings.Contains(errOut, "--force") {
		t.Errorf("a second import says:\n%s\nwant the names that clash and --force", errOut)
	}
	if again := h.ls(); len(again) != 4 || again[0].PID != insts[0].PID {
		t.Errorf("a refused import changed what runs: %+v", again)
	}

	// --force replaces them; --save-as keeps the file it started.
	saved := filepath.Join(dir, "tend.yaml")
	h.ok("import", "pm2", "--file", dump, "--force", "--save-as", saved)
	if b, err := os.ReadFile(saved); err != nil || string(b) != fromFile {
		t.Errorf("--save-as wrote %q (%v), want what --dry-run printed:\n%s", b, err, fromFile)
	}
	if fi, err := os.Stat(saved); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("--save-as's file has mode %04o, want 0600 (env may hold secrets)", fi.Mode().Perm())
	}
	old := map[int]bool{}
	for _, in := range insts {
		old[in.PID] = true
	}
	h.await("4 new instances online", func(insts []tend.Instance) bool {
		return len(insts) == 4 && !slices.ContainsFunc(insts, func(in tend.Instance) bool { return in.Status != tend.StatusOnline || old[in.PID] })
	})
}

// TestImportPM2Errors: bad input is said, with its fix, and starts
// nothing.
func TestImportPM2Errors(t *testing.T) {
	h := newHarness(t)
	empty := t.TempDir()
	notJSON := filepath.Join(empty, "dump.pm2")
	os.WriteFile(notJSON, []byte("apps: []\n"), 0o644)
	emptyList := filepath.Join(empty, "empty.pm2")
	os.WriteFile(emptyList, []byte("[]"), 0o644)
	// One app that can start and one whose script is gone: neither starts.
	halfBad := filepath.Join(empty, "half.pm2")
	os.WriteFile(halfBad, []byte(`[{"name": "good", "pm_exec_path": "`+h.self+`", "args": ["serve"], "pm_cwd": "`+empty+`", "exec_interpreter": "none", "env": {}},
		{"name": "bad", "pm_exec_path": "`+empty+`/gone.js", "pm_cwd": "`+empty+`", "env": {}}]`), 0o644)
	h.env = append(h.env, "PM2_HOME="+filepath.Join(empty, "none"))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no dump", []string{"import", "pm2"}, 3, "no PM2 dump at " + filepath.Join(empty, "none", "dump.pm2") + ": run pm2 save first"},
		{"not a dump", []string{"import", "pm2", "--file", notJSON}, 2, notJSON + ": not PM2's JSON"},
		{"empty", []string{"import", "pm2", "--file", emptyList}, 2, "nothing to import"},
		{"both sources", []string{"import", "pm2", "--file", notJSON, "--running"}, 2, "not both"},
		{"no pm2", []string{"import", "pm2", "--running"}, 3, "pm2 is not on PATH"},
		{"no manager", []string{"import"}, 2, "tend import pm2"},
		{"a script gone", []string{"import", "pm2", "--file", halfBad}, 3, "app bad: script " + empty + "/gone.js not found"},
		{"another manager", []string{"import", "forever"}, 2, `not from "forever"`},
		{"an argument", []string{"import", "pm2", notJSON}, 2, "a dump is --file PATH"},
	} {
		if errOut := h.fail(tc.code, tc.args...); !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: stderr:\n%s\nwant %q", tc.name, errOut, tc.want)
		}
	}

	// pm2 jlist would start a PM2 daemon where none runs: not asked.
	h.env = append(h.env, "PATH="+filepath.Dir(installPM2(t))+":"+os.Getenv("PATH"))
	if errOut := h.fail(3, "import", "pm2", "--running"); !strings.Contains(errOut, "no PM2 runs with PM2_HOME="+filepath.Join(empty, "none")) {
		t.Errorf("stderr:\n%s\nwant that no PM2 runs there", errOut)
	}
	if _, err := os.Stat(filepath.Join(empty, "none")); err == nil {
		t.Errorf("tend import pm2 --running started a PM2 in %s", filepath.Join(empty, "none"))
	}
	if insts := h.ls(); len(insts) != 0 {
		t.Errorf("bad input started %+v", insts)
	}
}

// describeApps returns the specs of target's apps by name, with their
// variables' values.
func describeApps(h *harness, target string) map[string]tend.AppSpec {
	h.t.Helper()
	var apps []tend.App
	if err := json.Unmarshal([]byte(h.ok("describe", target, "--json", "--env")), &apps); err != nil {
		h.t.Fatalf("describe --json: %v", err)
	}
	specs := map[string]tend.AppSpec{}
	for _, a := range apps {
		specs[a.Spec.Name] = a.Spec
	}
	return specs
}

// awaitHTTP waits until url answers a body that holds substr, and returns
// the body.
func (h *harness) awaitHTTP(url, substr string) string {
	h.t.Helper()
	var last string
	h.poll("an answer from "+url, func() bool {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		last = string(b)
		return err == nil && strings.Contains(last, substr)
	})
	return last
}
