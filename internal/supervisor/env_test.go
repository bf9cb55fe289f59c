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
		env := instanceEnv(spec, 0, 0, 1, nil)
		if !slices.Contains(env, tc.want) {
			t.Errorf("kill_timeout %v: env has no %s: %v", tc.killTimeout.D(), tc.want, env)
		}
		if slices.Contains(env, "TEND_CHANNEL_FD=7") {
			t.Error("an inherited TEND_CHANNEL_FD reached the app")
		}
	}
}

// fitsPre: which listen() of a Node worker gets the socket bound up front
// for --port on --host.
func TestFitsPre(t *testing.T) {
	for _, c := range []struct {
		host, network, address string
		fits                   bool
	}{
		{"", "tcp", "", true},          // listen(port): both families, as bound
		{"", "tcp", "::", true},        // listen(port, '::')
		{"", "tcp6", "::", false},      // ipv6Only: not the dual-stack socket
		{"", "tcp4", "0.0.0.0", false}, // IPv4 only, as under Node
		{"::", "tcp6", "::", false},    // --host :: is dual-stack too
		{"127.0.0.1", "tcp", "", true}, // --host is where listen(port) goes
		{"127.0.0.1", "tcp4", "127.0.0.1", true},
		{"127.0.0.1", "tcp4", "10.0.0.1", false},
	} {
		if got := fitsPre(c.host, c.network, c.address); got != c.fits {
			t.Errorf("--host %q, listen %s %q: fits %v, want %v", c.host, c.network, c.address, got, c.fits)
		}
	}
}
