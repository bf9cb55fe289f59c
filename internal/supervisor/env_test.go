package supervisor

import (
	"slices"
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// The drain of a stopping instance fits in its kill_timeout.
func TestDrainGraceEnv(t *testing.T) {
	for _, tc := range []struct {
		killTimeout tend.Duration
		want        string
	}{
		{0, "TEND_DRAIN_MS=1000"}, // default kill_timeout, 5 s
		{tend.Duration(10 * time.Second), "TEND_DRAIN_MS=1000"},
		{tend.Duration(600 * time.Millisecond), "TEND_DRAIN_MS=300"},
	} {
		spec := &tend.AppSpec{Name: "a", KillTimeout: tc.killTimeout,
			BaseEnv: []string{"TEND_DRAIN_MS=9", "TEND_CHANNEL_FD=7"}}
		env := instanceEnv(spec, 0, 0, nil)
		if !slices.Contains(env, tc.want) {
			t.Errorf("kill_timeout %v: env has no %s: %v", tc.killTimeout.D(), tc.want, env)
		}
		if slices.Contains(env, "TEND_CHANNEL_FD=7") {
			t.Error("an inherited TEND_CHANNEL_FD reached the app")
		}
	}
}
