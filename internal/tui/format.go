package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// These print numbers as `tend ls` does (internal/cli/table.go), so the
// two read alike.

// formatDuration prints the largest unit only, as PM2 does: 12s, 5m, 3h, 2D.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dD", int(d.Hours()/24))
	}
}

func formatBytes(n uint64) string {
	switch {
	case n == 0:
		return "0b"
	case n < 1<<10:
		return fmt.Sprintf("%db", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1fkb", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1fmb", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1fgb", float64(n)/(1<<30))
	}
}

func formatCPU(p float64) string { return fmt.Sprintf("%.0f%%", p) }

// fit returns s cut or padded to exactly w cells. s may hold ANSI styles.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-ansi.StringWidth(s))
}

// right returns s right-aligned in w cells.
func right(s string, w int) string {
	if n := ansi.StringWidth(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return fit(s, w)
}

// clean makes one line of an app's output safe to lay out: the app's own
// colours and cursor moves are removed, tabs become spaces and other
// control characters are dropped, so a line takes the cells it seems to.
func clean(s string) string {
	s = ansi.Strip(s)
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString("    ")
		case r < ' ' || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
