package daemon

import (
	"strings"
	"testing"

	"github.com/tendhq/tend"
)

// A readiness probe must reach the instance it judges: on the port every
// instance shares in socket mode, an old one answers for a new one; tend
// start warns. Cluster mode hands the probe to the worker it judges.
func TestReadyURLOnSharedPort(t *testing.T) {
	for _, c := range []struct {
		mode    tend.Mode
		url     string
		refused bool
	}{
		{tend.ModeSocket, "http://127.0.0.1:$PORT/health", true},
		{tend.ModeSocket, "tcp://127.0.0.1:${PORT}", true},
		{tend.ModeCluster, "http://localhost:8000/", false},      // the probe is handed to the worker it judges
		{tend.ModeSocket, "http://127.0.0.1:9100/health", false}, // a port of the instance's own
		{tend.ModeProxy, "http://127.0.0.1:$PORT/health", false}, // PORT is the instance's
		{tend.ModeFork, "http://127.0.0.1:8000/", false},
	} {
		s := &tend.AppSpec{Name: "api", Port: 8000, ExecMode: c.mode, ReadyURL: c.url}
		w := readyURLWarning(s, c.mode)
		if (w != "") != c.refused {
			t.Errorf("%s %s: warning %q, want one: %v", c.mode, c.url, w, c.refused)
		}
		if w != "" && !strings.Contains(w, "--exec-mode proxy") {
			t.Errorf("%s %s: %q does not name the fix", c.mode, c.url, w)
		}
	}
}
