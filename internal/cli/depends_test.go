package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/testport"
)

// orderApp is every app of the depends_on tests: it appends
// "<time_ns> <name> <event>" lines to $ORDER_LOG, one write each, so that
// the test reads the order in which things happened from the apps
// themselves. As migrate it fails the first time (no marker yet: it makes
// one) and succeeds after; as db it listens on $DB_PORT (its readiness)
// only after a while, so that a dependent started too early is seen. As
// gate it completes once the file $GATE exists.
const orderApp = `import os, signal, socket, sys, time
name = sys.argv[1]
def say(event):
    fd = os.open(os.environ["ORDER_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, ("%d %s %s\n" % (time.time_ns(), name, event)).encode())
    os.close(fd)
def stop(signum, frame):
    say("stop")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
say("start")
if name == "migrate":
    marker = os.environ["MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        say("failed")
        print("no marker: migration failed", flush=True)
        sys.exit(1)
    time.sleep(0.3)
    say("done")
    sys.exit(0)
if name == "gate":
    while not os.path.exists(os.environ["GATE"]):
        time.sleep(0.05)
    say("done")
    sys.exit(0)
if name == "db":
    time.sleep(0.5)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(os.environ["DB_PORT"])))
    s.listen(16)
    say("listening")
while True:
    time.sleep(3600)
`

// orderFile writes the three-app file of these tests and its app in dir.
func orderFile(t *testing.T, h *harness, dir string) string {
	t.Helper()
	py := filepath.Join(dir, "app.py")
	if err := os.WriteFile(py, []byte(orderApp), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testport.Free(t)
	file := filepath.Join(dir, "tend.yaml")
	body := `apps:
  - name: web
    script: ` + py + `
    args: [web]
    depends_on: {migrate: completed, db: ready}
  - name: migrate
    type: task
    script: ` + py + `
    args: [migrate]
    depends_on:
      db: {condition: service_healthy}
  - name: db
    script: ` + py + `
    args: [db]
    ready_url: tcp://127.0.0.1:` + strconv.Itoa(port) + `
    listen_timeout: 15s
`
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	h.env = append(h.env, "ORDER_LOG="+filepath.Join(dir, "order.log"), "MARKER="+filepath.Join(dir, "marker"), "DB_PORT="+strconv.Itoa(port))
	return file
}

// orderEvent is one line of the order log.
type orderEvent struct {
	at          int64
	app, what   string
	description string
}

// readOrder returns the lines of the order log in the order they happened.
func readOrder(t *testing.T, dir string) []orderEvent {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(dir, "order.log"))
	var out []orderEvent
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("order log line %q", l)
		}
		at, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("order log line %q: %v", l, err)
		}
		out = append(out, orderEvent{at, f[1], f[2], f[1] + " " + f[2]})
	}
	slices.SortStableFunc(out, func(a, b orderEvent) int { return int(a.at - b.at) })
	return out
}

// index is the position of the last "app what" line in evs, -1 if none.
func index(evs []orderEvent, app, what string) int {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].app == app && evs[i].what == what {
			return i
		}
	}
	return -1
}

func names(evs []orderEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.description)
	}
	return out
}

func byName(insts []tend.Instance) map[string]tend.Instance {
	m := map[string]tend.Instance{}
	for _, in := range insts {
		m[in.Name] = in
	}
	return m
}

