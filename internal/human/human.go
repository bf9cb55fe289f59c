// Package human formats durations and sizes the way tend's tables show
// them: short, largest unit first, as PM2 does.
package human

import (
	"fmt"
	"time"
)

// Duration prints the largest unit only: 12ms, 12s, 5m, 3h, 2D.
func Duration(d time.Duration) string {
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

// Bytes prints a size with one decimal: 512b, 1.5kb, 41.2mb, 1.1gb.
func Bytes(n uint64) string {
	switch {
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
