package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
	mux.HandleFunc("POST /v1/update", func(w http.ResponseWriter, r *http.Request) {
		var req tend.UpdateRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := d.update(req)
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/instances", func(w http.ResponseWriter, r *http.Request) {
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
	})
	mux.HandleFunc("POST /v1/start", func(w http.ResponseWriter, r *http.Request) {
		var req tend.StartRequest
		if !decode(w, r, &req) {
			return
		}
		notes, err := d.start(r.Context(), req)
		reply(w, tend.ActionResult{Instances: d.instances(), Notes: notes}, err)
	})
	for _, action := range []string{"stop", "restart", "delete", "flush"} {
		mux.HandleFunc("POST /v1/"+action, func(w http.ResponseWriter, r *http.Request) {
			var req tend.ActionRequest
			if !decode(w, r, &req) {
				return
			}
			// The work goes on if the client goes away: a half-done stop
			// would leave apps in a state nobody asked for.
			res, err := d.act(context.WithoutCancel(r.Context()), action, req.Targets)
			reply(w, res, err)
		})
	}
	mux.HandleFunc("GET /v1/describe", func(w http.ResponseWriter, r *http.Request) {
		sels, err := d.resolve([]string{r.URL.Query().Get("target")})
		var apps []tend.App
		for _, s := range sels {
			a := s.app.Describe(r.URL.Query().Get("env") == "1")
			a.Instances = d.withStats(a.Instances)
			if s.ids != nil {
				a.Instances = slices.DeleteFunc(a.Instances, func(in tend.Instance) bool { return !slices.Contains(s.ids, in.ID) })
			}
			apps = append(apps, a)
		}
		reply(w, apps, err)
	})
	mux.HandleFunc("POST /v1/send", func(w http.ResponseWriter, r *http.Request) {
		var req tend.SendRequest
		if !decode(w, r, &req) {
			return
		}
		if !json.Valid(req.Message) {
			reply(w, nil, tend.Errorf(tend.EINVALID, "the message is not valid JSON"))
			return
		}
		res, err := d.reach(req.Targets, func(a *supervisor.App, ids []int) ([]int, error) { return a.Send(ids, req.Message) })
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/signal", func(w http.ResponseWriter, r *http.Request) {
		var req tend.SignalRequest
		if !decode(w, r, &req) {
			return
		}
		name, err := tend.ParseSignal(req.Signal)
		if err != nil {
			reply(w, nil, err)
			return
		}
		sig := unix.SignalNum(name)
		res, err := d.reach(req.Targets, func(a *supervisor.App, ids []int) ([]int, error) { return a.Signal(ids, sig) })
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		var req tend.ReloadRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := d.reload(context.WithoutCancel(r.Context()), req)
		replyWithResult(w, res, err)
	})
	mux.HandleFunc("POST /v1/scale", func(w http.ResponseWriter, r *http.Request) {
		var req tend.ScaleRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := d.scale(context.WithoutCancel(r.Context()), req)
		replyWithResult(w, res, err)
	})
	mux.HandleFunc("POST /v1/save", func(w http.ResponseWriter, r *http.Request) {
		var req tend.SaveRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := d.save(req.Force)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/resurrect", func(w http.ResponseWriter, r *http.Request) {
		res, err := d.resurrect(context.WithoutCancel(r.Context()))
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/logs", d.logs)
	mux.HandleFunc("GET /v1/events", d.events)
	mux.HandleFunc("POST /v1/kill", func(w http.ResponseWriter, r *http.Request) {
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
		// Serve ends (and shuts the server down) only after this answer
		// is on its way: the handler returns first.
		go d.end()
	})
	return versioned(mux)
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
		reply(w, nil, tend.Errorf(tend.EINVALID, "bad request body: %v", err))
		return false
	}
	return true
}

