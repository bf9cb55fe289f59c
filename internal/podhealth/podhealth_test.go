package podhealth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tendhq/tend"
)

// source is a Source of fixed apps.
type source struct {
	apps []App
	err  error
}

func (s source) Apps() []App                      { return s.apps }
func (s source) Answer(ctx context.Context) error { return s.err }

func app(name string, desired int, statuses ...tend.Status) App {
	a := App{Name: name, Desired: desired}
	for i, st := range statuses {
		a.Instances = append(a.Instances, tend.Instance{Name: name, Instance: i, Status: st, Ready: st == tend.StatusOnline})
	}
	return a
}

// replaced marks a's instance i as the replacement of a process that
// failed its liveness probe.
func replaced(a App, i int) App {
	a.Instances[i].LastExit = &tend.Exit{Cause: "unhealthy"}
	return a
}

// health sets the Health of a's instances, in order.
func health(a App, states ...string) App {
	for i, h := range states {
		a.Instances[i].Health = h
	}
	return a
}

const (
	on   = tend.StatusOnline
	wait = tend.StatusWaiting
	errd = tend.StatusErrored
	lnch = tend.StatusLaunching
)

func TestReady(t *testing.T) {
	for _, c := range []struct {
		name     string
		readyMin int
		apps     []App
		ok       bool
		why      string
	}{
		{"all ready", 0, []App{app("a", 2, on, on), app("b", 1, on)}, true, ""},
		{"one launching", 0, []App{app("a", 2, on, lnch)}, false, "a: 1 of 2 instances ready, 2 needed"},
		{"crash-looping", 0, []App{app("a", 2, on, wait)}, false, "(1 crash-looping)"},
		// Fewer failed probes than the threshold: a blip, as a kubelet's
		// failureThreshold would let pass.
		{"failed a probe", 0, []App{health(app("a", 2, on, on), tend.HealthOK, tend.HealthFailing)}, true, ""},
		{"being replaced", 0, []App{health(app("a", 2, on, on), tend.HealthOK, tend.HealthUnhealthy)}, false, "(1 failing liveness)"},
		{"being replaced, half needed", 50, []App{health(app("a", 2, on, on), "", tend.HealthUnhealthy)}, true, ""},
		// A replacement of one that failed its liveness probe is ready
		// once a probe of its own passed.
		{"replacement not probed yet", 0, []App{replaced(app("a", 2, on, on), 1)}, false, "(1 failing liveness)"},
		{"replacement failed a probe", 0, []App{replaced(health(app("a", 2, on, on), tend.HealthOK, tend.HealthFailing), 1)}, false, "(1 failing liveness)"},
		{"replacement passed", 0, []App{replaced(health(app("a", 2, on, on), tend.HealthOK, tend.HealthOK), 1)}, true, ""},
		{"healthy", 0, []App{health(app("a", 2, on, on), tend.HealthOK, "")}, true, ""},
		{"half of 3 needs 2", 50, []App{app("a", 3, on, wait, errd)}, false, "a: 1 of 3 instances ready, 2 needed (1 crash-looping, 1 errored)"},
		{"half of 3 has 2", 50, []App{app("a", 3, on, on, errd)}, true, ""},
		{"scaled to 0", 0, []App{app("a", 0)}, true, ""},
		{"no app", 0, nil, false, "no app runs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(source{apps: c.apps}, Options{ReadyMin: c.readyMin})
			a := s.Ready()
			if a.OK != c.ok || !strings.Contains(a.Reason, c.why) {
				t.Errorf("ready %v %q, want %v %q", a.OK, a.Reason, c.ok, c.why)
			}
			if s.Started().OK != c.ok {
				t.Errorf("/startupz %v after /readyz %v", !c.ok, c.ok)
			}
			s.Drain()
			if a := s.Ready(); a.OK || !strings.Contains(a.Reason, "stopping") {
				t.Errorf("after Drain: %v %q", a.OK, a.Reason)
			}
			if s.Started().OK != c.ok {
				t.Error("/startupz changed after Drain")
			}
		})
	}
}

func TestLive(t *testing.T) {
	errored := []App{app("a", 2, on, errd)}
	if a := New(source{apps: errored}, Options{}).Live(context.Background()); !a.OK {
		t.Errorf("errored without ErroredFailsLivez: %q", a.Reason)
	}
	if a := New(source{apps: errored}, Options{ErroredFailsLivez: true}).Live(context.Background()); a.OK || a.Reason != "a[1] is errored (tend gave up restarting it)" {
		t.Errorf("errored with ErroredFailsLivez: %v %q", a.OK, a.Reason)
	}
	stuck := source{apps: errored, err: errors.New("app a: its supervisor takes no operation")}
	if a := New(stuck, Options{}).Live(context.Background()); a.OK || !strings.Contains(a.Reason, "takes no operation") {
		t.Errorf("a stuck supervisor: %v %q", a.OK, a.Reason)
	}
}
