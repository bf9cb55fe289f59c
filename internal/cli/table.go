package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tendhq/tend/internal/human"

	"github.com/tendhq/tend"
)

// printTable prints instances as `tend ls` does: a boxed, coloured table on
// a terminal, aligned plain columns when piped.
func (e *env) printTable(insts []tend.Instance) {
	head := []string{"id", "name", "mode", "pid", "uptime", "↺", "status", "cpu", "mem", "user"}
	cluster, health := false, false
	for _, in := range insts {
		cluster = cluster || in.Port != 0
		health = health || in.Health != ""
	}
	if health {
		head = slices.Insert(head, 7, "health")
	}
	if cluster {
		head = append(head, "port", "conns")
	}
	rows := make([][]string, 0, len(insts))
	colors := make([]string, 0, len(insts))
	for _, in := range insts {
		pid := "-"
		if in.PID != 0 {
			pid = strconv.Itoa(in.PID)
		}
		status := string(in.Status)
		if in.Status == tend.StatusWaiting && (in.NextRestartMS > 0 || in.Problem == "") {
			// a restart to come; without one, its dependencies hold it
			// back, and the problem below says which
			status += " " + human.Duration(time.Duration(in.NextRestartMS)*time.Millisecond)
		}
		row := []string{
			strconv.Itoa(in.ID), in.Name, modeLabel(in), pid, uptime(in), strconv.Itoa(in.Restarts),
			status, fmt.Sprintf("%.0f%%", in.CPU), human.Bytes(in.Memory), in.User,
		}
		if health {
			row = slices.Insert(row, 7, cmpOr(in.Health, "-"))
		}
		if cluster {
			port, conns := "-", "-"
			if in.Port != 0 {
				port = strconv.Itoa(in.Port)
				if in.Sched.Counted() {
					conns = strconv.FormatUint(in.Connections, 10)
				}
			}
			row = append(row, port, conns)
		}
		rows = append(rows, row)
		colors = append(colors, statusColor(in.Status))
	}
	e.renderTable(head, rows, colors, 6)
	for _, in := range insts {
		if in.Problem != "" {
			fmt.Fprintf(e.out, "%s %s[%d]: %s\n", e.paint(yellow, "!"), in.Name, in.Instance, in.Problem)
		}
	}
}

func modeLabel(in tend.Instance) string {
	if in.Sched != "" && in.Mode != tend.ModeFork {
		return string(in.Mode) + "/" + string(in.Sched)
	}
	return string(in.Mode)
}

func statusColor(s tend.Status) string {
	switch s {
	case tend.StatusOnline, tend.StatusCompleted:
		return green
	case tend.StatusErrored:
		return red
	case tend.StatusStopped:
		return grey
	default:
		return yellow
	}
}

// renderTable draws rows under head. colors[i] paints column colorCol of
// row i.
func (e *env) renderTable(head []string, rows [][]string, colors []string, colorCol int) {
	w := make([]int, len(head))
	for i, h := range head {
		w[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], utf8.RuneCountInString(c))
		}
	}
	pad := func(s string, n int) string { return s + strings.Repeat(" ", n-utf8.RuneCountInString(s)) }
	var b strings.Builder
	if !e.tty {
		// Piped: plain aligned columns, easy for grep and awk.
		for _, r := range append([][]string{head}, rows...) {
			for i, c := range r {
				if i > 0 {
					b.WriteString("  ")
				}
				if i == len(r)-1 {
					b.WriteString(c)
				} else {
					b.WriteString(pad(c, w[i]))
				}
			}
			b.WriteString("\n")
		}
		fmt.Fprint(e.out, b.String())
		return
	}
	line := func(l, m, r string) {
		b.WriteString(l)
		for i, n := range w {
			if i > 0 {
				b.WriteString(m)
			}
			b.WriteString(strings.Repeat("─", n+2))
		}
		b.WriteString(r + "\n")
	}
	row := func(cells []string, color string, headRow bool) {
		b.WriteString("│")
		for i, c := range cells {
			cell := pad(c, w[i])
			switch {
			case headRow:
				cell = e.paint(bold, cell)
			case i == colorCol:
				cell = e.paint(color, cell)
			}
			b.WriteString(" " + cell + " │")
		}
		b.WriteString("\n")
	}
	line("┌", "┬", "┐")
	row(head, "", true)
	line("├", "┼", "┤")
	for i, r := range rows {
		row(r, colors[i], false)
	}
	line("└", "┴", "┘")
	fmt.Fprint(e.out, b.String())
}

func uptime(in tend.Instance) string {
	if in.PID == 0 {
		return "0"
	}
	return human.Duration(time.Duration(in.UptimeMS) * time.Millisecond)
}
