package daemon

import (
	"cmp"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/logfile"
	"github.com/tendhq/tend/internal/logger"
	"github.com/tendhq/tend/internal/private"
)

// tend.log is rotated like an app's log (the apps' rotation settings in
// config.yaml apply), and what apps can make the daemon say over and over
// is rate-limited, so that no app can fill the disk through tend.

// rotateOwnLog makes the daemon's log a rotating file, when its stderr is
// the home's tend.log (not under tend run, whose stderr is the
// container's). It returns a function that points stderr at the current
// file again after a rotation (a panic's trace goes there).
func (d *Daemon) rotateOwnLog() (follow func()) {
	path := realHome(d.home).Log()
	if !sameFile(2, path) {
		return func() {}
	}
	sink, err := logfile.Open(logfile.Options{
		App: "tend", OutPath: path, ErrPath: path,
		MaxSize:  cmp.Or(d.settings.logMaxSize, tend.DefaultLogMaxSize),
		Keep:     cmp.Or(d.settings.Logs.Retain, tend.DefaultLogRetain),
		Compress: d.settings.Logs.Compress,
		RotateAt: d.settings.logRotate,
	})
	if err != nil {
		return func() {}
	}
	w, _ := sink.Writer(logfile.Stdout)
	log.SetOutput(&lockedWriter{w: w})
	return func() {
		if sameFile(2, path) {
			return
		}
		if f, err := private.Open(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE); err == nil {
			unix.Dup2(int(f.Fd()), 2)
			f.Close()
		}
	}
}

// sameFile reports whether descriptor fd is the file at path.
func sameFile(fd int, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(fd, &a) == nil && unix.Stat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// lockedWriter serializes the log package's writes for a StreamWriter,
// which takes one writer at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  *logfile.StreamWriter
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// limitWindow and limitBurst bound what the daemon logs of one kind:
// burst lines per window, then a count of what was left out.
const (
	limitWindow = time.Minute
	limitBurst  = 10
)

// limiter rate-limits lines by key (an app and a format).
type limiter struct {
	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	since  time.Time
	n      int // lines in this window
	missed int // lines left out in this window
}

// allow reports whether a line of key may be logged now, and how many of
// its kind were left out before it (to say so with it).
func (l *limiter) allow(key string, now time.Time) (ok bool, missed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil {
		l.kinds = map[string]*kind{}
	}
	k := l.kinds[key]
	if k == nil || now.Sub(k.since) >= limitWindow {
		if k != nil {
			missed = k.missed
		}
		if len(l.kinds) > 10000 {
			l.kinds = map[string]*kind{} // keys come from apps: bound them too
		}
		k = &kind{since: now}
		l.kinds[key] = k
	}
	if k.n >= limitBurst {
		k.missed++
		return false, 0
	}
	k.n++
	return true, missed
}

// appLogf is the Logf of app name: its lines go to the daemon's log,
// limitBurst of a kind per minute.
func (d *Daemon) appLogf(name string) logger.Logf {
	return func(format string, args ...any) {
		ok, missed := d.limit.allow(name+"\x00"+format, time.Now())
		if !ok {
			return
		}
		line := fmt.Sprintf(format, args...)
		if missed > 0 {
			line += fmt.Sprintf(" (and %d more like it in the last minute, left out)", missed)
		}
		d.log.Info(line)
	}
}