func TestDependsOnTaskFailsThenCompletes(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	file := orderFile(t, h, dir)

	// First start: migrate fails (no marker), web is blocked, the start
	// fails naming the task.
	_, errOut, code := h.run("start", file)
	if code != 1 {
		t.Fatalf("first start: exit %d, want 1\n%s", code, errOut)
	}
	for _, want := range []string{"web waits for migrate (completed), db (ready)", "migrate failed: task failed (exit code 1)", "web is blocked and did not start"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("first start's output lacks %q:\n%s", want, errOut)
		}
	}
	insts := byName(h.ls())
	if in := insts["migrate"]; in.Status != tend.StatusErrored || !strings.Contains(in.Problem, "exit code 1") {
		t.Errorf("migrate after its failure: %s %q", in.Status, in.Problem)
	}
	if in := insts["web"]; in.Status != tend.StatusWaiting || in.PID != 0 || !strings.Contains(in.Problem, "blocked: migrate failed") {
		t.Errorf("web after migrate failed: %s pid %d %q; want waiting, blocked", in.Status, in.PID, in.Problem)
	}
	if in := insts["db"]; in.Status != tend.StatusOnline {
		t.Errorf("db: %s, want online (migrate waited for it to be ready)", in.Status)
	}
	if out := h.ok("ls"); !strings.Contains(out, "web[0]: blocked: migrate failed") {
		t.Errorf("tend ls does not say why web waits:\n%s", out)
	}
	if out := h.ok("describe", "web"); !strings.Contains(out, "blocked: migrate failed") || !strings.Contains(out, "migrate:completed db:ready") {
		t.Errorf("tend describe web does not show its dependencies and why it waits:\n%s", out)
	}
	// The events stream starts with each instance's state: web's says why.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := client.New(h.home).EventStream(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := st.Next()
	st.Close()
	if err != nil || ev.Status != tend.StatusWaiting || !strings.Contains(ev.Problem, "blocked: migrate failed") {
		t.Errorf("web's first event: %+v, %v; want waiting, blocked", ev, err)
	}
	if evs := readOrder(t, dir); index(evs, "web", "start") >= 0 {
		t.Fatalf("web started although migrate failed: %v", names(evs))
	}

	// Fixed (the marker is there now): the start runs migrate to its
	// end, and web starts after that and after db is ready.
	os.Remove(filepath.Join(dir, "order.log"))
	errOut = h.fail(0, "start", file, "--force")
	if !strings.Contains(errOut, "web started after migrate (completed), db (ready)") {
		t.Errorf("second start's output:\n%s", errOut)
	}
	insts = byName(h.await("web online, migrate completed", func(ins []tend.Instance) bool {
		m := byName(ins)
		return m["web"].Status == tend.StatusOnline && m["migrate"].Status == tend.StatusCompleted && m["db"].Ready
	}))
	if in := insts["migrate"]; in.PID != 0 || in.Restarts != 0 || in.LastExit == nil || in.LastExit.Code != 0 {
		t.Errorf("migrate: %+v; want completed once, exit 0", in)
	}
	if out := h.ok("ls"); !strings.Contains(out, "completed") {
		t.Errorf("tend ls does not show migrate completed:\n%s", out)
	}
	h.poll("web's start line", func() bool { return index(readOrder(t, dir), "web", "start") >= 0 })
	evs := readOrder(t, dir)
	web, done, listening := index(evs, "web", "start"), index(evs, "migrate", "done"), index(evs, "db", "listening")
	if done < 0 || listening < 0 || web < done || index(evs, "migrate", "start") < listening {
		t.Errorf("start order: %v; want db listening, then migrate done, then web start", names(evs))
	}

	// A reload of the file runs migrate again, to its end, before web's
	// new instance starts.
	os.Remove(filepath.Join(dir, "order.log"))
	h.ok("reload", file)
	h.poll("web's start line", func() bool { return index(readOrder(t, dir), "web", "start") >= 0 })
	evs = readOrder(t, dir)
	if done, web := index(evs, "migrate", "done"), index(evs, "web", "start"); done < 0 || web < done {
		t.Errorf("reload order: %v; want migrate done before web start", names(evs))
	}
	if in := byName(h.ls())["migrate"]; in.Status != tend.StatusCompleted {
		t.Errorf("migrate after the reload: %s, want completed", in.Status)
	}

	// A restart of the file stops web before db, then starts as a start
	// does: migrate runs again before web starts.
	os.Remove(filepath.Join(dir, "order.log"))
	h.ok("restart", file)
	h.await("web online, migrate completed", func(ins []tend.Instance) bool {
		m := byName(ins)
		return m["web"].Status == tend.StatusOnline && m["migrate"].Status == tend.StatusCompleted
	})
	h.poll("web's start line", func() bool { return index(readOrder(t, dir), "web", "start") >= 0 })
	evs = readOrder(t, dir)
	if ws, ds, done, web := index(evs, "web", "stop"), index(evs, "db", "stop"), index(evs, "migrate", "done"), index(evs, "web", "start"); ws < 0 || ws > ds || done < 0 || web < done {
		t.Errorf("restart order: %v; want web stop, db stop, ..., migrate done, web start", names(evs))
	}

	// Stop goes in reverse: web, then migrate (done already), then db.
	stopsWebFirst(t, h, dir, "stop", file)
}

