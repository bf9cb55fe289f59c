package cli_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/testport"
)

// Scaling down (or tend stop) is on purpose: the instances it stops are
// not meant to run, and while they take their kill_timeout to stop,
// /readyz holds.
func TestReadyzDuringScaleDown(t *testing.T) {
	h := newHarness(t)
	hp := testport.Free(t)
	health := "http://127.0.0.1:" + strconv.Itoa(hp)
	file := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(file, []byte(`apps:
  - name: web
    script: `+h.self+`
    args: [stubborn]
    instances: 2
    kill_timeout: 3s
`), 0o644)
	h.start("run", file, "--health-addr", "127.0.0.1:"+strconv.Itoa(hp), "--drain-delay", "0")
	h.awaitProbe(health+"/readyz", 200)
	scale := h.start("scale", "web", "1")
	h.await("web[1] stopping", func(in []tend.Instance) bool {
		return slices.ContainsFunc(in, func(i tend.Instance) bool { return i.Status == tend.StatusStopping })
	})
	if p := probeGet(t, health+"/readyz"); p.code != 200 {
		t.Errorf("/readyz %d while scaling down on purpose: %s", p.code, p.Why)
	}
	if code := scale.wait(); code != 0 {
		t.Errorf("tend scale web 1 exited %d", code)
	}
}
