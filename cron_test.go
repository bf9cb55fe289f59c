package tend

import (
	"testing"
	"time"
)

func TestParseRotateInterval(t *testing.T) {
	at := time.Date(2026, 3, 1, 13, 25, 7, 0, time.Local)
	for _, tt := range []struct {
		in, kept string
		next     time.Time // zero: no schedule
	}{
		{"daily", "daily", time.Date(2026, 3, 2, 0, 0, 0, 0, time.Local)},
		{"true", "daily", time.Date(2026, 3, 2, 0, 0, 0, 0, time.Local)},
		{"hourly", "hourly", time.Date(2026, 3, 1, 14, 0, 0, 0, time.Local)},
		{"*/10 * * * * *", "*/10 * * * * *", time.Date(2026, 3, 1, 13, 25, 10, 0, time.Local)},
		{"@every 1h", "@every 1h", at.Add(time.Hour)},
		{"false", "false", time.Time{}},
	} {
		kept, sch, err := ParseRotateInterval(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if kept != tt.kept {
			t.Errorf("%q is kept as %q, want %q", tt.in, kept, tt.kept)
		}
		if tt.next.IsZero() != (sch == nil) || sch != nil && !sch.Next(at).Equal(tt.next) {
			t.Errorf("%q: schedule %v, want next %v", tt.in, sch, tt.next)
		}
	}
	for _, bad := range []string{"", "weekly", "0 0 30 2 *"} {
		if _, _, err := ParseRotateInterval(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
