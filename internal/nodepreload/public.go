package nodepreload

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

var public struct {
	mu  sync.Mutex
	dir string
	p   Paths
}

// Public returns the preloads written where any user can read them, for
// Node apps that run as another user, who cannot read tend's private home:
// a directory made fresh in the system's temporary directory (so nobody
// can have planted anything in it), readable by all and writable by tend's
// user only. It is checked at every call and made again if it is no
// longer what tend made (a cleaner of /tmp removed it, and someone else
// may have made one of that name since).
func Public() (Paths, error) {
	public.mu.Lock()
	defer public.mu.Unlock()
	if public.dir != "" && intact(public.dir, public.p) {
		return public.p, nil
	}
	dir, err := os.MkdirTemp("", "tend-node-")
	if err != nil {
		return Paths{}, fmt.Errorf("a directory for the Node preloads: %w", err)
	}
	p, err := writePublic(dir)
	if err != nil {
		os.RemoveAll(dir)
		return Paths{}, fmt.Errorf("writing the Node preloads: %w", err)
	}
	if public.dir != "" {
		os.RemoveAll(public.dir) // ours or not, it is not used any more
	}
	public.dir, public.p = dir, p
	return p, nil
}

// RemovePublic removes Public's directory: at the daemon's end (a Node
// process reads its preloads as it starts).
func RemovePublic() {
	public.mu.Lock()
	defer public.mu.Unlock()
	if public.dir != "" && intact(public.dir, public.p) {
		os.RemoveAll(public.dir)
	}
	public.dir = ""
}

// writePublic writes the preloads into dir, made by MkdirTemp.
func writePublic(dir string) (Paths, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return Paths{}, err
	}
	put := func(name string, src []byte) (string, error) {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
		if err != nil {
			return "", err
		}
		_, err = f.Write(src)
		if err == nil {
			err = f.Chmod(0o644) // whatever the umask
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return p, err
	}
	var p Paths
	var err error
	if p.Listen, err = put("tend-listen-preload.cjs", listenJS); err != nil {
		return Paths{}, err
	}
	if p.Drain, err = put("tend-drain-preload.cjs", drainJS); err != nil {
		return Paths{}, err
	}
	return p, nil
}

// intact reports whether dir and the files of p are still as Public made
// them: this user's, not links, writable by nobody else.
func intact(dir string, p Paths) bool {
	for _, path := range []string{dir, p.Listen, p.Drain} {
		fi, err := os.Lstat(path)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || int(st.Uid) != os.Geteuid() || fi.Mode()&os.ModeSymlink != 0 || fi.Mode().Perm()&0o022 != 0 {
			return false
		}
	}
	return true
}
