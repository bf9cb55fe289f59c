package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/logfile"
	"github.com/tendhq/tend/internal/supervisor"
)

// maxBody bounds request bodies: a start request with its environment is
// a few KB, so 8 MiB only guards against a runaway client.
const maxBody = 8 << 20

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		reply(w, tend.PingInfo{Version: tend.Version, PID: os.Getpid(), Home: d.home, StartedAt: d.started, KeeperPID: d.keeperPID()}, nil)
	})
	mux.HandleFunc("GET /v1/instances", d.listInstances)
	mux.HandleFunc("GET /v1/describe", d.describe)
	mux.HandleFunc("GET /v1/logs", d.logs)
	mux.HandleFunc("GET /v1/events", d.events)
	mux.HandleFunc("GET /v1/reloads", d.listReloads)
	// The work of what acts goes on if the client goes away: a half-done
	// stop or reload would leave apps in a state nobody asked for.
	mux.HandleFunc("POST /v1/update", handle(reply, func(_ context.Context, req tend.UpdateRequest) (tend.UpdateResult, error) {
		return d.update(req)
	}))
	mux.HandleFunc("POST /v1/start", handle(reply, func(ctx context.Context, req tend.StartRequest) (tend.ActionResult, error) {
		notes, err := d.start(ctx, req, false)
		return tend.ActionResult{Instances: d.instances(), Notes: notes}, err
	}))
	for _, action := range []string{"stop", "restart", "delete", "flush", "reset"} {
		mux.HandleFunc("POST /v1/"+action, handle(reply, func(ctx context.Context, req tend.ActionRequest) (tend.ActionResult, error) {
			return d.act(context.WithoutCancel(ctx), action, req.Targets)
		}))
	}
	mux.HandleFunc("POST /v1/send", handle(reply, func(_ context.Context, req tend.SendRequest) (tend.ActionResult, error) {
		if !json.Valid(req.Message) {
			return tend.ActionResult{}, tend.Errorf(tend.EINVALID, "the message is not valid JSON")
		}
		return d.reach(req.Targets, func(a *supervisor.App, ids []int) ([]int, error) { return a.Send(ids, req.Message) })
	}))
	mux.HandleFunc("POST /v1/signal", handle(reply, func(_ context.Context, req tend.SignalRequest) (tend.ActionResult, error) {
		name, err := tend.ParseSignal(req.Signal)
		if err != nil {
			return tend.ActionResult{}, err
		}
		sig := unix.SignalNum(name)
		return d.reach(req.Targets, func(a *supervisor.App, ids []int) ([]int, error) { return a.Signal(ids, sig) })
	}))
	mux.HandleFunc("POST /v1/reload", handle(replyWithResult, func(ctx context.Context, req tend.ReloadRequest) (tend.ReloadResult, error) {
		return d.reload(context.WithoutCancel(ctx), req)
	}))
	mux.HandleFunc("POST /v1/scale", handle(replyWithResult, func(ctx context.Context, req tend.ScaleRequest) (tend.ReloadResult, error) {
		return d.scale(context.WithoutCancel(ctx), req)
	}))
	mux.HandleFunc("POST /v1/save", handle(reply, func(_ context.Context, req tend.SaveRequest) (tend.SaveResult, error) {
		return d.save(req.Force)
	}))
	mux.HandleFunc("POST /v1/resurrect", func(w http.ResponseWriter, r *http.Request) {
		res, err := d.resurrect(context.WithoutCancel(r.Context()))
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/web", handle(reply, func(_ context.Context, req tend.WebRequest) (tend.WebResult, error) {
		return d.webRequest(req)
	}))
	mux.HandleFunc("POST /v1/kill", d.kill)
	return versioned(mux)
}

// handle is the shape of every request that acts: decode its JSON body
// into a Req, run f, and answer with send (reply, or replyWithResult for
// the results that say how far they got before an error).
func handle[Req, Res any](send func(http.ResponseWriter, Res, error), f func(context.Context, Req) (Res, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !decode(w, r, &req) {
			return
		}
		res, err := f(r.Context(), req)
		send(w, res, err)
	}
}

