package tend

import (
	"fmt"
	"os"
	"path/filepath"
)

// Home is a tend home: the directory of one daemon, its keeper, and its
// apps' logs and state ($TEND_HOME, ~/.tend by default). Its methods name
// everything tend keeps there.
type Home string

// HomeEnv names the variable that chooses the home.
const HomeEnv = "TEND_HOME"

// DefaultHome returns $TEND_HOME made absolute, or ~/.tend.
func DefaultHome() (Home, error) {
	if h := os.Getenv(HomeEnv); h != "" {
		abs, err := filepath.Abs(h)
		return Home(abs), err
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home directory for ~/.tend (set %s): %w", HomeEnv, err)
	}
	return Home(filepath.Join(u, ".tend")), nil
}

func (h Home) path(name string) string { return filepath.Join(string(h), name) }

// Socket is the control socket, the daemon's API.
func (h Home) Socket() string { return h.path("tend.sock") }

// Log is the daemon's and the keeper's own log.
func (h Home) Log() string { return h.path("tend.log") }

// Logs is the directory of the apps' log files.
func (h Home) Logs() string { return h.path("logs") }

// Run is the directory of the instances' notify sockets and of the Node
// preloads.
func (h Home) Run() string { return h.path("run") }

// State is the directory of the apps' State files.
func (h Home) State() string { return h.path("state") }

// Dump is the app list tend save writes and tend resurrect reads.
func (h Home) Dump() string { return h.path("dump.json") }

// Web is where a served dashboard keeps its address and its sessions'
// hashes for the next daemon.
func (h Home) Web() string { return h.path("web.json") }

// Settings is the daemon's settings file.
func (h Home) Settings() string { return h.path("config.yaml") }

// DaemonLock is held by the daemon, KeeperLock by the keeper, SpawnLock
// by a CLI that starts them.
func (h Home) DaemonLock() string { return h.path("daemon.lock") }
func (h Home) KeeperLock() string { return h.path("keeper.lock") }
func (h Home) SpawnLock() string  { return h.path("spawn.lock") }

// Dirs are the directories tend makes in a home.
func (h Home) Dirs() []string { return []string{h.Logs(), h.Run(), h.State()} }

// Files are the files tend keeps at the top of a home, and Dump's backup.
func (h Home) Files() []string {
	return []string{h.Socket(), h.Log(), h.Dump(), h.Dump() + ".bak", h.Settings(), h.DaemonLock(), h.KeeperLock(), h.SpawnLock(), h.Web(), h.Web() + ".tmp"}
}
