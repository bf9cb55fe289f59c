package podhealth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tendhq/tend"
)

// LiveBound is how long /livez waits for the apps' goroutines to answer.
// An idle one answers in microseconds and a busy one within a batch of
// operations; Kubernetes gives a probe 1 s by default (timeoutSeconds),
// so the answer must come well within that.
const LiveBound = 500 * time.Millisecond

// App is what the probes judge of one app.
type App struct {
	Name string
	// Desired is how many instances the app should run (its instances
	// setting, as scale leaves it).
	Desired   int
	Instances []tend.Instance
}

// Source is what the probes read: the daemon.
type Source interface {
	// Apps returns every app and its instances as of now.
	Apps() []App
	// Answer returns nil once the goroutine that owns each app has run
	// an empty operation, or an error naming one that did not before ctx
	// ended.
	Answer(ctx context.Context) error
}

// Options say how strict the probes are. The zero value is the default.
type Options struct {
	// ReadyMin is the percentage of each app's instances that must be
	// ready for /readyz, 1 to 100; 0 means 100 (every instance).
	ReadyMin int
	// ErroredFailsLivez makes /livez fail while an instance is errored,
	// so that the kubelet restarts the pod.
	ErroredFailsLivez bool
}

// Server judges a Source for the probes. Its zero value is not usable;
// call New.
type Server struct {
	src      Source
	opt      Options
	draining atomic.Bool
	started  atomic.Bool
}

// New returns a Server that judges src.
func New(src Source, opt Options) *Server {
	if opt.ReadyMin <= 0 || opt.ReadyMin > 100 {
		opt.ReadyMin = 100
	}
	return &Server{src: src, opt: opt}
}

// Drain makes /readyz fail from now on: a stop has begun.
func (s *Server) Drain() { s.draining.Store(true) }

// AppReadiness is one app in /readyz's answer.
type AppReadiness struct {
	Name    string `json:"name"`
	Desired int    `json:"instances"`
	Ready   int    `json:"ready"`
	Needed  int    `json:"needed"`
	Waiting int    `json:"waiting,omitempty"` // crashed, restarting after a backoff
	Errored int    `json:"errored,omitempty"`
	// Unhealthy: online, but being replaced for failing its liveness
	// probe, or the replacement of such a one, not yet probed healthy.
	Unhealthy int `json:"unhealthy,omitempty"`
}

// Answer is the body of every probe's response.
type Answer struct {
	OK     bool           `json:"ok"`
	Reason string         `json:"reason,omitempty"`
	Apps   []AppReadiness `json:"apps,omitempty"`
}

// Live judges /livez.
func (s *Server) Live(ctx context.Context) Answer {
	ctx, cancel := context.WithTimeout(ctx, LiveBound)
	defer cancel()
	if err := s.src.Answer(ctx); err != nil {
		return Answer{Reason: err.Error()}
	}
	if s.opt.ErroredFailsLivez {
		for _, a := range s.src.Apps() {
			for _, in := range a.Instances {
				if in.Status == tend.StatusErrored {
					return Answer{Reason: fmt.Sprintf("%s[%d] is errored (tend gave up restarting it)", a.Name, in.Instance)}
				}
			}
		}
	}
	return Answer{OK: true}
}

// Ready judges /readyz; the first success also makes /startupz succeed.
func (s *Server) Ready() Answer {
	apps := s.src.Apps()
	ans := Answer{OK: true, Apps: make([]AppReadiness, 0, len(apps))}
	var short []string
	for _, a := range apps {
		r := s.judge(a)
		ans.Apps = append(ans.Apps, r)
		if r.Ready < r.Needed {
			why := fmt.Sprintf("%s: %d of %d instances ready, %d needed", r.Name, r.Ready, r.Desired, r.Needed)
			var not []string
			for _, c := range []struct {
				n    int
				what string
			}{{r.Waiting, "crash-looping"}, {r.Errored, "errored"}, {r.Unhealthy, "failing liveness"}} {
				if c.n > 0 {
					not = append(not, fmt.Sprintf("%d %s", c.n, c.what))
				}
			}
			if len(not) > 0 {
				why += " (" + strings.Join(not, ", ") + ")"
			}
			short = append(short, why)
		}
	}
	switch {
	case s.draining.Load():
		ans.OK, ans.Reason = false, "stopping: tend received a stop signal"
	case len(apps) == 0:
		ans.OK, ans.Reason = false, "no app runs"
	case len(short) > 0:
		ans.OK, ans.Reason = false, strings.Join(short, "; ")
	default:
		s.started.Store(true)
	}
	return ans
}

// judge counts the ready instances of a against what it needs.
func (s *Server) judge(a App) AppReadiness {
	r := AppReadiness{Name: a.Name, Desired: a.Desired}
	// Rounded up: 50 % of 3 instances needs 2.
	r.Needed = (a.Desired*s.opt.ReadyMin + 99) / 100
	for _, in := range a.Instances {
		switch {
		case in.Status == tend.StatusOnline && unwell(in):
			r.Unhealthy++
		case in.Status == tend.StatusOnline && in.Ready:
			r.Ready++
		case in.Status == tend.StatusWaiting:
			r.Waiting++
		case in.Status == tend.StatusErrored:
			r.Errored++
		}
	}
	return r
}

// unwell reports whether in's liveness probe says it should not take
// requests: judged unhealthy (being replaced), or the replacement of one
// that was and has passed no probe of its own yet. Failed probes fewer
// than the app's liveness_failure_threshold do not count: that threshold
// is what the user chose to tell a blip from a failure, as a kubelet's
// failureThreshold is, and one slow answer must not take a pod with one
// replica out of its Service.
func unwell(in tend.Instance) bool {
	switch in.Health {
	case tend.HealthUnhealthy:
		return true
	case tend.HealthOK:
		return false
	}
	return in.LastExit != nil && in.LastExit.Cause == "unhealthy"
}

// Started judges /startupz: whether /readyz has succeeded once. Asking
// judges readiness again, so that a probe of /startupz alone sees it.
func (s *Server) Started() Answer {
	if !s.started.Load() {
		if r := s.Ready(); !r.OK && !s.started.Load() {
			return Answer{Reason: "not ready yet: " + r.Reason}
		}
	}
	return Answer{OK: true}
}

// Handler serves GET /livez, /readyz and /startupz; every other path is
// 404.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { reply(w, s.Live(r.Context())) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { reply(w, s.Ready()) })
	mux.HandleFunc("GET /startupz", func(w http.ResponseWriter, r *http.Request) { reply(w, s.Started()) })
	return mux
}

func reply(w http.ResponseWriter, a Answer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !a.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(a) // a prober that went away needs no answer
}
