package tui

import (
	"fmt"
	"github.com/tendhq/tend/internal/human"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/tendhq/tend"
)

// wideAt is the width from which the list and the details sit side by
// side: below it the list's sparklines would be too short to read.
const wideAt = 120

// Styles use the 16 ANSI colours, so they follow the terminal's theme;
// Bubble Tea drops them where the terminal or NO_COLOR says so. Nothing
// relies on colour alone: the selected row has a marker, stderr lines a !.
var (
	stBold    = lipgloss.NewStyle().Bold(true)
	stFaint   = lipgloss.NewStyle().Faint(true)
	stTitle   = lipgloss.NewStyle().Bold(true).Reverse(true)
	stSel     = lipgloss.NewStyle().Reverse(true)
	stGreen   = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	stRed     = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	stYellow  = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	stGrey    = lipgloss.NewStyle().Foreground(lipgloss.Color("8"))
	stCPU     = lipgloss.NewStyle().Foreground(lipgloss.Color("6"))
	stMem     = lipgloss.NewStyle().Foreground(lipgloss.Color("5"))
	stKey     = lipgloss.NewStyle().Bold(true)
	separator = stFaint.Render(" │ ")
)

func statusStyle(s tend.Status) lipgloss.Style {
	switch s {
	case tend.StatusOnline, tend.StatusCompleted:
		return stGreen
	case tend.StatusErrored:
		return stRed
	case tend.StatusStopped:
		return stGrey
	default:
		return stYellow
	}
}

// Sparkline floors: below these, heights are relative to the floor, so
// an idle app (0.3% cpu, a few MB) draws low bars, not full ones.
const (
	cpuFloor = 10      // percent of one core
	memFloor = 1 << 20 // bytes
)

// View draws the screen in the alternate buffer.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "tend monit"
	return v
}

// render draws exactly m.height lines of m.width cells.
func (m *Model) render() string {
	w, h := m.width, m.height
	if w < 30 || h < 8 {
		return fit("tend monit: the terminal is too small", w)
	}
	lines := make([]string, 0, h)
	lines = append(lines, m.header(w))
	body := h - 3
	it, ok := m.selected()
	if w >= wideAt {
		lw := w * 11 / 20
		rw := w - lw - 3
		left := m.list(lw, body)
		right := m.details(it, ok, rw, true)
		right = append(right, m.logPane(it, rw, body-len(right))...)
		for i := range body {
			lines = append(lines, fit(left[i], lw)+separator+fit(right[i], rw))
		}
	} else {
		det := m.details(it, ok, w, false)
		const minLogs = 4 // a rule and three lines
		listH := min(len(m.items)+1, max(body-len(det)-minLogs, 2))
		lines = append(lines, m.list(w, listH)...)
		lines = append(lines, det...)
		lines = append(lines, m.logPane(it, w, body-listH-len(det))...)
	}
	lines = append(lines, m.statusLine(w), m.help(w))
	for i := range lines {
		lines[i] = fit(lines[i], w)
	}
	return strings.Join(lines[:h], "\n")
}

func (m *Model) header(w int) string {
	apps := map[string]bool{}
	online := 0
	var cpu float64
	var mem uint64
	for _, in := range m.insts {
		apps[in.Name] = true
		if in.Status == tend.StatusOnline {
			online++
		}
		cpu += in.CPU
		mem += in.Memory
	}
	left := stTitle.Render(" tend monit ") + stFaint.Render(fmt.Sprintf(" %d %s · %d %s · %d online · cpu %s · mem %s",
		len(apps), plural(len(apps), "app"), len(m.insts), plural(len(m.insts), "instance"), online, formatCPU(cpu), human.Bytes(mem)))
	var rt string
	switch {
	case m.filtering:
		rt = "filter: " + m.filter + "▏"
	case m.filter != "":
		rt = "filter: " + m.filter
	}
	if rt == "" {
		return left
	}
	return fit(left, w-len([]rune(rt))-1) + " " + stYellow.Render(rt)
}

// columns of the list.
type columns struct {
	name, spark int
}

const (
	statusW = 10 // "launching", "3/4 online"
	cpuW    = 5  // "800%"
	memW    = 8  // "1023.9mb"
	rstW    = 3
	upW     = 6
	fixedW  = 2 + 1 + statusW + 1 + cpuW + 1 + memW + 1 + rstW + 1 + upW // marker and all but name and sparklines
)

func (m *Model) columns(w int) columns {
	name := 6
	for _, it := range m.items {
		n := len([]rune(it.label()))
		if it.inst != nil && len(it.ids) > 1 {
			n += 2
		}
		name = max(name, n)
	}
	name = min(name, 20, max(w-fixedW, 4))
	spark := (w - fixedW - name - 2) / 2
	if spark < 4 {
		spark = 0
	}
	return columns{name, min(spark, historyLen)}
}

