package supervisor

import (
	"fmt"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/nodecluster"
)

// awaitsReady reports whether instances start as launching and become
// online on a signal: a Node cluster worker's listening, or 'ready' with
// wait_ready.
func (a *App) awaitsReady() bool {
	return a.spec.WaitReady && a.share.primary != nil || a.spec.ExecMode == tend.ModeCluster
}

// awaitReady marks s launching until it signals readiness. After
// listen_timeout it is counted online anyway, as PM2 does, but with a
// problem shown in ls and describe instead of a silent hang.
func (a *App) awaitReady(s *slot, gen int) {
	s.status = tend.StatusLaunching
	timeout := a.spec.ListenTimeout.D()
	if timeout <= 0 {
		timeout = tend.DefaultListenTimeout.D()
	}
	time.AfterFunc(timeout, func() {
		a.post(func() {
			if s.gen != gen || s.proc == nil || s.stopping || s.ready {
				return
			}
			s.status = tend.StatusOnline
			what := "did not listen on a port"
			if a.spec.WaitReady {
				what = "did not send 'ready'"
			}
			s.problem = fmt.Sprintf("%s within listen_timeout (%s)", what, timeout)
		})
	})
}

// markReady records that s is ready. Runs in the actor.
func (a *App) markReady(s *slot) {
	s.ready = true
	if s.status == tend.StatusLaunching {
		s.status = tend.StatusOnline
	}
}

// nodeEvent handles what a Node worker (slot id ev.Worker) did. Runs in
// the actor.
func (a *App) nodeEvent(ev nodecluster.Event) {
	var s *slot
	for _, x := range a.slots {
		if x.id == ev.Worker {
			s = x
		}
	}
	if s == nil || s.proc == nil {
		return
	}
	switch ev.Kind {
	case nodecluster.Listening:
		if s.listenPort == 0 {
			s.listenPort = ev.Port
		}
		if p := a.spec.Port; p > 0 && ev.Port != p && ev.Port != 0 {
			s.problem = fmt.Sprintf("listens on port %d, not on --port %d", ev.Port, p)
			a.opt.Logf("%s[%d]: %s", a.spec.Name, s.index, s.problem)
		}
		if !a.spec.WaitReady {
			a.markReady(s)
		}
	case nodecluster.Ready:
		a.markReady(s)
	case nodecluster.Error:
		s.problem = fmt.Sprintf("listen on port %d failed: %v", ev.Port, ev.Err)
		a.opt.Logf("%s[%d]: %s", a.spec.Name, s.index, s.problem)
	case nodecluster.Message:
		a.opt.Logf("%s[%d] message: %s", a.spec.Name, s.index, ev.Msg)
	case nodecluster.Disconnected:
		if s.stopping {
			// Its servers are closed: now the stop signal.
			s.proc.Signal(a.killSignal())
		}
	}
}
