package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/tendhq/tend"
)

// One-shot tasks (type: task) and apps held back by their dependencies.
// The order itself is the daemon's: an app only runs its own slots.

// Hold marks the slots that do not run as waiting, with reason as their
// problem (what they wait for, or what blocks them), until a start or
// restart runs them. No restart is armed: the daemon starts them when
// their dependencies allow.
func (a *App) Hold(reason string) {
	a.call(func() {
		for _, s := range a.slots {
			if s.cur != nil || s.removing {
				continue
			}
			a.cancelRestart(s)
			s.status, s.problem, s.restartAt = tend.StatusWaiting, reason, time.Time{}
		}
	})
}

// Unhold lists the slots still held (waiting, with no restart to come)
// as stopped: their start was not asked for (autostart: false, or
// stopped in a saved state).
func (a *App) Unhold() {
	a.call(func() {
		for _, s := range a.slots {
			if s.cur == nil && s.status == tend.StatusWaiting && s.restartTimer == nil {
				s.status, s.problem = tend.StatusStopped, ""
			}
		}
	})
}

// Rerun runs a task again: spec and res, when not nil, replace its
// settings, then every slot stops (if it still runs) and starts afresh.
// It returns once the processes are spawned.
func (a *App) Rerun(ctx context.Context, spec *tend.AppSpec, res *Resolved) error {
	var conflict error
	if !a.call(func() {
		if spec != nil {
			if conflict = compatible(&a.spec, spec, a.res, res); conflict != nil {
				return
			}
			spec.Instances = len(a.slots)
			a.spec = *spec
		}
		if res != nil {
			a.res = *res
		}
	}) {
		return errClosed(a.Name())
	}
	if conflict != nil {
		return conflict
	}
	if err := a.stopAndWait(ctx, nil, "reload"); err != nil {
		return err
	}
	return a.Start(ctx, nil)
}

// decideTask is decide for a task to the exit of one of its runs: exit
// 0 completes it; a failure is retried while max_restarts allows (none by
// default: a failed migration is looked at, not rerun blindly), with the
// usual backoff, then the slot is errored.
func decideTask(spec *tend.AppSpec, code int, signaled bool, failures int, backoff time.Duration) decision {
	if code == 0 && !signaled {
		return decision{act: actCompleted}
	}
	failures++
	if !spec.AutorestartOn() || failures > spec.MaxRestarts {
		return decision{act: actErrored, unstable: failures}
	}
	return restartAfter(spec, failures, backoff)
}

// taskProblem says why a task failed, for ls and the start of its file.
func taskProblem(name string, code int, signaled bool, failures int) string {
	how := fmt.Sprintf("exit code %d", code)
	if signaled {
		how = "killed by a signal"
	}
	tries := ""
	if failures > 1 {
		tries = fmt.Sprintf(" after %d tries", failures)
	}
	return fmt.Sprintf("task failed (%s)%s; see tend logs %s", how, tries, name)
}
