// Package cli is tend's command line: cobra commands over the control
// client. Main is all that cmd/tend calls.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/activation"
	"github.com/tendhq/tend/internal/daemon"
)

// Main runs the tend command line with args (without the program name)
// and returns the process exit code.
func Main(args []string) int {
	if len(args) > 0 {
		// Roles of tend's own processes, decided before the command line
		// is built: they are re-executed often (the shim for every
		// instance) or live long (the keeper), and need none of it.
		switch args[0] {
		case activation.ShimArg:
			// The daemon re-executes tend as the socket activation shim.
			return activation.Main(args[1:], os.Stderr)
		case keeperArg:
			return runKeeper(args[1:])
		case daemon.CompatArg:
			fmt.Println(daemon.Compat())
			return 0
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if errors.Is(err, client.ErrNoDaemon) {
		err = tend.Errorf(tend.EFAILED, "no tend daemon is running")
	}
	if strings.HasPrefix(err.Error(), "unknown command") {
		err = unknownCommand(root, args)
	}
	fmt.Fprintln(os.Stderr, "tend: "+err.Error())
	return tend.ExitCode(err)
}

// env is what every command needs: where to write and how to reach the
// daemon.
type env struct {
	out, errOut io.Writer
	home        string
	color       bool // ANSI colour on out
	tty         bool // out is a terminal
}

func newRoot(out, errOut io.Writer) *cobra.Command {
	e := &env{out: out, errOut: errOut}
	e.tty = isTerminal(out)
	e.color = e.tty && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	root := &cobra.Command{
		Use:   "tend",
		Short: "A process manager with a cluster mode, for any web service",
		Long: `tend runs your apps and keeps them running: one instance per core on one
port, crash healing with backoff, reloads without dropping a request, logs,
and a live view of what runs. It works for unmodified Node apps and for
Python, Go, Ruby or any binary.

The first command starts the tend daemon, which owns every app; state and
logs live in $TEND_HOME (default ~/.tend).`,
		Version:       tend.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			h, err := tend.DefaultHome()
			if err != nil {
				return err
			}
			e.home = string(h)
			// Before anything is read there or sent to its socket: the
			// home must be this user's own.
			return daemon.EnsureHome(e.home)
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return tend.Errorf(tend.EINVALID, "%v (see tend %s --help)", err, c.Name())
	})
	root.AddGroup(&cobra.Group{ID: "apps", Title: "Running apps:"}, &cobra.Group{ID: "look", Title: "Seeing what runs:"}, &cobra.Group{ID: "daemon", Title: "The daemon:"})
	root.AddCommand(
		startCmd(e), actionCmd(e, "stop"), actionCmd(e, "restart"), reloadCmd(e), scaleCmd(e), actionCmd(e, "delete"),
		lsCmd(e), describeCmd(e), logsCmd(e), eventsCmd(e), actionCmd(e, "flush"), actionCmd(e, "reset"), monitCmd(e),
		sendCmd(e), signalCmd(e), pingCmd(e), killCmd(e), updateCmd(e), daemonCmd(e), runCmd(e), saveCmd(e), resurrectCmd(e), startupCmd(e),
		startOrCmd(e, "reload"), startOrCmd(e, "restart"), jlistCmd(e, false), jlistCmd(e, true), envCmd(e), ecosystemCmd(e), exportCmd(e),
		importCmd(e), unstartupCmd(e), webCmd(e),
	)
	// Wrong arguments are bad input (exit 2), said with the usage line.
	for _, c := range root.Commands() {
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usageErr("%v; usage: %s", err, cmd.UseLine())
				}
				return nil
			}
		}
	}
	return root
}

// client returns a client of a running daemon, starting one if needed.
func (e *env) client(ctx context.Context) (*client.Client, error) {
	c := client.New(e.home)
	if _, err := c.Ping(ctx); err != nil {
		if !errors.Is(err, client.ErrNoDaemon) {
			return nil, err
		}
		if err := spawnDaemon(ctx, e.home, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// instances returns a client of a running daemon (starting one if needed)
// and every instance it has.
func (e *env) instances(ctx context.Context) (*client.Client, []tend.Instance, error) {
	c, err := e.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	insts, err := c.Instances(ctx)
	return c, insts, err
}

// interrupted words the error of a request the user cut short (Ctrl-C,
// SIGTERM): the daemon finishes what it began, whatever the CLI does, so
// the command says so and returns rather than wait.
func interrupted(ctx context.Context, err error, doing string) error {
	if err != nil && ctx.Err() != nil {
		return tend.Errorf(tend.EFAILED, "interrupted; the daemon goes on with the %s (tend ls shows where it is)", doing)
	}
	return err
}

// usageErr is an error for bad arguments, exit code 2.
func usageErr(format string, args ...any) error {
	return tend.Errorf(tend.EINVALID, format, args...)
}
