package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"os"

	"github.com/tendhq/tend/internal/cgroup"
)

// openCgroups finds the cgroups this daemon's instances go in: tend-<hash
// of the home>, so that the daemons of several homes never share one.
// Without them the daemon runs on; apps that ask for limits are refused
// with the reason.
func (d *Daemon) openCgroups() {
	sum := sha256.Sum256([]byte(d.home))
	own := []int{os.Getpid()}
	if k := d.keeperPID(); k > 0 {
		own = append(own, k)
	}
	d.cgroups, d.cgroupErr = cgroup.Open("tend-"+hex.EncodeToString(sum[:4]), own...)
	if d.cgroupErr != nil {
		d.log.Info("no cgroups: instances are measured from /proc, and limits (max_memory, cpu_quota, max_pids) are refused", "reason", d.cgroupErr)
	}
}
