package tend

import (
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
