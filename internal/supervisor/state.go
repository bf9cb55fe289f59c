package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/nodecluster"
	"github.com/tendhq/tend/internal/private"
)

// StateVersion is the version of State. A daemon takes back states of
// its own version and older ones it knows. 2: the daemon's choice of
// mode and scheduling is in Res; in 1 it overwrote the spec's, which a
// daemon reading 1 only would take for the user's.
const StateVersion = 2

// State is what an app writes down after every change, so that a daemon
// that takes over from this one (after a crash, a kill or an upgrade)
// finds the app as it was: its settings, its counters, and which process
// fills which slot. The processes themselves, and the descriptors they
// depend on, are kept by tend's keeper meanwhile.
type State struct {
	Version    int                         `json:"version"`
	Spec       tend.AppSpec                `json:"spec"`
	Res        Resolved                    `json:"resolved"`
	Created    time.Time                   `json:"created"`
	Exits      []tend.Exit                 `json:"exits,omitempty"`
	LastReload *tend.ReloadReport          `json:"last_reload,omitempty"`
	Reloads    map[string]int              `json:"reloads,omitempty"`
	NextWID    int                         `json:"next_wid"`
	Closing    bool                        `json:"closing,omitempty"` // a delete was under way
	Slots      []SlotState                 `json:"slots"`
	Cluster    []nodecluster.ListenerState `json:"cluster,omitempty"`
}

// SlotState is one instance slot in a State.
type SlotState struct {
	ID           int           `json:"id"`
	Index        int           `json:"index"`
	Status       tend.Status   `json:"status"`
	Restarts     int           `json:"restarts"`
	Unstable     int           `json:"unstable,omitempty"`
	Backoff      tend.Duration `json:"backoff,omitempty"`
	Problem      string        `json:"problem,omitempty"`
	LastExit     *tend.Exit    `json:"last_exit,omitempty"`
	RestartAt    time.Time     `json:"restart_at,omitzero"`
	HandedBefore uint64        `json:"handed_before,omitempty"`
	Runs         []RunState    `json:"runs,omitempty"`
}

// Roles of a process in its slot.
const (
	roleCur  = "cur"  // serving, or starting
	roleNext = "next" // a reload's replacement, not ready yet
	roleOld  = "old"  // being retired by a reload
)

// RunState is one process of a slot.
type RunState struct {
	Role       string    `json:"role"`
	PID        int       `json:"pid"`
	Start      uint64    `json:"start"` // start time, clock ticks after boot
	WID        int       `json:"wid"`
	Started    time.Time `json:"started"`
	Ready      bool      `json:"ready,omitempty"`
	ReadyBy    string    `json:"ready_by,omitempty"`
	ReadyAt    time.Time `json:"ready_at,omitzero"`
	ReadyURL   string    `json:"ready_url,omitempty"`
	ListenPort int       `json:"listen_port,omitempty"`
	Probe      string    `json:"probe,omitempty"`
	Stopping   bool      `json:"stopping,omitempty"`
	StopCause  string    `json:"stop_cause,omitempty"`
	Left       bool      `json:"left,omitempty"` // disconnected by itself
	StopBegan  time.Time `json:"stop_began,omitzero"`
	Marker     string    `json:"marker,omitempty"`
}

// label names a process for tend's keeper: which app, slot and run it is,
// so that a daemon that finds it running knows where it belongs.
type label struct {
	App  string `json:"app"`
	Slot int    `json:"slot"`
	WID  int    `json:"wid"`
}

func (l label) String() string {
	b, _ := json.Marshal(l)
	return string(b)
}

// AppOfLabel returns the app a keeper's label names, "" if it names none.
func AppOfLabel(s string) string {
	var l label
	if json.Unmarshal([]byte(s), &l) != nil {
		return ""
	}
	return l.App
}

// starter is what a Proc may also tell: its start time.
type starter interface{ StartTime() uint64 }