func TestDependsOnBadFiles(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"cycle", "  - name: web\n    script: x\n    depends_on: [api]\n  - name: api\n    script: x\n    depends_on: [web]\n  - name: db\n    script: x\n",
			"depends_on cycle: web -> api -> web"},
		{"unknown", "  - name: web\n    script: x\n    depends_on: [dbb]\n  - name: db\n    script: x\n",
			`tend.yaml:2:11: web depends on dbb, which is not an app of the file (did you mean "db"?)`},
		{"itself", "  - name: web\n    script: x\n    depends_on: [web]\n", "an app cannot depend on itself (web)"},
		{"bad condition", "  - name: web\n    script: x\n    depends_on: {db: healthy}\n  - name: db\n    script: x\n", `db: condition "healthy" is not one of started, ready, completed`},
		{"completed on a service", "  - name: web\n    script: x\n    depends_on: {db: completed}\n  - name: db\n    script: x\n", "db is not a task"},
		{"ready on a task", "  - name: web\n    script: x\n    depends_on: {m: ready}\n  - name: m\n    type: task\n    script: x\n", "m is a task, which is never ready: use completed"},
		{"bad type", "  - name: web\n    script: x\n    type: job\n", `type: "job" is not one of service, task`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "tend.yaml")
			os.WriteFile(file, []byte("apps:\n"+tc.body), 0o644)
			errOut := h.fail(2, "start", file)
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("got %q, want %q", errOut, tc.want)
			}
		})
	}
	if insts := h.ls(); len(insts) != 0 {
		t.Errorf("a bad file started %+v", insts)
	}
}

func TestDependsOnOnlyStartsDependencies(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	file := orderFile(t, h, dir)
	os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644)
	errOut := h.fail(0, "start", file, "--only", "web")
	if !strings.Contains(errOut, "--only: also starting migrate, db, which it depends on") {
		t.Errorf("start --only web output:\n%s", errOut)
	}
	if got := len(h.ls()); got != 3 {
		t.Errorf("%d apps after start --only web, want 3", got)
	}

	// --no-deps: web alone, waiting for nothing (what tend export runs
	// in each container).
	h2 := newHarness(t)
	h2.env = append(h2.env, "ORDER_LOG="+filepath.Join(dir, "order.log"))
	errOut = h2.fail(0, "start", file, "--only", "web", "--no-deps")
	if strings.Contains(errOut, "waits for") || strings.Contains(errOut, "also starting") {
		t.Errorf("start --only web --no-deps output:\n%s", errOut)
	}
	if insts := h2.ls(); len(insts) != 1 || insts[0].Name != "web" || insts[0].PID == 0 {
		t.Errorf("after start --only web --no-deps: %+v, want web alone, running", insts)
	}
	if errOut := h2.fail(2, "start", file, "--no-deps"); !strings.Contains(errOut, "--no-deps goes with --only") {
		t.Errorf("--no-deps without --only: %s", errOut)
	}
}

