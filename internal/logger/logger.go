// Package logger owns the one logging shape the parts of tend share, in
// the style of tailscale's logger.Logf: a printf-like function. The daemon
// gives each part one that writes to its log with a prefix and a rate
// limit (internal/daemon/dlog.go); tests give t.Logf. It imports nothing,
// so the public cluster package can use it without pulling tend in.
package logger

// Logf logs one line. A nil Logf is not callable: Or gives one that is.
type Logf func(format string, args ...any)

// Discard logs nothing.
func Discard(string, ...any) {}

// Or returns f, or Discard when f is nil.
func (f Logf) Or() Logf {
	if f == nil {
		return Discard
	}
	return f
}
