package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/cgroup"
	"github.com/tendhq/tend/internal/supervisor"
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
	if d.keeper != nil && !d.keeper.Identity() {
		// A binary upgraded in place, restarted by the keeper that was
		// there: its apps go on without cgroups until tend update.
		d.cgroupErr = errors.New("tend's keeper predates cgroups: run tend update")
	} else {
		d.cgroups, d.cgroupErr = cgroup.Open("tend-"+hex.EncodeToString(sum[:4]), own...)
	}
	if d.cgroupErr != nil {
		d.log.Info("no cgroups: instances are measured from /proc, and limits (max_memory, cpu_quota, max_pids) are refused", "reason", d.cgroupErr)
	}
}

// resolveApp is supervisor.Resolve, and the refusal of limits where tend has
// no cgroups: for starts and reloads alike.
func (d *Daemon) resolveApp(spec *tend.AppSpec) (supervisor.Resolved, error) {
	r, err := supervisor.Resolve(spec)
	if err == nil {
		err = supervisor.CheckCgroups(spec, d.cgroups, d.cgroupErr)
	}
	return r, err
}
