package nodecluster

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// sockPath is where a unix socket of a listener lies, kept so that it can
// be removed safely when the listener closes: the primary may be root and
// the socket's directory the app user's, who may by then have swapped the
// socket, or the directory, for a symlink to a file of root's.
type sockPath struct {
	dir      int // the directory, opened when the socket was bound
	name     string
	dev, ino uint64 // the socket file bound there
}

// newSockPath records path, a socket just bound, or returns nil for one
// tend will not remove: an abstract socket (Go names them "@...") has no
// file, and a path whose directory is a symlink is left in place at close
// rather than removed through it.
func newSockPath(path string) *sockPath {
	if path == "" || strings.HasPrefix(path, "@") {
		return nil
	}
	name := filepath.Base(path)
	dir, err := unix.Open(filepath.Dir(path), dirOnly|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		unix.Close(dir)
		return nil
	}
	return &sockPath{dir: dir, name: name, dev: uint64(st.Dev), ino: st.Ino}
}

// remove unlinks the socket file, as libuv does when a server on a path
// closes, but only if the directory it was bound in still holds the same
// socket file: never through a symlink, never another file put there
// since. A nil sockPath removes nothing.
func (sp *sockPath) remove() {
	if sp == nil || sp.dir < 0 {
		return
	}
	var st unix.Stat_t
	if err := unix.Fstatat(sp.dir, sp.name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && uint64(st.Dev) == sp.dev && st.Ino == sp.ino {
		unix.Unlinkat(sp.dir, sp.name, 0)
	}
	unix.Close(sp.dir)
	sp.dir = -1
}