// list draws the header and the rows around the selection, h lines.
func (m *Model) list(w, h int) []string {
	c := m.columns(w)
	out := make([]string, 0, h)
	head := "  " + fit("name", c.name) + " " + fit("status", statusW) + " " + right("cpu", cpuW) + " " + right("mem", memW) +
		" " + right("↺", rstW) + " " + right("uptime", upW)
	if c.spark > 0 {
		cpu, mem := "cpu history", "mem history"
		if c.spark < len(cpu) {
			cpu, mem = "cpu", "mem"
		}
		head += " " + fit(cpu, c.spark) + " " + fit(mem, c.spark)
	}
	out = append(out, stBold.Render(fit(head, w)))
	rows := h - 1
	if len(m.items) == 0 && rows > 0 {
		out = append(out, stFaint.Render("  no apps: start one with `tend start <script>`"))
	}
	first := 0
	if m.cursor >= rows {
		first = m.cursor - rows + 1
	}
	for i := first; i < len(m.items) && len(out) < h; i++ {
		out = append(out, m.row(m.items[i], i == m.cursor, c, w))
	}
	for len(out) < h {
		out = append(out, "")
	}
	return out
}

func (m *Model) row(it item, selected bool, c columns, w int) string {
	var status string
	var st lipgloss.Style
	var cpu float64
	var mem uint64
	var restarts int
	up := ""
	name := it.label()
	insts := m.instancesOf(it)
	for _, in := range insts {
		cpu += in.CPU
		mem += in.Memory
		restarts += in.Restarts
	}
	if it.inst != nil {
		in := it.inst
		status, st = string(in.Status), statusStyle(in.Status)
		if in.Status == tend.StatusOnline && (in.Health == "failing" || in.Health == "unhealthy") {
			status, st = in.Health, stYellow // its probe or watchdog says so
		}
		up = "-"
		if in.PID != 0 {
			up = human.Duration(time.Duration(in.UptimeMS) * time.Millisecond)
		}
		if len(it.ids) > 1 {
			name = "  " + name
		}
	} else {
		status, st = appStatus(insts)
		name = fmt.Sprintf("%s (%d)", it.app, len(insts))
	}
	marker := "  "
	if selected {
		marker = "› "
	}
	cell := func(s string, style lipgloss.Style) string {
		if selected {
			return s
		}
		return style.Render(s)
	}
	nameStyle := lipgloss.NewStyle()
	if it.inst == nil {
		nameStyle = stBold
	}
	line := marker + cell(fit(name, c.name), nameStyle) + " " + cell(fit(status, statusW), st) + " " +
		right(formatCPU(cpu), cpuW) + " " + right(human.Bytes(mem), memW) + " " + right(strconv.Itoa(restarts), rstW) + " " + right(up, upW)
	if c.spark > 0 {
		cs, _ := sparkline(m.sum(it, false), m.samples, m.samples, c.spark, cpuFloor)
		ms, _ := sparkline(m.sum(it, true), m.samples, m.samples, c.spark, memFloor)
		line += " " + cell(cs, stCPU) + " " + cell(ms, stMem)
	}
	if selected {
		return stSel.Render(fit(line, w))
	}
	return line
}

// appStatus sums up an app's instances: their status if they agree,
// else how many are online.
func appStatus(insts []tend.Instance) (string, lipgloss.Style) {
	online := 0
	for _, in := range insts {
		if in.Status == tend.StatusOnline {
			online++
		}
	}
	if len(insts) > 0 && (online == len(insts) || online == 0) {
		same := true
		for _, in := range insts {
			same = same && in.Status == insts[0].Status
		}
		if same {
			return string(insts[0].Status), statusStyle(insts[0].Status)
		}
	}
	return fmt.Sprintf("%d/%d online", online, len(insts)), stYellow
}

// sum is the history of a row: its instance's, or the sum of its app's.
func (m *Model) sum(it item, mem bool) series {
	var hs []*history
	for _, id := range it.ids {
		if it.inst != nil && id != it.inst.ID {
			continue
		}
		if h := m.hist[id]; h != nil {
			hs = append(hs, h)
		}
	}
	return func(i int) (float64, bool) {
		var t float64
		known := false
		for _, h := range hs {
			r := &h.cpu
			if mem {
				r = &h.mem
			}
			if v, ok := r.at(i); ok {
				t, known = t+v, true
			}
		}
		return t, known
	}
}

