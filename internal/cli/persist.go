package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/private"
)

func saveCmd(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "save",
		GroupID: "daemon",
		Short:   "Save the app list, for tend resurrect and for the boot (tend startup)",
		Long: `Save every app, with its whole configuration and environment and which
instances are stopped, to $TEND_HOME/dump.json (mode 0600; the previous
one is kept as dump.json.bak). tend resurrect, and a daemon started by
tend startup's unit, bring the list back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Save(cmd.Context(), force)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.errOut, "tend: saved %d %s to %s\n", len(res.Apps), plural(len(res.Apps), "app"), res.Path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "save even when no app runs (resurrect will then restore nothing)")
	return cmd
}

func resurrectCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "resurrect",
		GroupID: "daemon",
		Short:   "Start the saved apps that are not running (see tend save)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := e.resurrect(cmd.Context(), c); err != nil {
				return err
			}
			insts, err := c.Instances(cmd.Context())
			if err != nil {
				return err
			}
			e.printTable(insts)
			return nil
		},
	}
}

// resurrect asks the daemon to restore the saved apps and says what it
// did; an error if some could not start.
func (e *env) resurrect(ctx context.Context, c *client.Client) error {
	res, err := c.Resurrect(ctx)
	for _, n := range res.Notes {
		fmt.Fprintf(e.errOut, "tend: note: %s\n", n)
	}
	if err != nil {
		return err
	}
	saved := res.SavedAt.Local().Format("2006-01-02 15:04:05")
	if len(res.Started) > 0 {
		fmt.Fprintf(e.errOut, "tend: restored %s (saved %s)\n", strings.Join(res.Started, ", "), saved)
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintf(e.errOut, "tend: already there, left as they are: %s\n", strings.Join(res.Skipped, ", "))
	}
	if len(res.Started) == 0 && len(res.Skipped) == 0 && len(res.Failed) == 0 {
		fmt.Fprintf(e.errOut, "tend: %s (saved %s) lists no app\n", res.Path, saved)
	}
	if len(res.Failed) > 0 {
		return tend.Errorf(tend.EFAILED, "could not restore: %s", strings.Join(res.Failed, "; "))
	}
	return nil
}

// unitTemplate is the systemd unit tend startup prints. The main process
// is tend's keeper (tend daemon becomes it), which starts the daemon and
// starts it again if it dies. Type=notify: READY=1 comes, through the
// keeper, once the saved apps are back. KillMode=mixed: the stop signal
// goes to the keeper alone, which passes it to the daemon, which stops
// each app gracefully (Node workers drain); systemd kills what is left
// only after TimeoutStopSec. Delegate=yes: the unit's cgroup is tend's to
// divide, a cgroup per instance (max_memory, cpu_quota, max_pids).
const unitTemplate = `# tend: the apps of {User} ({Home}), back at boot.
#
# As root:
#   tend startup > /etc/systemd/system/{Service}.service   (or sudo tee)
#   systemctl daemon-reload && systemctl enable {Service}
# Then 'tend save' whenever the app list is as it should come back. The
# unit's daemon starts at the next boot; to switch to it now, run
# 'tend save && tend kill', then 'systemctl start {Service}'.
[Unit]
Description=tend process manager for {User}
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
User={User}
Environment="TEND_HOME={Home}"
Environment="PATH={Path}"
ExecStart="{Exe}" daemon --resurrect
ExecReload="{Exe}" reload all
KillMode=mixed
TimeoutStopSec={StopTimeout}
Restart=on-failure
LimitNOFILE=infinity
Delegate=yes

[Install]
WantedBy=multi-user.target
`

// defaultUnitDir is where tend startup --install puts the unit: the
// directory of units an administrator installs.
const defaultUnitDir = "/etc/systemd/system"

func startupCmd(e *env) *cobra.Command {
	var service, unitDir string
	var install, force bool
	cmd := &cobra.Command{
		Use:     "startup",
		GroupID: "daemon",
		Short:   "Print, or install, a systemd unit that starts tend and the saved apps at boot",
		Long: `Print a systemd unit that runs the tend daemon of this user and
$TEND_HOME at boot and brings back the apps of tend save. It carries this
shell's PATH, so that interpreters found now (node from nvm, a virtualenv's
python) are found then. The comments at its top say how to install it.