func TestRunFollowsDependsOn(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	file := orderFile(t, h, dir)
	// A container whose migration fails exits non-zero, naming it, with
	// the task's own output; web never started.
	r := h.start("run", file)
	r.await(r.lines, "migrate[0] | no marker: migration failed")
	r.await(r.errLines, "migrate failed: task failed (exit code 1)")
	if code := r.wait(); code != 1 {
		t.Fatalf("tend run with a failing task exited %d, want 1", code)
	}
	if evs := readOrder(t, dir); index(evs, "web", "start") >= 0 {
		t.Fatalf("web started although migrate failed: %v", names(evs))
	}

	r = h.start("run", file)
	r.await(r.errLines, "web started after migrate (completed), db (ready)")
	h.await("web online", func(ins []tend.Instance) bool { return byName(ins)["web"].Status == tend.StatusOnline })
	h.poll("web's start line", func() bool { return index(readOrder(t, dir), "web", "start") >= 0 })
	evs := readOrder(t, dir)
	if web := index(evs, "web", "start"); web < index(evs, "migrate", "done") || web < index(evs, "db", "listening") {
		t.Errorf("tend run's start order: %v", names(evs))
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.wait(); code != 0 {
		t.Errorf("tend run exited %d after SIGTERM", code)
	}
	evs = readOrder(t, dir)
	if ws, ds := index(evs, "web", "stop"), index(evs, "db", "stop"); ws < 0 || ws > ds {
		t.Errorf("tend run's stop order: %v; want web stopped before db", names(evs))
	}
}

func TestDependsOnResurrect(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	file := orderFile(t, h, dir)
	os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644)
	h.ok("start", file)
	h.ok("save")
	h.ok("kill")
	os.Remove(filepath.Join(dir, "order.log"))
	// The dump lists web first, as the file does: it still comes back
	// after migrate ran again, to its end.
	h.ok("resurrect")
	h.await("web online, migrate completed", func(ins []tend.Instance) bool {
		m := byName(ins)
		return len(ins) == 3 && m["web"].Status == tend.StatusOnline && m["migrate"].Status == tend.StatusCompleted
	})
	h.poll("web's start line", func() bool { return index(readOrder(t, dir), "web", "start") >= 0 })
	evs := readOrder(t, dir)
	if web, done := index(evs, "web", "start"), index(evs, "migrate", "done"); done < 0 || web < done || index(evs, "migrate", "start") < index(evs, "db", "listening") {
		t.Errorf("resurrect's order: %v; want db listening, migrate done, then web start", names(evs))
	}
	// delete, too, stops web before db.
	stopsWebFirst(t, h, dir, "delete", file)
}

// stopsWebFirst runs tend verb file and checks, from the apps' own lines
// in dir, that web stopped before db.
func stopsWebFirst(t *testing.T, h *harness, dir, verb, file string) {
	t.Helper()
	h.ok(verb, file)
	h.poll("db's stop line", func() bool { return index(readOrder(t, dir), "db", "stop") >= 0 })
	evs := readOrder(t, dir)
	if ws, ds := index(evs, "web", "stop"), index(evs, "db", "stop"); ws < 0 || ws > ds {
		t.Errorf("%s order: %v; want web stopped before db", verb, names(evs))
	}
}

// A daemon that dies while apps wait for their dependencies: the one
// that replaces it carries the start on.
func TestDependsOnAcrossDaemonKill(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	py := filepath.Join(dir, "app.py")
	os.WriteFile(py, []byte(orderApp), 0o644)
	file := filepath.Join(dir, "tend.yaml")
	os.WriteFile(file, []byte(`apps:
  - name: web
    script: `+py+`
    args: [web]
    depends_on: {gate: completed}
  - name: gate
    type: task
    script: `+py+`
    args: [gate]
`), 0o644)
	gate := filepath.Join(dir, "gate")
	h.env = append(h.env, "ORDER_LOG="+filepath.Join(dir, "order.log"), "GATE="+gate)
	h.ok("ls")             // the daemon runs before the start and the events
	h.start("start", file) // waits for gate: ends when its daemon dies
	h.await("web waiting for gate", func(ins []tend.Instance) bool {
		m := byName(ins)
		return m["web"].Status == tend.StatusWaiting && strings.HasPrefix(m["web"].Problem, "waiting for gate") && m["gate"].PID != 0
	})
	h.killDaemon()
	if in := byName(h.ls())["web"]; in.Status != tend.StatusWaiting || in.PID != 0 {
		t.Fatalf("web after the daemon's death: %s pid %d, want still waiting", in.Status, in.PID)
	}
	os.WriteFile(gate, nil, 0o644)
	h.await("gate completed, web online", func(ins []tend.Instance) bool {
		m := byName(ins)
		return m["gate"].Status == tend.StatusCompleted && m["web"].Status == tend.StatusOnline
	})
}
