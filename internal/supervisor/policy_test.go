package supervisor

import (
	"testing"
	"time"

	"github.com/tendhq/tend"
)

func TestDecide(t *testing.T) {
	no := false
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for _, tc := range []struct {
		name     string
		spec     tend.AppSpec
		code     int
		signaled bool
		uptime   time.Duration
		unstable int
		backoff  time.Duration
		want     decision
	}{
		{"first crash: base backoff", tend.AppSpec{}, 1, false, ms(10), 0, 0, decision{actRestart, ms(100), 1, ms(100)}},
		{"next crash: x1.5", tend.AppSpec{}, 1, false, ms(10), 1, ms(100), decision{actRestart, ms(150), 2, ms(150)}},
		{"capped at 15s", tend.AppSpec{}, 1, false, ms(10), 3, ms(14000), decision{actRestart, 15 * time.Second, 4, 15 * time.Second}},
		{"stable run resets", tend.AppSpec{}, 1, false, 5 * time.Second, 7, ms(5000), decision{actRestart, ms(100), 0, ms(100)}},
		{"exit 0 restarts too", tend.AppSpec{}, 0, false, 5 * time.Second, 0, 0, decision{actRestart, ms(100), 0, ms(100)}},
		{"custom base", tend.AppSpec{ExpBackoffRestartDelay: tend.Duration(ms(400))}, 1, false, ms(10), 0, 0, decision{actRestart, ms(400), 1, ms(400)}},
		{"fixed delay", tend.AppSpec{RestartDelay: tend.Duration(ms(2000))}, 1, false, ms(10), 0, 0, decision{actRestart, ms(2000), 1, 0}},
		{"max restarts: errored", tend.AppSpec{MaxRestarts: 3}, 1, false, ms(10), 2, ms(225), decision{act: actErrored, unstable: 3}},
		{"default max is 16", tend.AppSpec{}, 1, false, ms(10), 15, ms(1000), decision{act: actErrored, unstable: 16}},
		{"min_uptime decides unstable", tend.AppSpec{MinUptime: tend.Duration(10 * time.Second)}, 1, false, 5 * time.Second, 0, 0, decision{actRestart, ms(100), 1, ms(100)}},
		{"stop exit code", tend.AppSpec{StopExitCodes: []int{0, 3}}, 3, false, ms(10), 0, 0, decision{act: actStop}},
		{"signal is not an exit code", tend.AppSpec{StopExitCodes: []int{-1}}, -1, true, ms(10), 0, 0, decision{actRestart, ms(100), 1, ms(100)}},
		{"autorestart off", tend.AppSpec{Autorestart: &no}, 1, false, ms(10), 0, 0, decision{act: actStop}},
		// A task: exit 0 completes it; a failure is final unless
		// max_restarts allows more tries, however long each one ran.
		{"task exit 0: completed", tend.AppSpec{Type: tend.TypeTask}, 0, false, 5 * time.Second, 0, 0, decision{act: actCompleted}},
		{"task failure: errored at once", tend.AppSpec{Type: tend.TypeTask}, 1, false, 5 * time.Second, 0, 0, decision{act: actErrored, unstable: 1}},
		{"task killed: errored", tend.AppSpec{Type: tend.TypeTask}, 0, true, ms(10), 0, 0, decision{act: actErrored, unstable: 1}},
		{"task with max_restarts: retried", tend.AppSpec{Type: tend.TypeTask, MaxRestarts: 2}, 1, false, 5 * time.Second, 1, ms(100), decision{actRestart, ms(150), 2, ms(150)}},
		{"task out of tries", tend.AppSpec{Type: tend.TypeTask, MaxRestarts: 2}, 1, false, 5 * time.Second, 2, ms(150), decision{act: actErrored, unstable: 3}},
		{"task, autorestart off", tend.AppSpec{Type: tend.TypeTask, MaxRestarts: 2, Autorestart: &no}, 1, false, ms(10), 0, 0, decision{act: actErrored, unstable: 1}},
		{"task ignores stop_exit_codes", tend.AppSpec{Type: tend.TypeTask, StopExitCodes: []int{3}}, 3, false, ms(10), 0, 0, decision{act: actErrored, unstable: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(&tc.spec, tc.code, tc.signaled, tc.uptime, tc.unstable, tc.backoff)
			if got != tc.want {
				t.Errorf("decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}
