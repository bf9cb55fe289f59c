package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tendhq/tend"
)

// Options tune a Model. The zero value is what `tend monit` uses.
type Options struct {
	// Interval between refreshes of the instance list; 0 means one
	// second (PM2 refreshes every 800 ms; once a second keeps sparkline
	// cells at round numbers of seconds).
	Interval time.Duration
}

// callTimeout bounds a refresh or describe call, so that a stuck daemon
// shows up as an error in the status line instead of a frozen screen.
const callTimeout = 5 * time.Second

// logKeep is how many log lines the tail keeps: more than the tallest
// pane shows, few enough that a chatty app costs nothing.
const logKeep = 500

// Model is the dashboard's state. Create it with New; it implements
// tea.Model.
type Model struct {
	ctx      context.Context
	src      Source
	interval time.Duration

	width, height int

	insts   []tend.Instance
	err     error            // of the last refresh
	hist    map[int]*history // by instance id
	samples int              // refreshes sampled: the number of the next sample
	apps    map[string]tend.App

	items  []item // rows shown, after the filter
	sel    string // key of the selected row
	cursor int    // its index in items

	filter    string
	filtering bool // typing the filter

	logs   logTail
	status string // outcome of the last action
	bad    bool   // status is an error
}

// New returns a dashboard over src. Calls to src use ctx; when ctx ends,
// so do the log stream and the program (see tea.WithContext).
func New(ctx context.Context, src Source, o Options) *Model {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	return &Model{ctx: ctx, src: src, interval: o.Interval, width: 80, height: 24,
		hist: map[int]*history{}, apps: map[string]tend.App{}}
}

// item is one row of the list: an app with several instances, or one
// instance.
type item struct {
	key  string
	app  string
	inst *tend.Instance // nil for an app's row
	ids  []int          // an app row's instances
}

// target is what actions and logs address: the id of an instance, the
// name of an app.
func (it item) target() string {
	if it.inst != nil {
		return strconv.Itoa(it.inst.ID)
	}
	return it.app
}

// label names the row for people: api, api[2].
func (it item) label() string {
	if it.inst != nil && len(it.ids) != 1 {
		return fmt.Sprintf("%s[%d]", it.app, it.inst.Instance)
	}
	return it.app
}

// Messages.
type (
	tickMsg      struct{}
	instancesMsg struct {
		insts []tend.Instance
		err   error
	}
	describeMsg struct {
		app  string
		apps []tend.App
		err  error
	}
	actMsg struct {
		action, label string
		res           tend.ActionResult
		err           error
	}
)

// Init starts the first refresh.
func (m *Model) Init() tea.Cmd { return m.refresh }

func (m *Model) refresh() tea.Msg {
	ctx, cancel := context.WithTimeout(m.ctx, callTimeout)
	defer cancel()
	insts, err := m.src.Instances(ctx)
	return instancesMsg{insts, err}
}

func (m *Model) describe(app string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(m.ctx, callTimeout)
		defer cancel()
		apps, err := m.src.Describe(ctx, app, false)
		return describeMsg{app, apps, err}
	}
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// Update applies msg.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		return m, m.refresh
	case instancesMsg:
		m.err = msg.err
		if msg.err == nil {
			m.setInstances(msg.insts)
		}
		// The describe is refreshed with the list, so that exits and
		// problems of the selected app stay current.
		cmds := []tea.Cmd{m.tick(), m.follow()}
		if it, ok := m.selected(); ok && msg.err == nil {
			cmds = append(cmds, m.describe(it.app))
		}
		return m, tea.Batch(cmds...)
	case describeMsg:
		if msg.err == nil {
			for _, a := range msg.apps {
				m.apps[a.Spec.Name] = a
			}
		}
	case actMsg:
		m.bad = msg.err != nil
		if msg.err != nil {
			m.status = fmt.Sprintf("%s %s: %v", msg.action, msg.label, msg.err)
			break
		}
		m.status = fmt.Sprintf("%s %s: %d %s", msg.action, msg.label, len(msg.res.Affected), plural(len(msg.res.Affected), "instance"))
		// Show the outcome now rather than at the next refresh, without
		// sampling it: history stays one sample per refresh.
		m.insts = msg.res.Instances
		m.rebuild()
		return m, m.follow()
	case logMsg, logEndMsg, logRetryMsg:
		return m, m.logs.update(msg, m)
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, nil
}

// setInstances takes a refresh: one history sample per instance, and the
// histories of instances that are gone are dropped.
func (m *Model) setInstances(insts []tend.Instance) {
	m.insts = insts
	seen := make(map[int]bool, len(insts))
	for _, in := range insts {
		seen[in.ID] = true
		h := m.hist[in.ID]
		if h == nil {
			h = &history{}
			m.hist[in.ID] = h
		}
		h.cpu.add(m.samples, in.CPU)
		h.mem.add(m.samples, float64(in.Memory))
	}
	m.samples++
	for id := range m.hist {
		if !seen[id] {
			delete(m.hist, id)
		}
	}
	for name := range m.apps {
		if !m.hasApp(name) {
			delete(m.apps, name)
		}
	}
	m.rebuild()
}

func (m *Model) hasApp(name string) bool {
	for _, in := range m.insts {
		if in.Name == name {
			return true
		}
	}
	return false
}

