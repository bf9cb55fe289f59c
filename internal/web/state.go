package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tendhq/tend/internal/private"
)

// State is what a served dashboard writes down for the daemon that
// follows this one (after a crash or tend update): where it served, and
// the hashes of its tokens and sessions with their expiry, never a token
// or a session id itself. It lives in one file (tend.Home.Web), mode
// 0600, replaced whole through package private, never through a symlink.
type State struct {
	Addr   string `json:"addr"`
	Public bool   `json:"public,omitempty"`
	saved
}

// LoadState reads the state file at path; ok is false when there is
// none. A file tend cannot trust (a symlink, another user's, not JSON) is
// an error.
func LoadState(path string) (st State, ok bool, err error) {
	b, err := private.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("the dashboard's state %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Addr == "" {
		return State{}, false, fmt.Errorf("the dashboard's state %s is not what tend writes (%v): remove it, then tend web", path, err)
	}
	return st, true, nil
}

// RemoveState removes the state file at path: the dashboard is not to
// come back.
func RemoveState(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// keepState restores the sessions a previous daemon left in cfg.StatePath
// when they were for this address, and from now on writes the state
// there after every change of them.
func (s *Server) keepState(path string) {
	addr := s.ln.Addr().String()
	if st, ok, err := LoadState(path); err != nil {
		s.log.Warn("the dashboard's sessions of the previous daemon are lost", "err", err)
	} else if ok && st.Addr == addr {
		s.auth.restore(st.saved)
	}
	s.auth.persist = func(sv saved) {
		b, _ := json.Marshal(State{Addr: addr, Public: s.public, saved: sv})
		// Synced: a token spent here must not come back after a power
		// loss. A file that cannot be written goes, so that no spent
		// token in it comes back with the next daemon.
		if err := private.WriteFile(path, b, private.WriteOptions{Sync: true}); err != nil {
			RemoveState(path)
			s.log.Warn("the dashboard's sessions cannot be written down: they end with this daemon", "path", path, "err", err)
		}
	}
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	s.auth.changed()
}
