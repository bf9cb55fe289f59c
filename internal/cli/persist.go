package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
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
// only after TimeoutStopSec.
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

[Install]
WantedBy=multi-user.target
`

func startupCmd(e *env) *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:     "startup",
		GroupID: "daemon",
		Short:   "Print a systemd unit that starts tend and the saved apps at boot",
		Long: `Print a systemd unit that runs the tend daemon of this user and
$TEND_HOME at boot and brings back the apps of tend save. It carries this
shell's PATH, so that interpreters found now (node from nvm, a virtualenv's
python) are found then. The comments at its top say how to install it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			u, err := user.Current()
			if err != nil {
				return err
			}
			if service == "" {
				service = "tend-" + u.Username
			}
			for _, v := range []string{e.home, os.Getenv("PATH"), exe, u.Username, service} {
				if strings.ContainsAny(v, "\n\"\\%") {
					return tend.Errorf(tend.EINVALID, "%q cannot go into a systemd unit as it is (newline, quote, backslash or %%)", v)
				}
			}
			// Inside quotes systemd still expands $: $$ is a plain one.
			esc := strings.NewReplacer("$", "$$").Replace
			// Plain replacing, not text/template: its reflection would keep
			// every method of the binary alive (+3.7 MB, +2 MB resident).
			_, err = strings.NewReplacer(
				"{User}", u.Username, "{Home}", esc(e.home), "{Service}", service, "{Exe}", esc(exe),
				"{Path}", esc(os.Getenv("PATH")), "{StopTimeout}", "90",
			).WriteString(e.out, unitTemplate)
			return err
		},
	}
	cmd.Flags().StringVar(&service, "service-name", "", "name of the unit (default tend-<user>)")
	return cmd
}
