package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
)

// twoApps writes a file with apps a and b (h.self, serving) and returns it.
func twoApps(t *testing.T, h *harness) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "eco.yaml")
	src := "apps:\n" +
		"  - {name: a, script: " + h.self + ", args: [serve]}\n" +
		"  - {name: b, script: " + h.self + ", args: [serve]}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// The deploy verbs of PM2's scripts: --only with a file, startOrReload
// (start what is missing, reload what runs with the file's settings) and
// startOrRestart.
func TestStartOrReload(t *testing.T) {
	h := newHarness(t)
	file := twoApps(t, h)
	h.ok("start", file, "--only", "a")
	if insts := h.ls(); len(insts) != 1 || insts[0].Name != "a" {
		t.Fatalf("start --only a: %+v", insts)
	}
	if errOut := h.fail(3, "start", file, "--only", "c"); !strings.Contains(errOut, "--only c") {
		t.Errorf("--only of an app the file lacks: %q", errOut)
	}
	a := h.await("a online", allStatus(1, tend.StatusOnline))[0]
	h.ok("startOrReload", file)
	insts := h.await("a reloaded, b started", allStatus(2, tend.StatusOnline))
	if insts[0].PID == a.PID || insts[1].Name != "b" {
		t.Errorf("startOrReload: a's pid %d (was %d), then %+v", insts[0].PID, a.PID, insts[1])
	}
	h.ok("startOrRestart", file, "--only", "b")
	after := h.await("b restarted", func(in []tend.Instance) bool {
		return len(in) == 2 && in[1].PID != insts[1].PID && in[1].Status == tend.StatusOnline
	})
	if after[0].PID != insts[0].PID {
		t.Errorf("startOrRestart --only b restarted a: %d -> %d", insts[0].PID, after[0].PID)
	}
}

// jlist, prettylist, env, logs --raw and pm_id, as PM2 users use them.
func TestPM2LookVerbs(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "web", "-i", "2", "--", "serve")
	h.await("online", allStatus(2, tend.StatusOnline))
	for _, verb := range []string{"jlist", "prettylist"} {
		var insts []tend.Instance
		if err := json.Unmarshal([]byte(h.ok(verb)), &insts); err != nil || len(insts) != 2 {
			t.Errorf("tend %s: %v, %d instances", verb, err, len(insts))
		}
	}
	env := h.ok("env", "1")
	for _, want := range []string{"pm_id=1", "NODE_APP_INSTANCE=1", "TEND_APP=web"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("tend env 1 lacks %s:\n%s", want, env)
		}
	}
	h.fail(3, "env", "7")
	h.awaitLog("web", "env app=web")
	raw := h.ok("logs", "web", "--raw", "--nostream")
	if strings.Contains(raw, "web[") || !strings.Contains(raw, "\nenv app=web") && !strings.HasPrefix(raw, "env app=web") {
		t.Errorf("logs --raw:\n%s", raw)
	}
}

// tend ecosystem writes a file that loads, names every setting, and is
// not overwritten by a second run.
func TestEcosystemSample(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "tend.yaml")
	h.ok("ecosystem", file)
	specs, err := config.Load(file, config.Options{})
	if err != nil || len(specs) != 1 || specs[0].Name != "api" {
		t.Fatalf("the sample does not load: %v, %+v", err, specs)
	}
	b, _ := os.ReadFile(file)
	for _, st := range tend.Settings {
		if !strings.Contains(string(b), st.Key+":") {
			t.Errorf("the sample does not mention %s", st.Key)
		}
	}
	if errOut := h.fail(1, "ecosystem", file); !strings.Contains(errOut, "--force") {
		t.Errorf("a second tend ecosystem: %q", errOut)
	}
}

// env_file: its variables reach the app under --env's, a changed file
// reaches the instances of a reload, and describe shows its values only
// with --env.
func TestEnvFile(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "app.env")
	write := func(s string) {
		if err := os.WriteFile(envFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# secrets\nexport FROM_FLAG=\"from file\"\nFROM_SHELL=file-shell\n")
	h.ok("start", h.self, "--name", "ef", "--cwd", dir, "--env-file", "app.env", "--env", "FROM_SHELL=flag wins", "--", "serve")
	h.awaitLog("ef", "shell=flag wins flag=from file")
	if out := h.ok("describe", "ef"); strings.Contains(out, "from file") || !strings.Contains(out, "FROM_FLAG") {
		t.Errorf("describe without --env shows a value of the file, or not its key:\n%s", out)
	}
	if out := h.ok("describe", "ef", "--env"); !strings.Contains(out, "FROM_FLAG=from file") {
		t.Errorf("describe --env does not show the file's value:\n%s", out)
	}
	write("FROM_FLAG=changed\n")
	h.ok("reload", "ef")
	h.awaitLog("ef", "flag=changed")
	if errOut := h.fail(3, "start", h.self, "--name", "none", "--env-file", filepath.Join(dir, "nope.env"), "--", "serve"); !strings.Contains(errOut, "nope.env does not exist") {
		t.Errorf("a missing env_file: %q", errOut)
	}
}

// restart --update-env gives the instances this shell's variables.
func TestRestartUpdateEnv(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "ue", "--", "serve")
	h.awaitLog("ue", "shell= flag=")
	h.env = append(h.env, "FROM_SHELL=updated")
	h.ok("restart", "ue", "--update-env")
	h.awaitLog("ue", "shell=updated")
}

// tend reset sets restart counters back to 0.
func TestReset(t *testing.T) {
	h := newHarness(t)
	h.ok("start", h.self, "--name", "cr", "--max-restarts", "3", "--min-uptime", "10s", "--", "crash")
	h.await("errored after restarts", func(in []tend.Instance) bool {
		return len(in) == 1 && in[0].Status == tend.StatusErrored && in[0].Restarts > 0
	})
	h.ok("reset", "cr")
	if in := h.ls()[0]; in.Restarts != 0 || in.LastExit == nil {
		t.Errorf("after reset: restarts %d, last exit %v; want 0 and the exit kept", in.Restarts, in.LastExit)
	}
}