With --install (as root), tend writes it to /etc/systemd/system/<name>.service
(--unit-dir for another directory), then runs systemctl daemon-reload and
systemctl enable --now <name>; a different unit already there is replaced
only with --force. If a tend daemon of this home runs now, the unit is
enabled but not started (two daemons cannot share a home): tend save,
tend kill, then systemctl start <name> switches to it. tend unstartup
undoes it all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			unit, service, err := e.unit(service)
			if err != nil {
				return err
			}
			if !install {
				_, err := io.WriteString(e.out, unit)
				return err
			}
			return e.installUnit(cmd.Context(), unitDir, service, unit, force)
		},
	}
	cmd.Flags().StringVar(&service, "service-name", "", "name of the unit (default tend-<user>)")
	cmd.Flags().BoolVar(&install, "install", false, "write the unit to --unit-dir and enable it with systemctl")
	cmd.Flags().StringVar(&unitDir, "unit-dir", defaultUnitDir, "directory of the unit, with --install")
	cmd.Flags().BoolVar(&force, "force", false, "with --install, replace a different unit (or a symlink) of that name")
	return cmd
}

// unit returns the unit of tend startup, and its service name (service,
// or tend-<user>).
func (e *env) unit(service string) (string, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", "", err
	}
	u, err := user.Current()
	if err != nil {
		return "", "", err
	}
	if service, err = serviceName(service, u.Username); err != nil {
		return "", "", err
	}
	for _, v := range []string{e.home, os.Getenv("PATH"), exe, u.Username} {
		if strings.ContainsAny(v, "\n\"\\%") {
			return "", "", tend.Errorf(tend.EINVALID, "%q cannot go into a systemd unit as it is (newline, quote, backslash or %%)", v)
		}
	}
	// Inside quotes systemd still expands $: $$ is a plain one.
	esc := strings.NewReplacer("$", "$$").Replace
	// Plain replacing, not text/template: its reflection would keep
	// every method of the binary alive (+3.7 MB, +2 MB resident).
	return strings.NewReplacer(
		"{User}", u.Username, "{Home}", esc(e.home), "{Service}", service, "{Exe}", esc(exe),
		"{Path}", esc(os.Getenv("PATH")), "{StopTimeout}", "90",
	).Replace(unitTemplate), service, nil
}

// serviceName checks the name of the unit, tend-<username> by default: a
// name systemd takes, and a file name in the unit directory.
func serviceName(service, username string) (string, error) {
	if service == "" {
		service = "tend-" + username
	}
	service = strings.TrimSuffix(service, ".service")
	ok := service != "" && !strings.HasPrefix(service, ".") && strings.IndexFunc(service, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":_.@-", r))
	}) < 0
	if !ok {
		return "", tend.Errorf(tend.EINVALID, "%q is not a systemd unit name: use letters, digits and : _ . @ - (--service-name)", service)
	}
	return service, nil
}

