package nodepreload

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

var public struct {
	once sync.Once
	p    Paths
	err  error
}

// Public returns the preloads written where any user can read them, for
// Node apps that run as another user, who cannot read tend's private home:
// a directory made fresh (so nobody can have planted anything in it) in
// the system's temporary directory, readable by all and writable by tend's
// user only. It is written once per daemon.
func Public() (Paths, error) {
	public.once.Do(func() {
		public.p, public.err = writePublic()
	})
	return public.p, public.err
}

func writePublic() (Paths, error) {
	dir, err := os.MkdirTemp("", "tend-node-")
	if err != nil {
		return Paths{}, fmt.Errorf("a directory for the Node preloads: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return Paths{}, err
	}
	put := func(name string, src []byte) (string, error) {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return "", err
		}
		_, err = f.Write(src)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(p, 0o644) // whatever the umask
		}
		return p, err
	}
	var p Paths
	if p.Listen, err = put("tend-listen-preload.cjs", listenJS); err != nil {
		return Paths{}, fmt.Errorf("writing the Node preloads: %w", err)
	}
	if p.Drain, err = put("tend-drain-preload.cjs", drainJS); err != nil {
		return Paths{}, fmt.Errorf("writing the Node preloads: %w", err)
	}
	return p, nil
}