// rebuild recomputes the rows from the instances and the filter, and
// keeps the selection on the same row, or at the same place if it went.
func (m *Model) rebuild() {
	var order []string
	byApp := map[string][]int{}
	for i, in := range m.insts {
		if _, ok := byApp[in.Name]; !ok {
			order = append(order, in.Name)
		}
		byApp[in.Name] = append(byApp[in.Name], i)
	}
	f := strings.ToLower(m.filter)
	m.items = m.items[:0]
	for _, name := range order {
		if f != "" && !strings.Contains(strings.ToLower(name), f) {
			continue
		}
		idx := byApp[name]
		ids := make([]int, len(idx))
		for j, i := range idx {
			ids[j] = m.insts[i].ID
		}
		if len(idx) > 1 {
			m.items = append(m.items, item{key: "app " + name, app: name, ids: ids})
		}
		for _, i := range idx {
			in := &m.insts[i]
			m.items = append(m.items, item{key: "id " + strconv.Itoa(in.ID), app: name, inst: in, ids: ids})
		}
	}
	for i, it := range m.items {
		if it.key == m.sel {
			m.cursor = i
			return
		}
	}
	m.choose(m.cursor)
}

func (m *Model) choose(i int) {
	m.cursor = min(max(i, 0), len(m.items)-1)
	m.sel = ""
	if m.cursor >= 0 {
		m.sel = m.items[m.cursor].key
	}
}

// listRows is how far page up and page down move: about a screen.
func (m *Model) listRows() int { return max(m.height/2, 1) }

func (m *Model) selected() (item, bool) {
	if m.cursor < 0 || m.cursor >= len(m.items) {
		return item{}, false
	}
	return m.items[m.cursor], true
}

// follow points the log tail at the selected row, and fetches its app's
// description when the app changed.
func (m *Model) follow() tea.Cmd {
	it, ok := m.selected()
	target := ""
	if ok {
		target = it.target()
	}
	if target == m.logs.target {
		return nil
	}
	cmd := m.logs.start(m, target)
	if ok && m.logs.app != it.app {
		m.logs.app = it.app
		cmd = tea.Batch(cmd, m.describe(it.app))
	}
	return cmd
}

func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	s := k.String()
	if s == "ctrl+c" {
		return m.quit()
	}
	if m.filtering {
		switch s {
		case "enter":
			m.filtering = false
		case "esc":
			m.filtering, m.filter = false, ""
		case "backspace":
			if r := []rune(m.filter); len(r) > 0 {
				m.filter = string(r[:len(r)-1])
			}
		default:
			if k.Text == "" {
				return nil
			}
			m.filter += k.Text
		}
		m.rebuild()
		return m.follow()
	}
	it, ok := m.selected()
	switch s {
	case "q":
		return m.quit()
	case "esc":
		if m.filter == "" {
			return m.quit()
		}
		m.filter = ""
		m.rebuild()
	case "up", "k":
		m.choose(m.cursor - 1)
	case "down", "j":
		m.choose(m.cursor + 1)
	case "home", "g":
		m.choose(0)
	case "end", "G":
		m.choose(len(m.items) - 1)
	case "pgup":
		m.choose(m.cursor - m.listRows())
	case "pgdown":
		m.choose(m.cursor + m.listRows())
	case "/":
		m.filtering = true
	case "r", "s", "l":
		if ok {
			return m.act(map[string]string{"r": "restart", "s": "stop", "l": "reload"}[s], it)
		}
	case "S":
		// The API has no start of a stopped instance: restart is it.
		if ok {
			if running(m.instancesOf(it)) {
				m.status, m.bad = it.label()+" is already running (r restarts it)", false
				return nil
			}
			return m.act("restart", it)
		}
	case "+", "-":
		if ok {
			return m.scale(it, map[string]int{"+": 1, "-": -1}[s])
		}
	}
	return m.follow()
}

func (m *Model) quit() tea.Cmd {
	m.logs.stop()
	return tea.Quit
}

func (m *Model) act(action string, it item) tea.Cmd {
	m.status, m.bad = action+" "+it.label()+"…", false
	target, label := it.target(), it.label()
	return func() tea.Msg {
		// Not cut short by a refresh deadline: a stop waits for the
		// app's kill timeout.
		res, err := m.src.Act(m.ctx, action, []string{target})
		return actMsg{action, label, res, err}
	}
}

func (m *Model) scale(it item, delta int) tea.Cmd {
	sc, ok := m.src.(Scaler)
	if !ok {
		m.status, m.bad = "scale: not available yet", true
		return nil
	}
	n := max(len(it.ids)+delta, 1)
	app := it.app
	m.status, m.bad = fmt.Sprintf("scale %s to %d…", app, n), false
	return func() tea.Msg {
		res, err := sc.Scale(m.ctx, app, n, false)
		return actMsg{"scale", fmt.Sprintf("%s to %d", app, n), tend.ActionResult{Instances: res.Instances}, err}
	}
}

// instancesOf returns the instances of a row.
func (m *Model) instancesOf(it item) []tend.Instance {
	if it.inst != nil {
		return []tend.Instance{*it.inst}
	}
	var out []tend.Instance
	for _, in := range m.insts {
		if in.Name == it.app {
			out = append(out, in)
		}
	}
	return out
}

func running(insts []tend.Instance) bool {
	for _, in := range insts {
		if in.Status == tend.StatusStopped || in.Status == tend.StatusErrored {
			return false
		}
	}
	return len(insts) > 0
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
