package supervisor

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/tendhq/tend"
)

// defaultIgnoreWatch are never watched: dependencies, VCS and dot files,
// Python's bytecode, logs, and the temporary files editors write beside
// the file they save (vim's .swp and its 4913 probe, emacs' #file#,
// JetBrains' ___jb_tmp___, backups ending in ~): a save is one change, of
// the file saved, not of what the editor did around it.
var defaultIgnoreWatch = []string{"node_modules", ".*", "*~", "__pycache__", "*.pyc", "*.log",
	"*.swp", "*.swx", "*.swo", "4913", "#*#", "*___jb_tmp___", "*___jb_old___", "*.crswap"}

// defaultWatchDelay gathers a burst of changes (a save of several files, a
// build) into one replacement.
const defaultWatchDelay = 500 * time.Millisecond

// watcher follows an app's watch paths with inotify.
type watcher struct {
	fs     *fsnotify.Watcher
	root   string          // the app's cwd, what paths are shown relative to
	ignore []string        // glob patterns, matched against each path element
	files  []string        // watched files (not directories), absolute
	trees  map[string]bool // watched directories, with all below them
	roots  []string        // the watched paths, absolute
	own    []string        // files that are not the app's code: its logs (without extension), tend's files
	homes  []string        // tend's own directories: never watched
}

// logPrefixes are the app's log files without their extension, for the
// watcher to ignore.
func (a *App) logPrefixes() []string {
	spec := a.Spec() // not a.spec: a reload calls this outside the actor
	var out []string
	for _, kind := range []struct{ given, name string }{{spec.OutFile, "out"}, {spec.ErrorFile, "error"}} {
		p := filepath.Join(a.opt.LogDir, spec.Name+"-"+kind.name)
		if kind.given != "" {
			p = kind.given
			if !filepath.IsAbs(p) {
				p = filepath.Join(spec.Cwd, p)
			}
			p = strings.TrimSuffix(p, filepath.Ext(p))
		}
		out = append(out, p)
	}
	return out
}

// newWatcher watches spec.Watch: directories with everything under them
// that is not ignored (inotify watches one directory at a time), files
// through their directory. A path that does not exist is an error.
func newWatcher(spec *tend.AppSpec) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &watcher{fs: fw, root: spec.Cwd, ignore: append(slices.Clone(defaultIgnoreWatch), spec.IgnoreWatch...), trees: map[string]bool{}}
	for _, p := range spec.Watch {
		abs := p
		if !filepath.IsAbs(p) {
			abs = filepath.Join(spec.Cwd, p)
		}
		w.roots = append(w.roots, abs)
		fi, err := os.Stat(abs)
		if err != nil {
			fw.Close()
			return nil, fmt.Errorf("watch: %s: %w", p, err)
		}
		if !fi.IsDir() {
			w.files = append(w.files, abs)
			abs = filepath.Dir(abs)
			err = fw.Add(abs)
		} else {
			err = w.addTree(abs)
		}
		if err != nil {
			fw.Close()
			return nil, fmt.Errorf("watch: %s: %w (if it names too many directories, raise fs.inotify.max_user_watches or narrow watch and ignore_watch)", p, err)
		}
	}
	return w, nil
}

// close stops watching; nil watches nothing.
func (w *watcher) close() {
	if w != nil {
		w.fs.Close()
	}
}

// addTree watches dir and every directory under it that is not ignored.
func (w *watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone or unreadable: nothing to watch there
		}
		if !d.IsDir() {
			return nil
		}
		if path != dir && w.ignored(path) {
			return filepath.SkipDir
		}
		w.trees[path] = true
		return w.fs.Add(path)
	})
}

// ignored reports whether path, or a directory it is in below the watched
// path it belongs to, matches an ignore pattern.
func (w *watcher) ignored(path string) bool {
	// The app's own logs, rotated ones included (out.txt, out-1.txt,
	// out.txt.1.gz, out__2026-03-01_00-00-00.txt): writing them must not
	// restart it.
	for _, p := range w.own {
		if rest, ok := strings.CutPrefix(path, p); ok && (rest == "" || rest[0] == '-' || rest[0] == '.' || strings.HasPrefix(rest, "__")) {
			return true
		}
	}
	for _, h := range w.homes {
		if path == h || strings.HasPrefix(path, h+string(filepath.Separator)) {
			return true
		}
	}
	rel := filepath.Base(path)
	for _, r := range w.roots {
		if x, err := filepath.Rel(r, path); err == nil && !strings.HasPrefix(x, "..") {
			rel = x
			break
		}
	}
	for _, el := range strings.Split(filepath.ToSlash(rel), "/") {
		for _, pat := range w.ignore {
			if ok, _ := filepath.Match(pat, el); ok && el != "." {
				return true
			}
		}
	}
	return false
}

// relevant reports whether an event is a change worth a reload: a write,
// creation, removal or rename of a watched file, or of anything not
// ignored in a watched directory.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	// Chmod too: touch changes only the times, and means "reload" to
	// users of PM2's watch.
	if !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Remove) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Chmod) {
		return false
	}
	if w.ignored(ev.Name) {
		return false
	}
	return slices.Contains(w.files, ev.Name) || w.trees[filepath.Dir(ev.Name)]
}

// watchLoop replaces the app's instances, as a reload does, once changes
// have settled for watch_delay, until the app is closed.
func (a *App) watchLoop(w *watcher, stop chan struct{}) {
	defer w.close()
	delay := a.Spec().WatchDelay.D()
	if delay <= 0 {
		delay = defaultWatchDelay
	}
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	var changed string // the last path of the burst, for the log
	for {
		select {
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && w.trees[filepath.Dir(ev.Name)] && !w.ignored(ev.Name) {
					if err := w.addTree(ev.Name); err != nil {
						a.opt.Logf("%s: watch: %s: %v", a.Name(), ev.Name, err)
					}
				}
			}
			if !w.relevant(ev) {
				continue
			}
			// The last change of the burst names it in the log: an editor
			// that writes a temporary file first renames it onto the file
			// it saves last.
			changed, _ = filepath.Rel(w.root, ev.Name)
			settle.Reset(delay)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			a.opt.Logf("%s: watch: %v", a.Name(), err)
		case <-settle.C:
			if busy, _ := a.recycle(context.Background(), nil, "watch restart", "watch", changed+" changed"); busy {
				// A reload or scale is under way: try again after it, so
				// the change is not lost.
				settle.Reset(delay)
				continue
			}
			changed = ""
		case <-a.quit:
			settle.Stop()
			return
		case <-stop:
			settle.Stop()
			return
		}
	}
}
