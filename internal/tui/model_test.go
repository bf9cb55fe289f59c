package tui

import (
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// fake is a Source with a fixed state that records actions.
type fake struct {
	mu     sync.Mutex
	insts  []tend.Instance
	apps   []tend.App
	logs   []tend.LogLine
	errs   map[string]error // by action
	acts   []string         // "action target..."
	follow []string         // log targets asked for
}

func (f *fake) Instances(context.Context) ([]tend.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.insts), nil
}

func (f *fake) Describe(_ context.Context, target string, _ bool) ([]tend.App, error) {
	for _, a := range f.apps {
		if a.Spec.Name == target {
			return []tend.App{a}, nil
		}
	}
	return nil, tend.Errorf(tend.ENOTFOUND, "no app %s", target)
}

func (f *fake) Act(_ context.Context, action string, targets []string) (tend.ActionResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts = append(f.acts, action+" "+strings.Join(targets, " "))
	if err := f.errs[action]; err != nil {
		return tend.ActionResult{}, err
	}
	return tend.ActionResult{Affected: []int{0}, Instances: slices.Clone(f.insts)}, nil
}

func (f *fake) Logs(ctx context.Context, q client.LogQuery, fn func(tend.LogLine) error) error {
	f.mu.Lock()
	f.follow = append(f.follow, q.Target)
	lines := slices.Clone(f.logs)
	f.mu.Unlock()
	for _, l := range lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	if q.Follow {
		<-ctx.Done()
	}
	return nil
}

func (f *fake) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acts)
}

// scaler is a fake that can scale.
type scaler struct {
	*fake
	scaled []string
}

func (s *scaler) Scale(_ context.Context, app string, n int, _ bool) (tend.ReloadResult, error) {
	s.scaled = append(s.scaled, app+" "+string(rune('0'+n)))
	return tend.ReloadResult{Instances: s.insts}, nil
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// state is three apps: api with two instances on a port, a worker in a
// crash loop, a stopped cron.
func state() *fake {
	return &fake{
		insts: []tend.Instance{
			{ID: 0, Name: "api", Instance: 0, PID: 4100, Status: tend.StatusOnline, UptimeMS: 3*3600e3 + 5e3, CPU: 12, Memory: 48 << 20,
				Mode: tend.ModeCluster, Sched: tend.SchedRoundRobin, Port: 3000, Connections: 1234, Ready: true, User: "app"},
			{ID: 1, Name: "api", Instance: 1, PID: 4101, Status: tend.StatusOnline, UptimeMS: 42e3, Restarts: 1, CPU: 30, Memory: 52 << 20,
				Mode: tend.ModeCluster, Sched: tend.SchedRoundRobin, Port: 3000, Connections: 987, Ready: true, User: "app",
				LastExit: &tend.Exit{Time: t0, Code: -1, Signal: "SIGKILL", UptimeMS: 7200e3, Cause: "memory"}},
			{ID: 2, Name: "worker", PID: 0, Status: tend.StatusWaiting, Restarts: 7, NextRestartMS: 1500, Mode: tend.ModeFork, User: "app",
				LastExit: &tend.Exit{Time: t0, Code: 1, UptimeMS: 300, Cause: "crash"}, Problem: "exits at once: see its error log"},
			{ID: 3, Name: "cron", PID: 0, Status: tend.StatusStopped, Mode: tend.ModeFork, User: "app",
				LastExit: &tend.Exit{Time: t0, Code: -1, Signal: "SIGINT", UptimeMS: 86400e3, Cause: "stop"}},
		},
		apps: []tend.App{
			{Spec: tend.AppSpec{Name: "api", Script: "server.js", Args: []string{"--verbose"}, Cwd: "/srv/api", Instances: 2},
				Resolved: tend.Resolved{ScriptPath: "/srv/api/server.js"}, Exits: []tend.Exit{{Time: t0, Code: -1, Signal: "SIGKILL", UptimeMS: 7200e3, Cause: "memory"}}},
			{Spec: tend.AppSpec{Name: "worker", Script: "worker.py", Cwd: "/srv/worker", Instances: 1}, Resolved: tend.Resolved{ScriptPath: "/srv/worker/worker.py"}},
			{Spec: tend.AppSpec{Name: "cron", Script: "/usr/local/bin/cron-job", Cwd: "/"}, Resolved: tend.Resolved{ScriptPath: "/usr/local/bin/cron-job"}},
		},
		logs: []tend.LogLine{
			{Time: t0, App: "api", Instance: 0, ID: 0, Stream: "out", Message: "listening on :3000"},
			{Time: t0, App: "api", Instance: 1, ID: 1, Stream: "out", Message: "listening on :3000"},
			{Time: t0, App: "api", Instance: 1, ID: 1, Stream: "out", Message: "GET /users 200 \x1b[32m12ms\x1b[0m"},
			{Time: t0, App: "api", Instance: 1, ID: 1, Stream: "err", Message: "warn:\tslow query (310ms)"},
			{Time: t0, App: "api", Instance: 0, ID: 0, Stream: "out", Message: "GET /health 200 1ms"},
		},
	}
}

// newModel returns a model of f's state at w x h, after 90 refreshes in
// which cpu and memory moved, with its commands not run: tests run the
// ones they care about.
func newModel(t *testing.T, f Source, w, h int) *Model {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	m := New(ctx, f, Options{})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	insts, _ := f.Instances(ctx)
	for i := range 90 {
		snap := slices.Clone(insts)
		for j := range snap {
			if snap[j].PID == 0 {
				continue
			}
			// A deterministic load: a slow wave, with a burst on api[1].
			snap[j].CPU = 10 + 8*math.Sin(float64(i)/9+float64(j))
			if j == 1 && i > 60 && i < 70 {
				snap[j].CPU = 95
			}
			snap[j].Memory += uint64(i) << 17
		}
		if i == 89 {
			snap = insts
		}
		m.Update(instancesMsg{insts: snap})
	}
	return m
}

// press sends keys to m and returns the last command.
func press(m *Model, keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		var msg tea.KeyPressMsg
		switch k {
		case "up":
			msg = tea.KeyPressMsg{Code: tea.KeyUp}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEsc}
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "backspace":
			msg = tea.KeyPressMsg{Code: tea.KeyBackspace}
		case "ctrl+c":
			msg = tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
		default:
			msg = tea.KeyPressMsg{Code: []rune(k)[0], Text: k}
		}
		_, cmd = m.Update(msg)
	}
	return cmd
}

