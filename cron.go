package tend

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser reads schedules as PM2's cron_restart does: five fields
// (minute hour day-of-month month day-of-week), six with seconds first, or
// a descriptor (@daily, @hourly, @every 90m).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a cron_restart schedule. A bad one is an EINVALID error
// naming it (the caller names the key or flag).
func ParseCron(s string) (cron.Schedule, error) {
	sch, err := cronParser.Parse(s)
	if err != nil {
		return nil, Errorf(EINVALID, "%q: %v (five fields: minute hour day month weekday, e.g. \"0 3 * * *\"; or @daily, @every 6h)", s, err)
	}
	if sch.Next(time.Now()).IsZero() {
		return nil, Errorf(EINVALID, "%q never comes (no such date within five years)", s)
	}
	return sch, nil
}

// ParseRotateInterval reads log_rotate_interval: "daily" (or "true") is
// midnight local time, "hourly" the start of every hour, "false" none (not
// even the daemon's default), anything else a cron schedule as for
// cron_restart ("0 */6 * * *"; "*/10 * * * * *" with seconds). It returns
// the value as tend keeps it ("true" becomes "daily") and its schedule,
// nil for "false".
func ParseRotateInterval(s string) (string, cron.Schedule, error) {
	var spec string
	switch s = strings.TrimSpace(s); s {
	case "false":
		return s, nil, nil
	case "daily", "true":
		s, spec = "daily", "0 0 * * *"
	case "hourly":
		spec = "0 * * * *"
	default:
		spec = s
	}
	if _, err := cronParser.Parse(spec); err != nil {
		return s, nil, Errorf(EINVALID, "%q is not daily, hourly, false or a cron schedule such as \"0 */6 * * *\" (%v)", s, err)
	}
	sch, err := ParseCron(spec) // which also rejects a schedule that never comes
	return s, sch, err
}
