package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

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