// listInstances answers `tend ls`: every instance, or those of targets.
func (d *Daemon) listInstances(w http.ResponseWriter, r *http.Request) {
	targets := r.URL.Query()["target"]
	if len(targets) == 0 {
		reply(w, d.instances(), nil)
		return
	}
	sels, err := d.resolve(targets)
	out := []tend.Instance{}
	for _, s := range sels {
		for _, in := range d.withStats(s.app.Instances()) {
			if s.ids == nil || slices.Contains(s.ids, in.ID) {
				out = append(out, in)
			}
		}
	}
	reply(w, out, err)
}

// describe answers `tend describe`.
func (d *Daemon) describe(w http.ResponseWriter, r *http.Request) {
	sels, err := d.resolve([]string{r.URL.Query().Get("target")})
	var apps []tend.App
	chosen := tend.MemoryShare(tend.MemoryLimit(), instancesOf(d.snapshotApps()))
	for _, s := range sels {
		a := s.app.Describe(r.URL.Query().Get("env") == "1")
		if a.Spec.MaxMemoryRestart == 0 {
			a.MaxMemoryRestart = chosen
		}
		a.Instances = d.withStats(a.Instances)
		if s.ids != nil {
			a.Instances = slices.DeleteFunc(a.Instances, func(in tend.Instance) bool { return !slices.Contains(s.ids, in.ID) })
		}
		apps = append(apps, a)
	}
	reply(w, apps, err)
}

// kill answers `tend kill`: every app stops, then the daemon ends.
func (d *Daemon) kill(w http.ResponseWriter, r *http.Request) {
	d.log.Info("kill requested: stopping every app")
	d.mu.Lock()
	apps := d.allApps()
	d.mu.Unlock()
	ids := []int{}
	for _, a := range apps {
		for _, in := range a.Instances() {
			ids = append(ids, in.ID)
		}
	}
	d.shutdown()
	reply(w, tend.ActionResult{Affected: ids, Instances: []tend.Instance{}}, nil)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// Serve ends (and shuts the server down) only after this answer is on
	// its way: the handler returns first.
	go d.end()
}

func versioned(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(tend.VersionHeader, tend.Version)
		h.ServeHTTP(w, r)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		reply[any](w, nil, tend.Errorf(tend.EINVALID, "bad request body: %v", err))
		return false
	}
	return true
}

// reply writes v, or the error with the status its code maps to.
func reply[T any](w http.ResponseWriter, v T, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		e, ok := errors.AsType[*tend.Error](err)
		if !ok {
			e = &tend.Error{Code: tend.ErrorCode(err), Message: err.Error()}
		}
		w.WriteHeader(tend.HTTPStatus(e.Code))
		json.NewEncoder(w).Encode(e)
		return
	}
	json.NewEncoder(w).Encode(v)
}

// replyWithResult answers a reload or scale: its reports travel even when
// it failed, so the CLI can say what happened to each instance.
func replyWithResult(w http.ResponseWriter, res tend.ReloadResult, err error) {
	if err == nil {
		reply(w, res, nil)
		return
	}
	e, ok := errors.AsType[*tend.Error](err)
	if !ok {
		e = &tend.Error{Code: tend.ErrorCode(err), Message: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(tend.HTTPStatus(e.Code))
	json.NewEncoder(w).Encode(struct {
		*tend.Error
		tend.ReloadResult
	}{e, res})
}

// reach calls f for the apps and instances targets select and gathers the
// ids it reached (send, signal).
func (d *Daemon) reach(targets []string, f func(a *supervisor.App, ids []int) ([]int, error)) (tend.ActionResult, error) {
	sels, err := d.resolve(targets)
	if err != nil {
		return tend.ActionResult{}, err
	}
	res := tend.ActionResult{Affected: []int{}}
	var errs []error
	for _, s := range sels {
		ids, err := f(s.app, s.ids)
		res.Affected = append(res.Affected, ids...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	res.Instances = d.instances()
	if len(res.Affected) == 0 && len(errs) == 0 {
		errs = append(errs, tend.Errorf(tend.EFAILED, "no running instance among %s", strings.Join(targets, ", ")))
	}
	return res, errors.Join(errs...)
}

func toLogLine(l logfile.Line, id int) tend.LogLine {
	return tend.LogLine{Time: l.Time, App: l.App, Instance: l.Instance, ID: id,
		Stream:  cmp.Or(map[logfile.Stream]string{logfile.Stdout: "out", logfile.Stderr: "err"}[l.Stream], "out"),
		Message: l.Text}
}
