// Package daemon is tend's daemon: it owns every app, serves the control
// API on a private unix socket and supervises through package supervisor.
package daemon

import (
	"fmt"
	"os"
	"path/filepath"
)

// Home returns $TEND_HOME, or ~/.tend.
func Home() (string, error) {
	if h := os.Getenv("TEND_HOME"); h != "" {
		return filepath.Abs(h)
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home directory for ~/.tend (set TEND_HOME): %w", err)
	}
	return filepath.Join(u, ".tend"), nil
}

// Paths inside a tend home.
func SocketPath(home string) string { return filepath.Join(home, "tend.sock") }
func LockPath(home string) string   { return filepath.Join(home, "daemon.lock") }
func LogPath(home string) string    { return filepath.Join(home, "tend.log") }
func LogDir(home string) string     { return filepath.Join(home, "logs") }
func RunDir(home string) string     { return filepath.Join(home, "run") }   // NOTIFY_SOCKETs
func StateDir(home string) string   { return filepath.Join(home, "state") } // the apps' State files
func KeeperLockPath(home string) string {
	return filepath.Join(home, "keeper.lock")
}

// maxSocketPath is the usable length of sun_path on Linux (108 bytes with
// the terminating NUL).
const maxSocketPath = 107

// EnsureHome creates home private to its user (0700) or tightens it.
func EnsureHome(home string) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", home, err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return fmt.Errorf("making %s private: %w", home, err)
	}
	if len(SocketPath(home)) > maxSocketPath {
		return fmt.Errorf("TEND_HOME %s is too long for a unix socket path (%d bytes max): choose a shorter one", home, maxSocketPath-len("/tend.sock"))
	}
	return nil
}