// details draws the selected row's metadata; wide adds large sparklines.
func (m *Model) details(it item, ok bool, w int, wide bool) []string {
	out := []string{rule("details", w)}
	if !ok {
		return append(out, stFaint.Render("  nothing selected"))
	}
	a, described := m.apps[it.app]
	insts := m.instancesOf(it)
	var meta []string
	var exit *tend.Exit
	var problem string
	if it.inst != nil {
		in := it.inst
		meta = append(meta, "id "+strconv.Itoa(in.ID))
		if in.PID != 0 {
			meta = append(meta, "pid "+strconv.Itoa(in.PID))
		}
		exit, problem = in.LastExit, in.Problem
	} else {
		meta = append(meta, fmt.Sprintf("%d instances", len(insts)))
		if n := len(a.Exits); n > 0 {
			exit = &a.Exits[n-1]
		}
		for _, in := range insts {
			if in.Problem != "" {
				problem = fmt.Sprintf("[%d] %s", in.Instance, in.Problem)
				break
			}
		}
	}
	if len(insts) > 0 {
		in := insts[0]
		mode := string(in.Mode)
		if in.Sched != "" && in.Mode != tend.ModeFork {
			mode += "/" + string(in.Sched)
		}
		meta = append(meta, mode)
		if in.Port != 0 {
			meta = append(meta, "port "+strconv.Itoa(in.Port))
		}
	}
	if it.inst != nil && it.inst.Port != 0 && it.inst.Sched.Counted() {
		meta = append(meta, fmt.Sprintf("%d conns", it.inst.Connections))
	}
	out = append(out, "  "+stBold.Render(it.label())+"  "+stFaint.Render(strings.Join(meta, " · ")))
	kv := func(k, v string) string { return "  " + stFaint.Render(fmt.Sprintf("%-8s", k)) + v }
	if described {
		script := a.ScriptPath
		if script == "" {
			script = a.Spec.Script
		}
		if len(a.Spec.Args) > 0 {
			script += stFaint.Render("  args ") + strings.Join(a.Spec.Args, " ")
		}
		out = append(out, kv("script", script), kv("cwd", a.Spec.Cwd))
	} else {
		out = append(out, kv("script", "…"), kv("cwd", "…"))
	}
	last := "none"
	if exit != nil {
		how := "code " + strconv.Itoa(exit.Code)
		if exit.Signal != "" {
			how = "signal " + exit.Signal
		}
		last = fmt.Sprintf("%s, %s, after %s", exit.Cause, how, human.Duration(time.Duration(exit.UptimeMS)*time.Millisecond))
	}
	if it.inst != nil && it.inst.Status == tend.StatusWaiting {
		last += stYellow.Render(" · restart in " + human.Duration(time.Duration(it.inst.NextRestartMS)*time.Millisecond))
	}
	out = append(out, kv("exit", last))
	if it.inst != nil && it.inst.Health != "" {
		out = append(out, kv("health", it.inst.Health))
	}
	if problem != "" {
		out = append(out, kv("problem", stYellow.Render(problem)))
	}
	if wide {
		sw := max(w-2-8-26, 4)
		cs, cpeak := sparkline(m.sum(it, false), m.samples, m.samples, min(sw, historyLen), cpuFloor)
		ms, mpeak := sparkline(m.sum(it, true), m.samples, m.samples, min(sw, historyLen), memFloor)
		var cpu float64
		var mem uint64
		for _, in := range insts {
			cpu += in.CPU
			mem += in.Memory
		}
		out = append(out,
			kv("cpu", stCPU.Render(cs)+fmt.Sprintf("  %s, peak %s", formatCPU(cpu), formatCPU(cpeak))),
			kv("memory", stMem.Render(ms)+fmt.Sprintf("  %s, peak %s", human.Bytes(mem), human.Bytes(uint64(mpeak)))))
	}
	return out
}

// logPane draws the rule and the last h-1 log lines of the selection.
func (m *Model) logPane(it item, w, h int) []string {
	if h <= 0 {
		return nil
	}
	title := "logs"
	if m.logs.target != "" {
		title += " " + it.label()
	}
	if m.logs.ended {
		msg := "stream ended"
		if m.logs.err != nil {
			msg += ": " + m.logs.err.Error()
		}
		title += " (" + msg + ", retrying)"
	}
	out := []string{rule(title, w)}
	n := h - 1
	lines := m.logs.lines[max(len(m.logs.lines)-n, 0):]
	if len(lines) == 0 && n > 0 {
		out = append(out, stFaint.Render("  (no output yet)"))
	}
	app := it.inst == nil
	for _, l := range lines {
		sep := stFaint.Render("│ ")
		if l.Stream == "err" {
			sep = stRed.Render("! ")
		}
		if app {
			sep = stFaint.Render(strconv.Itoa(l.Instance)) + sep
		}
		out = append(out, sep+clean(l.Message))
	}
	for len(out) < h {
		out = append(out, "")
	}
	return out
}

func rule(title string, w int) string {
	s := "── " + title + " "
	if n := len([]rune(s)); n < w {
		s += strings.Repeat("─", w-n)
	}
	return stFaint.Render(fit(s, w))
}

func (m *Model) statusLine(w int) string {
	switch {
	case m.err != nil:
		return stRed.Render("daemon: " + m.err.Error())
	case m.status != "" && m.bad:
		return stRed.Render(m.status)
	case m.status != "":
		return m.status
	}
	return stFaint.Render(fmt.Sprintf("refreshing every %s · history: up to %d minutes", m.interval, historyLen/60))
}

func (m *Model) help(w int) string {
	keys := [][2]string{{"↑↓", "select"}, {"r", "restart"}, {"s", "stop"}, {"S", "start"}, {"l", "reload"}, {"+/-", "scale"}, {"/", "filter"}, {"q", "quit"}}
	if m.filtering {
		keys = [][2]string{{"type", "a name"}, {"enter", "keep"}, {"esc", "clear"}, {"ctrl+c", "quit"}}
	}
	var b []string
	for _, k := range keys {
		b = append(b, stKey.Render(k[0])+" "+stFaint.Render(k[1]))
	}
	return strings.Join(b, "  ")
}
