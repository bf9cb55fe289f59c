package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/supervisor"
)

// logs streams log lines as NDJSON: the last `lines` lines of each
// selected instance, then, with follow=1, every new line until the client
// goes away. Sinks outlive restarts, so following goes on across them, and
// a follower also takes in the instances that appear later in what it
// follows (a scale, a start; every app for all), from their first line.
func (d *Daemon) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lines, _ := strconv.Atoi(q.Get("lines"))
	ls := &logStream{d: d, ctx: r.Context(), stream: q.Get("stream"), follow: q.Get("follow") == "1", since: time.Now(),
		merged: make(chan tend.LogLine, 256), cancels: map[int]func(){}}
	// Instances that appear later are heard of through the events:
	// subscribe before looking, so that none falls in between.
	var events <-chan tend.Event
	if ls.follow {
		sub, cancel := d.hub.subscribe()
		defer cancel()
		events = sub.ch
	}
	sels, match, err := d.selectEvents(q.Get("target"))
	if err == nil && len(sels) == 0 && !ls.follow {
		err = tend.Errorf(tend.ENOTFOUND, "no app is running: all matches nothing")
	}
	if err != nil {
		reply[any](w, nil, err)
		return
	}
	ls.match = match
	defer func() {
		for _, c := range ls.cancels {
			c()
		}
	}()
	var backlog []tend.LogLine
	for _, s := range sels {
		for _, k := range s.app.Sinks(s.ids) {
			backlog = append(backlog, ls.open(k, max(lines, 0))...)
		}
	}
	// lines per instance, as PM2 counts them: a chatty instance does not
	// hide a quiet one beside it.
	slices.SortStableFunc(backlog, func(a, b tend.LogLine) int { return a.Time.Compare(b.Time) })
	w.Header().Set("Content-Type", "application/x-ndjson")
	ls.enc = json.NewEncoder(w)
	for _, l := range backlog {
		ls.enc.Encode(l)
	}
	ls.rc = http.NewResponseController(w)
	ls.rc.Flush()
	if !ls.follow {
		return
	}
	ls.rc.SetReadDeadline(time.Time{}) // a stream lives as long as its reader
	// A second for the apps' last lines on kill (see drain).
	defer d.deadlineOnQuit(ls.rc, time.Second)()
	ls.run(events)
}

// logStream is one GET /v1/logs: the instances it reads and the response
// it writes to.
type logStream struct {
	d      *Daemon
	ctx    context.Context
	stream string // "", "out" or "err"
	follow bool
	since  time.Time             // when the request came: a later instance's lines from then on
	match  func(tend.Event) bool // the target's instances
	merged chan tend.LogLine     // the live lines of every instance followed

	forwarders sync.WaitGroup // end when their sinks close
	cancels    map[int]func() // the instances followed, by id, until removed
	enc        *json.Encoder
	rc         *http.ResponseController
}

func (ls *logStream) keep(l tend.LogLine) bool { return ls.stream == "" || l.Stream == ls.stream }

// open subscribes to one instance's sink and returns its last n lines
// (-1: all that memory holds); with follow, its new lines go to merged.
func (ls *logStream) open(k supervisor.SlotSink, n int) []tend.LogLine {
	all := n < 0
	if all {
		n = math.MaxInt32
	}
	b, live, cancel := k.Sink.Subscribe(n)
	ls.cancels[k.ID] = cancel
	if n > len(b) && !all {
		// More than the memory tail holds: the files have the rest.
		b = k.Sink.Tail(n)
	}
	var out []tend.LogLine
	for _, l := range b {
		if ll := toLogLine(l, k.ID); ls.keep(ll) {
			out = append(out, ll)
		}
	}
	if !ls.follow {
		return out
	}
	ls.forwarders.Go(func() {
		for {
			select {
			case l, ok := <-live:
				if !ok {
					return
				}
				select {
				case ls.merged <- toLogLine(l, k.ID):
				case <-ls.ctx.Done():
					return
				}
			case <-ls.ctx.Done():
				return
			}
		}
	})
	return out
}

// join follows an instance that appeared after the request: every line it
// wrote since then, then the new ones.
func (ls *logStream) join(a *supervisor.App, id int) {
	for _, k := range a.Sinks([]int{id}) {
		for _, l := range ls.open(k, -1) {
			if !l.Time.Before(ls.since) {
				ls.enc.Encode(l)
			}
		}
	}
}

// run writes the lines of the instances followed, and of those that come,
// until the client or the daemon goes.
func (ls *logStream) run(events <-chan tend.Event) {
	// Flushing per line costs a syscall each; batching to the next idle
	// moment keeps `logs -f` cheap under a flood.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	dirty := false
	for {
		select {
		case l := <-ls.merged:
			if ls.keep(l) {
				ls.enc.Encode(l)
				dirty = true
			}
		case ev := <-events:
			if ls.event(ev) {
				dirty = true
			}
		case <-tick.C:
			if dirty {
				ls.rc.Flush()
				dirty = false
			}
		case <-ls.ctx.Done():
			return
		case <-ls.d.quit:
			ls.drain()
			return
		}
	}
}

// event follows a new instance, or lets a removed one go. It reports
// whether it wrote anything.
func (ls *logStream) event(ev tend.Event) (wrote bool) {
	switch {
	case ev.Kind == tend.EventInstance && ls.cancels[ev.ID] == nil && ls.match(ev):
		ls.d.mu.Lock()
		a := cmp.Or(ls.d.apps[ev.App], ls.d.creating[ev.App])
		ls.d.mu.Unlock()
		if a != nil {
			ls.join(a, ev.ID)
			return true
		}
	case ev.Kind == tend.EventRemoved && ls.cancels[ev.ID] != nil:
		// Its sink is closed: let it go, so that a long follow does not
		// keep every instance it ever saw. Ids start again at 0 once no
		// app is left: a new instance may come with this one's id.
		ls.cancels[ev.ID]()
		delete(ls.cancels, ev.ID)
	case ev.Kind == tend.EventLost:
		// Some events were dropped: look for new instances.
		for _, a := range ls.d.snapshotApps() {
			for _, in := range a.Instances() {
				if ls.cancels[in.ID] == nil && ls.match(tend.Event{Kind: tend.EventInstance, App: in.Name, ID: in.ID}) {
					ls.join(a, in.ID)
					wrote = true
				}
			}
		}
	}
	return wrote
}

// drain runs when the daemon is killed. Every app is closed by now, and so
// is every sink: pass on what they still hold (the apps' last words), each
// line flushed, within the write deadline deadlineOnQuit set.
func (ls *logStream) drain() {
	late := time.After(500 * time.Millisecond)
	drained := make(chan struct{})
	go func() { ls.forwarders.Wait(); close(drained) }()
	write := func(l tend.LogLine) bool {
		return !ls.keep(l) || ls.enc.Encode(l) == nil && ls.rc.Flush() == nil
	}
	for {
		select {
		case l := <-ls.merged:
			if !write(l) {
				return
			}
		case <-drained:
			for {
				select {
				case l := <-ls.merged:
					if !write(l) {
						return
					}
				default:
					ls.rc.Flush()
					return
				}
			}
		case <-ls.ctx.Done():
			return
		case <-late:
			ls.rc.Flush()
			return
		}
	}
}
