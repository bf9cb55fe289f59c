package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/tendhq/tend"
)

// The app's schedules: its cron_restart loop and its watch loop, both
// replacing instances through recycle, both restarted by a reload that
// changes their settings.

// checkSchedules checks spec's cron_restart and opens the watcher for its
// watch paths (nil without any): the errors are bad input.
func checkSchedules(spec *tend.AppSpec) (*watcher, error) {
	if spec.CronRestart != "" {
		if _, err := tend.ParseCron(spec.CronRestart); err != nil {
			return nil, tend.Errorf(tend.EINVALID, "app %s: cron_restart: %v", spec.Name, err)
		}
	}
	if len(spec.Watch) == 0 {
		return nil, nil
	}
	w, err := newWatcher(spec)
	if err != nil {
		return nil, tend.Errorf(tend.EINVALID, "app %s: %v", spec.Name, err)
	}
	return w, nil
}

// schedulesDiffer reports whether b's cron or watch settings differ from a's.
func schedulesDiffer(a, b tend.AppSpec) bool {
	return a.CronRestart != b.CronRestart || !slices.Equal(a.Watch, b.Watch) ||
		!slices.Equal(a.IgnoreWatch, b.IgnoreWatch) || a.WatchDelay != b.WatchDelay || a.Cwd != b.Cwd
}

// startSchedules starts the cron loop and the watch loop (on w) of the
// spec in force. Each ends with the app or at stopSchedules.
func (a *App) startSchedules(w *watcher) {
	spec := a.Spec()
	stop := make(chan struct{})
	a.schedMu.Lock()
	a.schedStop = stop
	a.schedMu.Unlock()
	if spec.CronRestart != "" {
		go a.cronLoop(spec.CronRestart, stop)
	}
	if w != nil {
		w.own = a.logPrefixes()
		// $TEND_HOME may sit in a watched tree (or the app in it): its
		// logs, notify sockets, socket and dump are tend's changes, not
		// the app's. The rest of the home may be the app's own.
		for _, d := range []string{a.opt.LogDir, a.opt.RunDir, a.opt.StateDir} {
			if d != "" {
				w.homes = append(w.homes, d)
			}
		}
		if a.opt.LogDir != "" {
			w.own = append(w.own, tend.Home(filepath.Dir(a.opt.LogDir)).Files()...)
		}
		go a.watchLoop(w, stop)
	}
}

func (a *App) stopSchedules() {
	a.schedMu.Lock()
	defer a.schedMu.Unlock()
	if a.schedStop != nil {
		close(a.schedStop)
		a.schedStop = nil
	}
}

// cronLoop replaces the running instances at each time of expr until the
// app is closed or its schedules change.
func (a *App) cronLoop(expr string, stop chan struct{}) {
	sch, err := tend.ParseCron(expr)
	if err != nil {
		return
	}
	for {
		next := sch.Next(time.Now())
		if next.IsZero() {
			return
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
			a.recycle(context.Background(), nil, "cron restart", "cron", fmt.Sprintf("cron_restart %q", expr))
		case <-a.quit:
			t.Stop()
			return
		case <-stop:
			t.Stop()
			return
		}
	}
}