// screen renders m without styles.
func screen(m *Model) string { return ansi.Strip(m.render()) }

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		w, h int
		keys []string
	}{
		{"80x24", 80, 24, []string{"j", "j"}}, // api[1]
		{"140x40", 140, 40, nil},              // the api app
		{"100x30-filter", 100, 30, []string{"/", "w", "o"}},
		{"60x12", 60, 12, []string{"G"}}, // scrolled to cron
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := state()
			m := newModel(t, f, tc.w, tc.h)
			press(m, tc.keys...)
			for _, a := range f.apps {
				m.Update(describeMsg{app: a.Spec.Name, apps: []tend.App{a}})
			}
			var lines []tend.LogLine
			for _, l := range f.logs {
				if m.logs.target == l.App || m.logs.target == "1" && l.ID == 1 {
					lines = append(lines, l)
				}
			}
			m.Update(logMsg{gen: m.logs.gen, lines: lines})
			got := screen(m)
			rows := strings.Split(got, "\n")
			if len(rows) != tc.h {
				t.Errorf("%d lines, want %d", len(rows), tc.h)
			}
			for i, r := range rows {
				if n := ansi.StringWidth(r); n != tc.w {
					t.Errorf("line %d is %d cells wide, want %d: %q", i, n, tc.w, r)
				}
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got+"\n" != string(want) {
				t.Errorf("screen differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

func TestSelection(t *testing.T) {
	m := newModel(t, state(), 80, 24)
	// Rows: api (2), api[0], api[1], worker, cron.
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{nil, "app api"},
		{[]string{"j"}, "id 0"},
		{[]string{"down", "down"}, "id 2"},
		{[]string{"j", "j", "j", "j", "j"}, "id 3"}, // stays on the last row
		{[]string{"k"}, "id 2"},
		{[]string{"up", "up", "up", "up", "up"}, "app api"},
		{[]string{"G"}, "id 3"},
		{[]string{"g"}, "app api"},
	} {
		press(m, tc.keys...)
		if m.sel != tc.want {
			t.Fatalf("after %v: selected %q, want %q", tc.keys, m.sel, tc.want)
		}
	}
	// The selection follows its row when rows come and go.
	press(m, "G")
	f := state()
	f.insts = slices.Delete(f.insts, 0, 1)
	m.Update(instancesMsg{insts: f.insts})
	if m.sel != "id 3" || m.items[m.cursor].key != "id 3" {
		t.Fatalf("after a refresh without api[0]: selected %q at %d", m.sel, m.cursor)
	}
	if _, ok := m.hist[0]; ok {
		t.Error("the history of a deleted instance is kept")
	}
}

func TestFilter(t *testing.T) {
	m := newModel(t, state(), 80, 24)
	press(m, "/", "W", "o", "r", "x", "backspace")
	if !m.filtering || m.filter != "Wor" {
		t.Fatalf("filtering=%v filter=%q", m.filtering, m.filter)
	}
	if len(m.items) != 1 || m.sel != "id 2" {
		t.Fatalf("filter Wor shows %v, selected %q", m.items, m.sel)
	}
	if cmd := press(m, "q"); cmd != nil && isQuit(cmd) {
		t.Fatal("q while typing a filter quits")
	}
	press(m, "backspace", "enter")
	if m.filtering || m.filter != "Wor" {
		t.Fatalf("after enter: filtering=%v filter=%q", m.filtering, m.filter)
	}
	if cmd := press(m, "esc"); isQuit(cmd) {
		t.Fatal("esc with a filter quits instead of clearing it")
	}
	if m.filter != "" || len(m.items) != 5 || m.sel != "id 2" {
		t.Fatalf("after esc: filter %q, %d rows, selected %q", m.filter, len(m.items), m.sel)
	}
	press(m, "/", "z", "z")
	if len(m.items) != 0 {
		t.Fatalf("filter zz shows %v", m.items)
	}
	if !strings.Contains(screen(m), "filter: zz") {
		t.Errorf("the filter is not shown:\n%s", screen(m))
	}
	press(m, "esc")
	if m.filter != "" || m.filtering || len(m.items) != 5 {
		t.Fatalf("esc while typing: filter %q, filtering %v, %d rows", m.filter, m.filtering, len(m.items))
	}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestQuit(t *testing.T) {
	for _, k := range []string{"q", "esc", "ctrl+c"} {
		t.Run(k, func(t *testing.T) {
			m := newModel(t, state(), 80, 24)
			if !isQuit(press(m, k)) {
				t.Fatalf("%s does not quit", k)
			}
		})
	}
	t.Run("ctrl+c while filtering", func(t *testing.T) {
		m := newModel(t, state(), 80, 24)
		if !isQuit(press(m, "/", "a", "ctrl+c")) {
			t.Fatal("ctrl+c does not quit")
		}
	})
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   []string
		want   string // the action called, "" for none
		status string
	}{
		{"restart an instance", []string{"j", "j", "r"}, "restart 1", "restart api[1]: 1 instance"},
		{"restart an app", []string{"r"}, "restart api", "restart api: 1 instance"},
		{"stop", []string{"j", "s"}, "stop 0", "stop api[0]: 1 instance"},
		{"start a stopped instance", []string{"G", "S"}, "restart 3", "restart cron: 1 instance"},
		{"start a running instance", []string{"j", "S"}, "", "api[0] is already running (r restarts it)"},
		{"reload unknown to the daemon", []string{"l"}, "reload api", "reload api: unknown action reload"},
		{"scale without the API", []string{"+"}, "", "scale: not available yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := state()
			f.errs = map[string]error{"reload": errors.New("unknown action reload")}
			m := newModel(t, f, 80, 24)
			cmd := press(m, tc.keys...)
			if tc.want != "" {
				if cmd == nil {
					t.Fatal("no command")
				}
				m.Update(cmd())
			}
			var want []string
			if tc.want != "" {
				want = []string{tc.want}
			}
			if got := f.actions(); !slices.Equal(got, want) {
				t.Errorf("actions %q, want %q", got, want)
			}
			if m.status != tc.status {
				t.Errorf("status %q, want %q", m.status, tc.status)
			}
			if !strings.Contains(screen(m), tc.status) {
				t.Errorf("the status is not on screen:\n%s", screen(m))
			}
		})
	}
	t.Run("scale", func(t *testing.T) {
		s := &scaler{fake: state()}
		m := newModel(t, s, 80, 24)
		m.Update(press(m, "+")())
		m.Update(press(m, "-")())
		m.Update(press(m, "-")())
		if want := []string{"api 3", "api 1", "api 1"}; !slices.Equal(s.scaled, want) {
			t.Errorf("scaled %q, want %q", s.scaled, want)
		}
	})
}

// TestLogs runs the log stream for real: it follows the selection, and a
// stream that was switched away from adds nothing.
func TestLogs(t *testing.T) {
	f := state()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	m := New(ctx, f, Options{})
	_, cmd := m.Update(instancesMsg{insts: f.insts})
	wait := findLogWait(t, cmd)
	old := wait()
	if lm, ok := old.(logMsg); !ok || len(lm.lines) != len(f.logs) {
		t.Fatalf("first stream gave %#v", old)
	}
	cmd = press(m, "j", "j")
	m.Update(old) // of the api stream, now stale
	if len(m.logs.lines) != 0 {
		t.Fatalf("a stale stream added %d lines", len(m.logs.lines))
	}
	m.Update(findLogWait(t, cmd)())
	if len(m.logs.lines) != len(f.logs) || m.logs.target != "1" {
		t.Fatalf("target %q, %d lines", m.logs.target, len(m.logs.lines))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The stream of api[0], started and stopped between the two keys,
	// may not have reached the fake yet.
	if !slices.Contains(f.follow, "api") || !slices.Contains(f.follow, "1") {
		t.Errorf("followed %q, want api then 1", f.follow)
	}
}

// findLogWait returns the log wait command among cmd's: the one that
// answers without blocking for long (the others are ticks and describes).
func findLogWait(t *testing.T, cmd tea.Cmd) tea.Cmd {
	t.Helper()
	var cmds []tea.Cmd
	var walk func(tea.Cmd)
	walk = func(c tea.Cmd) {
		if c == nil {
			return
		}
		// Batches are the only commands that answer at once; the log
		// wait answers once the fake sends, ticks after a second.
		msg := make(chan tea.Msg, 1)
		go func() { msg <- c() }()
		select {
		case m := <-msg:
			if b, ok := m.(tea.BatchMsg); ok {
				for _, c := range b {
					walk(c)
				}
				return
			}
			if _, ok := m.(logMsg); ok {
				cmds = append(cmds, func() tea.Msg { return m })
			}
		case <-time.After(500 * time.Millisecond):
		}
	}
	walk(cmd)
	if len(cmds) != 1 {
		t.Fatalf("%d log commands", len(cmds))
	}
	return cmds[0]
}

func TestHistoryBounded(t *testing.T) {
	m := newModel(t, state(), 80, 24)
	insts := state().insts
	for range 3 * historyLen {
		m.Update(instancesMsg{insts: insts})
	}
	for id, h := range m.hist {
		if h.cpu.n != historyLen || h.mem.n != historyLen {
			t.Errorf("instance %d keeps %d, %d samples", id, h.cpu.n, h.mem.n)
		}
	}
}

func TestSparkline(t *testing.T) {
	const end = 400
	vals := func(f func(i int) float64, from int) series {
		return func(i int) (float64, bool) {
			if i < from || i >= end {
				return 0, false
			}
			return f(i), true
		}
	}
	for _, tc := range []struct {
		name        string
		s           series
		held, width int
		floor       float64
		want        string
	}{
		{"idle under the floor", vals(func(int) float64 { return 1 }, 0), 180, 8, 10, "▁▁▁▁▁▁▁▁"},
		{"constant at its peak", vals(func(int) float64 { return 50 }, 0), 180, 8, 10, "████████"},
		{"ramp, one sample a cell", vals(func(i int) float64 { return float64(i - end + 8) }, 0), 8, 8, 1, "▁▂▃▄▅▆▇█"},
		{"young: blank on the left", vals(func(int) float64 { return 5 }, end-3), 3, 8, 5, "     ███"},
		{"burst kept by the max", vals(func(i int) float64 {
			if i == end-100 {
				return 100
			}
			return 0
		}, 0), 180, 9, 10, "▁▁▁▁█▁▁▁▁"},
		{"no samples", vals(func(int) float64 { return 1 }, end), 0, 4, 10, "    "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := sparkline(tc.s, end, tc.held, tc.width, tc.floor)
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
