package supervisor

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tendhq/tend"
)

// action is what happens to a slot after its process exited on its own.
type action int

const (
	actRestart   action = iota // restart after delay
	actStop                    // stay stopped (autorestart off, or a stop exit code)
	actErrored                 // give up: too many unstable restarts
	actCompleted               // a task that exited 0: done until its file starts again
)

// decision is the outcome of decide.
type decision struct {
	act      action
	delay    time.Duration
	unstable int           // consecutive unstable restarts after this exit
	backoff  time.Duration // current exponential delay, kept for the next exit
}

// jitter shortens a restart delay by up to a fifth, at random, so that
// the instances of an app that crashed together (a bad deploy, a lost
// database) do not restart in lockstep and crash together again. Shorter,
// not longer: the delay and its cap stay upper bounds.
func jitter(d time.Duration) time.Duration {
	if d < 5 {
		return d
	}
	return d - rand.N(d/5)
}

// decide applies the restart policy to an exit. unstable and backoff are
// the slot's counters before this exit. An exit sooner than min_uptime is
// unstable; max_restarts unstable exits in a row make the slot errored. An
// instance that stayed up min_uptime or longer resets both counters, so a
// service that crashes once a day restarts quickly every time.
func decide(spec *tend.AppSpec, code int, signaled bool, uptime time.Duration, unstable int, backoff time.Duration) decision {
	if spec.IsTask() {
		return decideTask(spec, code, signaled, unstable, backoff)
	}
	if !spec.AutorestartOn() {
		return decision{act: actStop}
	}
	if !signaled && slices.Contains(spec.StopExitCodes, code) {
		return decision{act: actStop}
	}
	minUp := spec.MinUptime.D()
	if minUp <= 0 {
		minUp = tend.DefaultMinUptime.D()
	}
	if uptime < minUp {
		unstable++
	} else {
		unstable, backoff = 0, 0
	}
	maxR := spec.MaxRestarts
	if maxR <= 0 {
		maxR = tend.DefaultMaxRestarts
	}
	if unstable >= maxR {
		return decision{act: actErrored, unstable: unstable}
	}
	return restartAfter(spec, unstable, backoff)
}

// restartAfter is a restart: after restart_delay, or after the next step
// of exponential backoff from backoff.
func restartAfter(spec *tend.AppSpec, unstable int, backoff time.Duration) decision {
	if d := spec.RestartDelay.D(); d > 0 && spec.ExpBackoffRestartDelay <= 0 {
		return decision{act: actRestart, delay: d, unstable: unstable}
	}
	base := spec.ExpBackoffRestartDelay.D()
	if base <= 0 {
		base = tend.BackoffBase.D()
	}
	// x1.5 per restart as PM2 and einhorn do: gentler than doubling, and
	// capped because unbounded backoff only delays recovery.
	if backoff == 0 {
		backoff = base
	} else {
		backoff = min(backoff*3/2, tend.BackoffCap.D())
	}
	return decision{act: actRestart, delay: backoff, unstable: unstable, backoff: backoff}
}
