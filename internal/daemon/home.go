// Package daemon is tend's daemon: it owns every app, serves the control
// API on a private unix socket and supervises through package supervisor.
package daemon

import (
	"errors"
	"path/filepath"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/private"
)

// maxSocketPath is the usable length of sun_path on Linux (108 bytes with
// the terminating NUL).
const maxSocketPath = 107

// EnsureHome makes home and its directories private to the user (0700),
// or checks that they are: a home another user owns or can write in is
// refused, as ssh refuses such a ~/.ssh (tend would write through their
// symlinks, read their dump, talk to their socket).
func EnsureHome(home string) error {
	if len(tend.Home(home).Socket()) > maxSocketPath {
		return tend.Errorf(tend.EINVALID, "TEND_HOME %s is too long for a unix socket path (%d bytes max): choose a shorter one", home, maxSocketPath-len("/tend.sock"))
	}
	for _, dir := range append([]string{home}, tend.Home(home).Dirs()...) {
		if err := private.Dir(dir); err != nil {
			if errors.Is(err, private.ErrNotPrivate) {
				return tend.Errorf(tend.EINVALID, "TEND_HOME: %v", err)
			}
			return err
		}
	}
	return nil
}

// realHome is home as it resolves, for the log files in it: tend opens
// logs through no symlink (private.OpenFile), and a home may lie under
// one (/home linked to /data/home). EnsureHome has checked the
// directories home resolves through, so following them here is safe.
func realHome(home string) tend.Home {
	if real, err := filepath.EvalSymlinks(home); err == nil {
		return tend.Home(real)
	}
	return tend.Home(home)
}