// state returns the app's State. Runs in the actor.
func (a *App) state() State {
	st := State{Version: StateVersion, Spec: a.spec, Res: a.res, Created: a.created, Exits: a.exits,
		LastReload: a.lastReload, Reloads: a.reloads, NextWID: a.nextWID, Closing: a.closing,
		Cluster: a.share.primary.Export()}
	for _, s := range a.slots {
		ss := SlotState{ID: s.id, Index: s.index, Status: s.status, Restarts: s.restarts, Unstable: s.unstable,
			Backoff: tend.Duration(s.backoff), Problem: s.problem, LastExit: s.lastExit, HandedBefore: s.handedBefore}
		if s.restartTimer != nil {
			ss.RestartAt = s.restartAt
		}
		add := func(role string, r *run) {
			if r == nil || r.exited {
				return
			}
			rs := RunState{Role: role, PID: r.proc.PID(), WID: r.wid, Started: r.started, Ready: r.ready,
				ReadyBy: r.readyBy, ReadyAt: r.readyAt, ReadyURL: r.readyURL, ListenPort: r.listenPort, Probe: r.probe,
				Stopping: r.stopping, StopCause: r.stopCause, StopBegan: r.stopBegan, Marker: r.marker, Left: r.left}
			if p, ok := r.proc.(starter); ok {
				rs.Start = p.StartTime()
			}
			ss.Runs = append(ss.Runs, rs)
		}
		add(roleCur, s.cur)
		add(roleNext, s.next)
		for _, r := range s.old {
			add(roleOld, r)
		}
		st.Slots = append(st.Slots, ss)
	}
	return st
}

// persist writes the app's State if it changed, then releases the
// processes whose end it records. Runs in the actor.
func (a *App) persist() {
	// Once a delete is under way and written down, its stops need no
	// record: a daemon that took over would finish the delete.
	if a.opt.StateDir != "" && !a.gone && !a.closingWritten {
		b, err := json.Marshal(a.state())
		if err == nil && !bytes.Equal(b, a.written) {
			err = private.WriteFile(StatePath(a.opt.StateDir, a.spec.Name), b, private.WriteOptions{})
			if err == nil {
				a.written, a.closingWritten = b, a.closing
			}
		}
		if err != nil {
			// The ended processes stay with the keeper: a daemon that
			// took over from the last State would still need them.
			a.opt.Logf("%s: writing its state: %v", a.spec.Name, err)
			return
		}
	}
	for _, r := range a.ended {
		go r.release()
	}
	a.ended = nil
}

// release lets the keeper forget r once its output is all read: the
// keeper's copies of its pipes are what a daemon that took over would
// read the rest from.
func (r *run) release() {
	t := time.NewTimer(outputGrace)
	defer t.Stop()
	select {
	case <-r.out:
	case <-t.C:
	}
	r.proc.Release()
}

// Handover readies the app for the daemon that follows this one (an
// upgrade): its schedules stop, tend stops accepting on its behalf, the
// connections tend holds reach their instances (until ctx ends), and its
// State is written down. Its processes and sockets are left as they are:
// tend's keeper holds them for the next daemon.
func (a *App) Handover(ctx context.Context) {
	a.stopSchedules()
	a.share.quiesce(ctx)
	a.call(func() {})
}

// forget removes the app's State: it was deleted. Runs in the actor, last.
func (a *App) forget() {
	a.gone = true
	if a.opt.StateDir != "" {
		os.Remove(StatePath(a.opt.StateDir, a.spec.Name))
	}
}

// StatePath is the file of app name's State in dir.
func StatePath(dir, name string) string {
	return filepath.Join(dir, url.PathEscape(name)+".json")
}

// LoadStates reads every State in dir. A file that cannot be read or is
// not a State is reported and skipped.
func LoadStates(dir string) ([]State, []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []State
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := private.ReadFile(path)
		var st State
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err == nil && (st.Version < 1 || st.Version > StateVersion || st.Spec.Name == "") {
			err = fmt.Errorf("state version %d, this tend reads 1 to %d", st.Version, StateVersion)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		out = append(out, st)
	}
	return out, errs
}
