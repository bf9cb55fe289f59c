package daemon

import (
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// StopTime sums the largest kill_timeout of each layer of depends_on;
// a dependency that does not run adds nothing, and a cycle stops at once.
func TestStopTime(t *testing.T) {
	app := func(name string, kill time.Duration, needs ...string) tend.AppSpec {
		s := tend.AppSpec{Name: name, KillTimeout: tend.Duration(kill)}
		for _, n := range needs {
			s.DependsOn = append(s.DependsOn, tend.Dependency{App: n, Condition: tend.CondStarted})
		}
		return s
	}
	for _, c := range []struct {
		name string
		apps []tend.AppSpec
		want time.Duration
	}{
		{"none", nil, 0},
		{"default kill_timeout", []tend.AppSpec{app("web", 0)}, tend.DefaultKillTimeout.D()},
		{"one layer", []tend.AppSpec{app("a", 2*time.Second), app("b", 7*time.Second)}, 7 * time.Second},
		{"layers", []tend.AppSpec{app("db", 4*time.Second), app("cache", 9*time.Second), app("migrate", 0, "db"), app("web", 20*time.Second, "migrate", "cache")},
			9*time.Second + tend.DefaultKillTimeout.D() + 20*time.Second},
		{"dependency elsewhere", []tend.AppSpec{app("web", 20*time.Second, "db")}, 20 * time.Second},
		{"cycle", []tend.AppSpec{app("a", 2*time.Second, "b"), app("b", 3*time.Second, "a")}, 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := StopTime(c.apps); got != c.want {
				t.Errorf("StopTime = %s, want %s", got, c.want)
			}
		})
	}
}
