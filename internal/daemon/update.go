package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/keeper"
	"github.com/tendhq/tend/internal/supervisor"
)

// CompatArg makes tend print the versions of the keeper's tables and of
// the apps' State it reads, so that an upgrade to a binary that could not
// take over is refused before anything changes.
const CompatArg = "__compat"

// Compat is what a binary prints for CompatArg.
func Compat() string {
	return fmt.Sprintf("keeper=%d state=%d", keeper.StateVersion, supervisor.StateVersion)
}

// handoverTimeout bounds how long a daemon that hands over waits for the
// connections it holds (round robin hand-offs, proxied connections) to
// reach their instances or end. Clients wait in the ports' backlogs
// meanwhile; a proxied connection still open after it is cut.
const handoverTimeout = 5 * time.Second

// update checks that exe can take over, then hands over to it: the keeper
// becomes exe after this daemon exits, and starts the next daemon from it.
// The apps are not touched.
func (d *Daemon) update(req tend.UpdateRequest) (tend.UpdateResult, error) {
	res := tend.UpdateResult{From: tend.Version, PID: os.Getpid()}
	if !d.hasKeeper() {
		return res, tend.Errorf(tend.EFAILED, "this daemon has no keeper to hand its apps to (tend run, or the keeper died): restart tend to update it")
	}
	if err := checkUpgrade(req.Exe); err != nil {
		return res, err
	}
	d.mu.Lock()
	if d.isQuitting() {
		d.mu.Unlock()
		return res, errQuitting
	}
	close(d.quitting) // no new start from now on
	d.upgrading = req.Exe
	d.mu.Unlock()
	go d.handover(req.Exe)
	return res, nil
}

// handover readies every app for the next daemon, tells the keeper to
// upgrade, and ends this daemon.
func (d *Daemon) handover(exe string) {
	d.log.Info("handing over to a new tend", "exe", exe)
	d.starting.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), handoverTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range d.snapshotApps() {
		wg.Go(func() { a.Handover(ctx) })
	}
	wg.Wait()
	d.mu.Lock()
	stopping := d.stopped // a stop came meanwhile: it wins
	d.mu.Unlock()
	if !stopping {
		if err := d.keeper.Upgrade(exe); err != nil {
			d.log.Error("telling the keeper to upgrade", "err", err)
		}
	}
	d.end()
}

// checkUpgrade refuses a binary that is not a tend this one can hand over
// to, or that another user could have written: the keeper runs it with
// every app in its hands.
func checkUpgrade(exe string) error {
	if !filepath.IsAbs(exe) {
		return tend.Errorf(tend.EINVALID, "update to %q: not an absolute path", exe)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return tend.Errorf(tend.ENOTFOUND, "update to %s: %v", exe, err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0:
		return tend.Errorf(tend.EINVALID, "update to %s: not an executable file", exe)
	case st != nil && int(st.Uid) != os.Getuid() && st.Uid != 0:
		return tend.Errorf(tend.EINVALID, "update to %s: it belongs to uid %d, neither you nor root", exe, st.Uid)
	case fi.Mode()&0o022 != 0:
		return tend.Errorf(tend.EINVALID, "update to %s: it is writable by other users (mode %s); chmod go-w it", exe, fi.Mode().Perm())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, CompatArg).Output()
	if err != nil {
		return tend.Errorf(tend.EFAILED, "update to %s: it does not run as a tend that can take over (%v)", exe, err)
	}
	k, s := compatVersions(string(out))
	if k < keeper.StateVersion || s < supervisor.StateVersion {
		return tend.Errorf(tend.EFAILED, "update to %s: it reads keeper tables up to version %d and app states up to %d; this tend writes %d and %d",
			exe, k, s, keeper.StateVersion, supervisor.StateVersion)
	}
	return nil
}

// compatVersions parses what Compat prints.
func compatVersions(out string) (k, s int) {
	for _, f := range strings.Fields(out) {
		name, v, _ := strings.Cut(f, "=")
		n, _ := strconv.Atoi(v)
		switch name {
		case "keeper":
			k = n
		case "state":
			s = n
		}
	}
	return k, s
}
