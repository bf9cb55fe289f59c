package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tendhq/tend"
)

// What the daemon asks of an app: start, stop, restart, remove, close.

// Start launches every selected slot that is not running (all when ids is
// nil), resetting their restart counters. It returns once the processes are
// spawned; an error means a process could not be spawned at all.
func (a *App) Start(ctx context.Context, ids []int) error {
	var errs []string
	if !a.call(func() {
		for _, s := range a.selected(ids) {
			if err := a.start(s); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}) {
		return errClosed(a.Name())
	}
	if len(errs) > 0 {
		return tend.Errorf(tend.EFAILED, "%s", strings.Join(errs, "; "))
	}
	return nil
}

// Stop stops the selected slots (all when ids is nil) and waits until their
// processes and process groups are gone, or ctx ends.
func (a *App) Stop(ctx context.Context, ids []int) error {
	return a.stopAndWait(ctx, ids, "stop")
}

// Restart stops then starts the selected slots. The app's port stays
// bound meanwhile: clients wait in the backlog.
func (a *App) Restart(ctx context.Context, ids []int) error {
	if err := a.stopAndWait(ctx, ids, "restart"); err != nil {
		return err
	}
	var errs []string
	a.call(func() {
		for _, s := range a.selected(ids) {
			if s.removing || a.closing {
				continue // going away meanwhile
			}
			s.restarts++
			if err := a.start(s); err != nil {
				errs = append(errs, err.Error())
			}
		}
	})
	if len(errs) > 0 {
		return tend.Errorf(tend.EFAILED, "%s", strings.Join(errs, "; "))
	}
	return nil
}

// Close stops every instance, closes the log files and the port, and ends
// the actor.
func (a *App) Close(ctx context.Context) error {
	// From here on no replacement (reload, cron, watch, memory) starts a
	// process: the stop below must be the last word.
	a.call(func() { a.closing = true })
	err := a.stopAndWait(ctx, nil, "delete")
	a.awaitOutput(nil)
	a.call(func() {
		if a.opt.Events != nil && a.opt.Events.Wanted() {
			a.emitChanges(a.view.Load(), nil)
		}
		a.closeSinks()
		a.share.close()
		a.forget()
		close(a.quit)
	})
	return err
}

func (a *App) closeSinks() {
	for _, s := range a.slots {
		if s.sink != nil {
			s.sink.Close()
		}
	}
}

// outputGrace bounds how long closing a sink waits for the output its
// stopped processes still have in their pipes (their last words).
const outputGrace = time.Second

// awaitOutput waits, up to outputGrace, until the stopped processes of the
// selected slots (all for nil) have no output left in their pipes, so that
// closing their sinks loses none of it.
func (a *App) awaitOutput(ids []int) { a.awaitOutputs(ids, false) }

// awaitOutputs is awaitOutput; ended leaves out the processes that still
// serve.
func (a *App) awaitOutputs(ids []int, ended bool) {
	var outs []chan struct{}
	a.read(func() {
		for _, s := range a.selected(ids) {
			for _, c := range s.output {
				if !ended || s.cur == nil || c != s.cur.out {
					outs = append(outs, c)
				}
			}
		}
	})
	deadline := time.NewTimer(outputGrace)
	defer deadline.Stop()
	for _, c := range outs {
		select {
		case <-c:
		case <-deadline.C:
			return
		}
	}
}

// Reset sets the restart counters of the selected slots back to zero, as
// PM2's reset does; their history of exits stays.
func (a *App) Reset(ids []int) {
	a.call(func() {
		for _, s := range a.selected(ids) {
			s.restarts, s.unstable, s.unhealthy = 0, 0, 0
		}
	})
}

// AwaitExited waits, a short bounded time, until what the processes of
// instance id that ended wrote is all in its log: a notification about an
// exit then has the last lines.
func (a *App) AwaitExited(id int) { a.awaitOutputs([]int{id}, true) }

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (a *App) stopAndWait(ctx context.Context, ids []int, cause string) error {
	var waits []chan struct{}
	if !a.call(func() {
		for _, s := range a.selected(ids) {
			waits = append(waits, a.stop(s, cause)...)
		}
	}) {
		return errClosed(a.Name())
	}
	if err := waitAll(ctx, waits, a.Name()); err != nil {
		return err
	}
	// The exits were handled in the actor; their state is published after
	// the op that handled them: wait for that too, so that what the caller
	// shows next (tend stop prints the table) says stopped.
	a.read(func() {})
	return nil
}

func waitAll(ctx context.Context, waits []chan struct{}, name string) error {
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return tend.Errorf(tend.EFAILED, "app %s: stopping: %v", name, ctx.Err())
		}
	}
	return nil
}

func errClosed(name string) error {
	return tend.Errorf(tend.ENOTFOUND, "app %s was deleted", name)
}

// selected returns the slots with the given ids, all of them for nil.
func (a *App) selected(ids []int) []*slot {
	if ids == nil {
		return a.slots
	}
	var out []*slot
	for _, s := range a.slots {
		if slices.Contains(ids, s.id) {
			out = append(out, s)
		}
	}
	return out
}

// Remove stops the selected instances and removes their slots from the
// app; the remaining instances keep their ids and indexes.
func (a *App) Remove(ctx context.Context, ids []int) error {
	var waits []chan struct{}
	if !a.call(func() {
		for _, s := range a.selected(ids) {
			// From now on nothing starts in it: a restart or a start that
			// comes meanwhile would leave a process in a slot that goes.
			s.removing = true
			waits = append(waits, a.stop(s, "delete")...)
		}
	}) {
		return errClosed(a.Name())
	}
	if err := waitAll(ctx, waits, a.Name()); err != nil {
		return err
	}
	a.awaitOutput(ids)
	a.call(func() {
		a.slots = slices.DeleteFunc(a.slots, func(s *slot) bool {
			if slices.Contains(ids, s.id) {
				s.sink.Close()
				return true
			}
			return false
		})
		a.spec.Instances = len(a.slots)
	})
	return nil
}

// Send delivers msg (JSON) to the selected running instances (all for nil)
// and returns the ids it reached.
func (a *App) Send(ids []int, msg json.RawMessage) ([]int, error) {
	return a.eachRunning(ids, "sending", func(s *slot) error { return a.share.primary.Send(s.cur.wid, msg) })
}

// Signal sends sig to the serving process of the selected running
// instances (all for nil) and returns the ids it reached.
func (a *App) Signal(ids []int, sig syscall.Signal) ([]int, error) {
	// The process alone, as PM2 does: a master such as gunicorn passes
	// it on to its workers as it means to.
	return a.eachRunning(ids, "signalling", func(s *slot) error { return syscall.Kill(s.cur.proc.PID(), sig) })
}

// eachRunning calls f, in the actor, for every selected instance that has
// a process, and returns the ids for which it succeeded; doing names the
// action in errors. No running instance is no error here: the caller
// decides, over every app it reached.
func (a *App) eachRunning(ids []int, doing string, f func(*slot) error) ([]int, error) {
	var done []int
	var errs []string
	a.read(func() {
		for _, s := range a.selected(ids) {
			if s.cur == nil {
				continue
			}
			if err := f(s); err != nil {
				errs = append(errs, fmt.Sprintf("%s[%d]: %v", a.spec.Name, s.index, err))
				continue
			}
			done = append(done, s.id)
		}
	})
	if len(errs) > 0 {
		return done, tend.Errorf(tend.EFAILED, "%s: %s", doing, strings.Join(errs, "; "))
	}
	return done, nil
}