// reply writes v, or the error with the status its code maps to.
func reply(w http.ResponseWriter, v any, err error) {
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

// logs streams log lines as NDJSON: the last `lines` lines of each
// selected instance, then, with follow=1, every new line until the client
// goes away. Sinks outlive restarts, so following goes on across them, and
// a follower also takes in the instances that appear later in what it
// follows (a scale, a start; every app for all), from their first line.
func (d *Daemon) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lines, _ := strconv.Atoi(q.Get("lines"))
	if lines < 0 {
		lines = 0
	}
	stream := q.Get("stream") // "", "out" or "err"
	follow := q.Get("follow") == "1"
	since := time.Now()
	// Instances that appear later are heard of through the events:
	// subscribe before looking, so that none falls in between.
	var events <-chan tend.Event
	if follow {
		sub, cancel := d.hub.subscribe()
		defer cancel()
		events = sub.ch
	}
	sels, match, err := d.selectEvents(q.Get("target"))
	if err == nil && len(sels) == 0 && !follow {
		err = tend.Errorf(tend.ENOTFOUND, "no app is running: all matches nothing")
	}
	if err != nil {
		reply(w, nil, err)
		return
	}
	keep := func(l tend.LogLine) bool { return stream == "" || l.Stream == stream }
	ctx := r.Context()
	merged := make(chan tend.LogLine, 256)
	var forwarders sync.WaitGroup // end when their sinks close
	cancels := map[int]func(){}   // the instances followed, by id, until removed
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	// open subscribes to one instance's sink and returns its last n lines
	// (-1: all that memory holds).
	open := func(k supervisor.SlotSink, n int) []tend.LogLine {
		all := n < 0
		if all {
			n = math.MaxInt32
		}
		b, live, cancel := k.Sink.Subscribe(n)
		cancels[k.ID] = cancel
		if n > len(b) && !all {
			// More than the memory tail holds: the files have the rest.
			b = k.Sink.Tail(n)
		}
		var out []tend.LogLine
		for _, l := range b {
			if ll := toLogLine(l, k.ID); keep(ll) {
				out = append(out, ll)
			}
		}
		if !follow {
			return out
		}
		forwarders.Go(func() {
			for {
				select {
				case l, ok := <-live:
					if !ok {
						return
					}
					select {
					case merged <- toLogLine(l, k.ID):
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		})
		return out
	}
	var backlog []tend.LogLine
	for _, s := range sels {
		for _, k := range s.app.Sinks(s.ids) {
			backlog = append(backlog, open(k, lines)...)
		}
	}
	// lines per instance, as PM2 counts them: a chatty instance does not
	// hide a quiet one beside it.
	slices.SortStableFunc(backlog, func(a, b tend.LogLine) int { return a.Time.Compare(b.Time) })
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, l := range backlog {
		enc.Encode(l)
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	if !follow {
		return
	}
	rc.SetReadDeadline(time.Time{}) // a stream lives as long as its reader
	// join follows an instance that appeared after the request: every
	// line it wrote since then, then the new ones.
	join := func(a *supervisor.App, id int) {
		for _, k := range a.Sinks([]int{id}) {
			for _, l := range open(k, -1) {
				if !l.Time.Before(since) {
					enc.Encode(l)
				}
			}
		}
	}
	// A second for the apps' last lines on kill (see the quit case).
	defer d.deadlineOnQuit(rc, time.Second)()
	// Flushing per line costs a syscall each; batching to the next idle
	// moment keeps `logs -f` cheap under a flood.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	dirty := false
	for {
		select {
		case l := <-merged:
			if keep(l) {
				enc.Encode(l)
				dirty = true
			}
		case ev := <-events:
			switch {
			case ev.Kind == tend.EventInstance && cancels[ev.ID] == nil && match(ev):
				d.mu.Lock()
				a := cmp.Or(d.apps[ev.App], d.creating[ev.App])
				d.mu.Unlock()
				if a != nil {
					join(a, ev.ID)
					dirty = true
				}
			case ev.Kind == tend.EventRemoved && cancels[ev.ID] != nil:
				// Its sink is closed: let it go, so that a long follow
				// does not keep every instance it ever saw.
				// Ids start again at 0 once no app is left: a new
				// instance may come with this one's id.
				cancels[ev.ID]()
				delete(cancels, ev.ID)
			case ev.Kind == tend.EventLost:
				// Some events were dropped: look for new instances.
				for _, a := range d.snapshotApps() {
					for _, in := range a.Instances() {
						if cancels[in.ID] == nil && match(tend.Event{Kind: tend.EventInstance, App: in.Name, ID: in.ID}) {
							join(a, in.ID)
							dirty = true
						}
					}
				}
			}
		case <-tick.C:
			if dirty {
				rc.Flush()
				dirty = false
			}
		case <-ctx.Done():
			return
		case <-d.quit:
			// Every app is closed by now, and so is every sink: pass on
			// what they still hold (the apps' last words), each line
			// flushed, within the write deadline set above.
			late := time.After(500 * time.Millisecond)
			drained := make(chan struct{})
			go func() { forwarders.Wait(); close(drained) }()
			write := func(l tend.LogLine) bool {
				return !keep(l) || enc.Encode(l) == nil && rc.Flush() == nil
			}
			for {
				select {
				case l := <-merged:
					if !write(l) {
						return
					}
				case <-drained:
					for {
						select {
						case l := <-merged:
							if !write(l) {
								return
							}
						default:
							rc.Flush()
							return
						}
					}
				case <-ctx.Done():
					return
				case <-late:
					rc.Flush()
					return
				}
			}
		}
	}
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