func unstartupCmd(e *env) *cobra.Command {
	var service, unitDir string
	var force bool
	cmd := &cobra.Command{
		Use:     "unstartup",
		GroupID: "daemon",
		Short:   "Disable, stop and remove the unit of tend startup --install",
		Long: `Disable and stop the systemd unit that tend startup --install wrote
(systemctl disable --now: its daemon stops, and the apps with it), remove
the unit file, and run systemctl daemon-reload. A file there that tend did
not write is left alone, unless --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := user.Current()
			if err != nil {
				return err
			}
			if service, err = serviceName(service, u.Username); err != nil {
				return err
			}
			return e.removeUnit(cmd.Context(), unitDir, service, force)
		},
	}
	cmd.Flags().StringVar(&service, "service-name", "", "name of the unit (default tend-<user>)")
	cmd.Flags().StringVar(&unitDir, "unit-dir", defaultUnitDir, "directory of the unit")
	cmd.Flags().BoolVar(&force, "force", false, "remove the file even if tend did not write it (or a symlink)")
	return cmd
}

// installUnit writes unit to dir/service.service, then has systemd load
// and enable it. As root, dir is systemd's: the file is written beside
// and renamed into place, so a symlink planted at its path is replaced,
// never written through, and only with force.
func (e *env) installUnit(ctx context.Context, dir, service, unit string, force bool) error {
	path := filepath.Join(dir, service+".service")
	old, err := readUnit(path)
	switch {
	case errors.Is(err, errSymlink) && !force:
		return tend.Errorf(tend.ECONFLICT, "%s is a symlink (a linked or masked unit): tend does not write through it; remove it, or --force to replace the link with tend's unit", path)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errSymlink):
	case err != nil:
		return tend.Causef(err, tend.EFAILED, "reading the unit there: %v", err)
	case old != unit && !force:
		return tend.Errorf(tend.ECONFLICT, "%s exists and is another unit: compare it with tend startup's, then --force to replace it", path)
	}
	if err == nil && old == unit {
		fmt.Fprintf(e.errOut, "tend: %s is already this unit\n", path)
	} else {
		if err := replaceFile(path, []byte(unit), 0o644); err != nil {
			return tend.Causef(err, tend.EFAILED, "writing the unit: %v (run as root, or choose --unit-dir)", err)
		}
		fmt.Fprintf(e.errOut, "tend: wrote %s\n", path)
	}
	sd := e.systemd(ctx, "systemctl daemon-reload && systemctl enable --now "+service)
	if sd == nil {
		return nil
	}
	if !sd.running {
		fmt.Fprintf(e.errOut, "tend: systemd does not run here (systemctl is-system-running: offline): the unit is enabled for a boot where it does\n")
		return sd.run(ctx, e, "enable", service)
	}
	enable := []string{"enable", "--now", service}
	if _, err := client.New(e.home).Ping(ctx); err == nil {
		enable = []string{"enable", service}
		defer fmt.Fprintf(e.errOut, "tend: a tend daemon runs for %s now, so the unit is enabled, not started: tend save && tend kill && systemctl start %s switches to it\n", e.home, service)
	}
	if err := sd.run(ctx, e, "daemon-reload"); err != nil {
		return err
	}
	return sd.run(ctx, e, enable...)
}

// removeUnit disables and stops the unit dir/service.service, removes it
// and has systemd forget it.
func (e *env) removeUnit(ctx context.Context, dir, service string, force bool) error {
	path := filepath.Join(dir, service+".service")
	old, err := readUnit(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return tend.Errorf(tend.ENOTFOUND, "no unit at %s: nothing to remove (give --service-name or --unit-dir if it was installed under another)", path)
	case errors.Is(err, errSymlink) && !force:
		return tend.Errorf(tend.ECONFLICT, "%s is a symlink, not tend's unit: --force removes the link", path)
	case errors.Is(err, errSymlink):
	case err != nil:
		return tend.Causef(err, tend.EFAILED, "reading the unit: %v", err)
	case !strings.HasPrefix(old, unitMark) && !force:
		return tend.Errorf(tend.ECONFLICT, "%s is not a unit of tend startup: --force removes it", path)
	}
	sd := e.systemd(ctx, "systemctl disable --now "+service+" && systemctl daemon-reload")
	if sd != nil {
		disable := []string{"disable", "--now", service}
		if !sd.running {
			disable = []string{"disable", service} // only the unit's links
		}
		if err := sd.run(ctx, e, disable...); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil { // the link itself, if it is one
		return tend.Causef(err, tend.EFAILED, "removing the unit: %v", err)
	}
	fmt.Fprintf(e.errOut, "tend: removed %s\n", path)
	if sd != nil && sd.running {
		return sd.run(ctx, e, "daemon-reload")
	}
	return nil
}

// unitMark starts every unit of tend startup.
const unitMark = "# tend: "

// errSymlink is readUnit's error for a symlink at the unit's path.
var errSymlink = errors.New("a symlink")

// readUnit reads the unit file at path, never through a symlink.
func readUnit(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return "", errSymlink
	}
	f, err := private.Open(path, os.O_RDONLY) // O_NOFOLLOW: a link planted since Lstat
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b), err
}

// systemctlTimeout bounds each systemctl command; enable --now waits
// for the daemon to be ready, which is the saved apps being back.
const systemctlTimeout = 2 * time.Minute

// systemctl is the systemctl command, and whether systemd runs.
type systemctl struct {
	bin     string
	running bool
}

// systemd finds systemctl and asks it whether systemd runs: in a
// container or a chroot it does not (offline), and systemctl can then
// only make or remove a unit's links, for a boot where it does. Without
// systemctl, it says what to run (todo) and returns nil.
func (e *env) systemd(ctx context.Context, todo string) *systemctl {
	bin, err := exec.LookPath("systemctl")
	if err != nil {
		fmt.Fprintf(e.errOut, "tend: systemctl is not on PATH; where systemd runs, run: %s\n", todo)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, systemctlTimeout)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "is-system-running").Output() // exit 1 unless "running"
	return &systemctl{bin: bin, running: strings.TrimSpace(string(out)) != "offline"}
}

// run runs systemctl args and says so.
func (sc *systemctl) run(ctx context.Context, e *env, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, systemctlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, sc.bin, args...).CombinedOutput()
	if err != nil {
		return tend.Causef(err, tend.EFAILED, "systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(e.errOut, "tend: systemctl %s\n", strings.Join(args, " "))
	return nil
}
