package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/human"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/daemon"
	"github.com/tendhq/tend/internal/keeper"
)

var actionHelp = map[string]string{
	"stop":    "Stop apps; they stay in the list as stopped",
	"restart": "Stop then start apps (the port stays bound)",
	"delete":  "Stop apps and remove them from the list",
	"flush":   "Empty the log files of apps",
	"reset":   "Set apps' restart counters back to 0 (PM2's reset)",
}

// actionCmd builds stop, restart, delete and flush: they all take targets.
func actionCmd(e *env, action string) *cobra.Command {
	var only []string
	var updateEnv bool
	cmd := &cobra.Command{
		Use:     action + " <id|name|all|config file>...",
		GroupID: "apps",
		Short:   actionHelp[action],
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 { // flush and reset alone mean every app
				args = []string{"all"}
			}
			targets, err := expandTargets(args, only)
			if err != nil {
				return err
			}
			if updateEnv {
				// PM2's restart --update-env: the new environment comes
				// with a replacement as a reload makes it, one by one.
				return e.reloadWithShellEnv(cmd, targets)
			}
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Act(cmd.Context(), action, targets)
			if err != nil {
				return interrupted(cmd.Context(), err, action+" of "+strings.Join(args, " "))
			}
			fmt.Fprintf(e.errOut, "tend: %s: %d %s\n", action, len(res.Affected), plural(len(res.Affected), "instance"))
			if action != "flush" {
				e.printTable(res.Instances)
			}
			return nil
		},
	}
	if action == "flush" || action == "reset" {
		cmd.GroupID = "look"
		cmd.Use = action + " [id|name|all]..."
		cmd.Args = cobra.ArbitraryArgs
	}
	cmd.Flags().StringSliceVar(&only, "only", nil, "with a config file: only these of its apps, app1,app2")
	if action == "restart" {
		cmd.Flags().BoolVarP(&updateEnv, "update-env", "a", false, "with this shell's environment (added or changed variables), replacing the instances one by one as tend reload does")
	}
	return cmd
}

// expandTargets replaces config files among targets by the names of
// their apps.
func expandTargets(args, only []string) ([]string, error) {
	targets, _, err := loadTargets(args, "", only)
	return targets, err
}

// loadTargets expands config files among args into the names of their
// apps, and returns those apps' specs (with env_<envName> applied).
func loadTargets(args []string, envName string, only []string) (targets []string, specs []tend.AppSpec, err error) {
	if len(only) > 0 && !slices.ContainsFunc(args, config.IsConfigFile) {
		return nil, nil, usageErr("--only picks apps of a config file, and none is among %s", strings.Join(args, " "))
	}
	wd, _ := os.Getwd()
	for _, a := range args {
		if !config.IsConfigFile(a) {
			targets = append(targets, a)
			continue
		}
		apps, err := config.Load(a, config.Options{EnvName: envName, Cwd: wd, BaseEnv: os.Environ()})
		if err == nil {
			apps, err = onlyApps(apps, only)
		}
		if err != nil {
			return nil, nil, err
		}
		for _, s := range apps {
			targets = append(targets, s.Name)
		}
		specs = append(specs, apps...)
	}
	return targets, specs, nil
}

func lsCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls [id|name|namespace]...",
		Aliases: []string{"list", "ps", "status"},
		GroupID: "look",
		Short:   "List every instance (or those of the apps named): status, pid, uptime, restarts, cpu, memory",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			insts, err := c.InstancesOf(cmd.Context(), args...)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(e.out).Encode(insts)
			}
			e.printTable(insts)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of instances")
	return cmd
}

func describeCmd(e *env) *cobra.Command {
	var asJSON, withEnv bool
	cmd := &cobra.Command{
		Use:     "describe <id|name>",
		Aliases: []string{"desc", "info", "show"},
		GroupID: "look",
		Short:   "Show one app's full picture: paths, command, policy, instances, last exits",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			apps, err := c.Describe(cmd.Context(), args[0], withEnv)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(e.out).Encode(apps)
			}
			for _, a := range apps {
				e.printDescribe(a)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&withEnv, "env", false, "show environment values, not only keys")
	return cmd
}

func logsCmd(e *env) *cobra.Command {
	var q client.LogQuery
	var errOnly, outOnly, noStream, asJSON, stamp, raw bool
	instance := -1
	cmd := &cobra.Command{
		Use:     "logs [id|name|all]",
		GroupID: "look",
		Short:   "Print the last log lines, then follow new ones across restarts",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q.Target = targetArg(args)
			if errOnly && outOnly {
				return usageErr("--err and --out exclude each other")
			}
			if errOnly {
				q.Stream = "err"
			} else if outOnly {
				q.Stream = "out"
			}
			if q.Lines < 0 {
				return usageErr("--lines must not be negative")
			}
			q.Follow = !noStream
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(e.out)
			err = c.Logs(cmd.Context(), q, func(l tend.LogLine) error {
				if instance >= 0 && l.Instance != instance {
					return nil
				}
				if asJSON {
					return enc.Encode(l)
				}
				if raw {
					_, err := fmt.Fprintln(e.out, l.Message)
					return err
				}
				_, err := fmt.Fprintln(e.out, e.logLine(l, stamp))
				return err
			})
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&q.Lines, "lines", 15, "how many past lines to print per instance")
	fl.BoolVar(&errOnly, "err", false, "only stderr")
	fl.BoolVar(&outOnly, "out", false, "only stdout")
	fl.BoolVar(&noStream, "nostream", false, "print the past lines and exit")
	fl.BoolVar(&asJSON, "json", false, "print JSON lines")
	fl.BoolVar(&stamp, "timestamp", false, "prefix lines with the time they were captured")
	fl.BoolVar(&raw, "raw", false, "print the lines as the app wrote them, without app[instance]")
	fl.IntVar(&instance, "instance", -1, "only the instance with this index (NODE_APP_INSTANCE)")
	return cmd
}

// logLine is a log line as `tend logs` prints it:
//
//	web[0] | listening on 3000
//	web[1] ! an error (stderr)
func (e *env) logLine(l tend.LogLine, stamp bool) string {
	prefix := fmt.Sprintf("%s[%d]", l.App, l.Instance)
	sep := e.paint(cyan, prefix+" |")
	if l.Stream == "err" {
		sep = e.paint(red, prefix+" !")
	}
	if stamp {
		sep = l.Time.Local().Format("2006-01-02T15:04:05.000") + " " + sep
	}
	return sep + " " + l.Message
}

// targetArg is the optional target of logs and events: "" for all.
func targetArg(args []string) string {
	if len(args) == 1 && args[0] != "all" {
		return args[0]
	}
	return ""
}

func eventsCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "events [id|name|all]",
		GroupID: "look",
		Short:   "Print the state of instances, then each change: starts, exits, restarts, readiness",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := targetArg(args)
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(e.out)
			err = c.Events(cmd.Context(), target, func(ev tend.Event) error {
				if asJSON {
					return enc.Encode(ev)
				}
				_, err := fmt.Fprintln(e.out, e.eventLine(ev))
				return err
			})
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	return cmd
}

// eventLine is an event as `tend events` prints it:
//
//	15:04:05.000 web[1] id 3: online, pid 4242, ready, 2 restarts
func (e *env) eventLine(ev tend.Event) string {
	at := ev.Time.Local().Format("15:04:05.000")
	switch ev.Kind {
	case tend.EventLost:
		return fmt.Sprintf("%s %d events lost: this reader fell behind", at, ev.Lost)
	case tend.EventRemoved:
		return fmt.Sprintf("%s %s[%d] id %d: removed", at, ev.App, ev.Instance, ev.ID)
	}
	parts := []string{string(ev.Status)}
	if ev.PID > 0 {
		parts = append(parts, fmt.Sprintf("pid %d", ev.PID))
	}
	if ev.Ready {
		parts = append(parts, "ready")
	}
	if ev.Restarts > 0 {
		parts = append(parts, fmt.Sprintf("%d restarts", ev.Restarts))
	}
	if x := ev.LastExit; x != nil && ev.Status != tend.StatusOnline {
		how := fmt.Sprintf("exit code %d", x.Code)
		if x.Signal != "" {
			how = "killed by " + x.Signal
		}
		parts = append(parts, fmt.Sprintf("last exit: %s (%s)", how, x.Cause))
	}
	if ev.Problem != "" {
		parts = append(parts, ev.Problem)
	}
	return fmt.Sprintf("%s %s[%d] id %d: %s", at, ev.App, ev.Instance, ev.ID, strings.Join(parts, ", "))
}

func pingCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "ping",
		GroupID: "daemon",
		Short:   "Check that the daemon answers (starting it if needed)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			start := time.Now()
			p, err := c.Ping(cmd.Context())
			if err != nil {
				return err
			}
			keeper := "no keeper"
			if p.KeeperPID > 0 {
				keeper = fmt.Sprintf("keeper pid %d", p.KeeperPID)
			}
			fmt.Fprintf(e.out, "pong: daemon %s, pid %d, %s, home %s, up %s, answered in %s\n", p.Version, p.PID, keeper, p.Home,
				human.Duration(time.Since(p.StartedAt)), time.Since(start).Round(10*time.Microsecond))
			return nil
		},
	}
}

func killCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "kill",
		GroupID: "daemon",
		Short:   "Stop every app, then the daemon",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := client.New(e.home)
			c.AllowVersionMismatch = true
			ctx := context.WithoutCancel(cmd.Context())
			p, err := c.Ping(ctx)
			if errors.Is(err, client.ErrNoDaemon) {
				fmt.Fprintln(e.errOut, "tend: no daemon is running")
				return nil
			}
			if err != nil {
				return err
			}
			// Watch the daemon's exit, and its keeper's, from before asking
			// for it.
			exited, watchErr := watchExit(p.PID)
			var keeperExited <-chan struct{}
			if p.KeeperPID > 0 {
				keeperExited, _ = watchExit(p.KeeperPID)
			}
			res, err := c.Kill(ctx)
			if err != nil {
				return err
			}
			if watchErr == nil {
				for pid, done := range map[int]<-chan struct{}{p.PID: exited, p.KeeperPID: keeperExited} {
					if done == nil {
						continue
					}
					select {
					case <-done:
					case <-time.After(daemonStartTimeout):
						return tend.Errorf(tend.EFAILED, "the daemon stopped its apps but pid %d (the daemon or its keeper) did not exit", pid)
					}
				}
			}
			fmt.Fprintf(e.errOut, "tend: stopped %d %s and the daemon\n", len(res.Affected), plural(len(res.Affected), "instance"))
			return nil
		},
	}
}

func daemonCmd(e *env) *cobra.Command {
	var resurrect bool
	cmd := &cobra.Command{
		Use:     "daemon",
		GroupID: "daemon",
		Short:   "Run the daemon in the foreground (for systemd; normally started on demand)",
		Long: `Run the daemon in the foreground, for systemd (see tend startup). Under
Type=notify it says READY=1 once it serves, after --resurrect brought the
saved apps back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Getenv(keeper.FDEnv) == "" {
				// Run by systemd or by hand: become the keeper (same
				// pid), which runs this command again as its daemon.
				var flags []string
				if resurrect {
					flags = append(flags, "--resurrect")
				}
				return becomeKeeper(flags)
			}
			ready := func(sdNotify func(string) error) {
				go func() {
					if resurrect {
						c := client.New(e.home)
						if err := e.resurrect(context.Background(), c); err != nil {
							fmt.Fprintln(e.errOut, "tend: resurrect: "+err.Error())
						}
					}
					sdNotify("READY=1")
				}()
			}
			err := daemon.Run(e.home, daemon.RunOptions{Ready: ready, Pod: daemon.Pod{DrainDelay: -1}})
			if errors.Is(err, daemon.ErrRunning) {
				return tend.Errorf(tend.ECONFLICT, "%v (%s)", err, e.home)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&resurrect, "resurrect", false, "start the saved apps (tend save) once serving")
	return cmd
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func signalCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "signal <signal> <id|name|all>...",
		Aliases: []string{"sendSignal"},
		GroupID: "apps",
		Short:   "Send a signal to the processes of instances (PM2's sendSignal)",
		Long: `Send a signal to the process of each selected instance that runs: by name
(SIGUSR2, USR2, usr2) or number. The app decides what it means; to stop or
restart an app, use tend stop or tend restart, which also drain it.

  tend signal SIGUSR2 api        every instance of api
  tend signal HUP 3              instance id 3 only`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := tend.ParseSignal(args[0])
			if err != nil {
				return usageErr("%v (a name such as SIGUSR2 or USR2, or a number)", err)
			}
			targets, err := expandTargets(args[1:], nil)
			if err != nil {
				return err
			}
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Signal(cmd.Context(), targets, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.errOut, "tend: sent %s to %d %s\n", name, len(res.Affected), plural(len(res.Affected), "instance"))
			return nil
		},
	}
}

func sendCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "send <id|name|all> <json>",
		GroupID: "apps",
		Short:   "Send a JSON message to an instance, or to every instance of an app",
		Long: `Send a JSON message to apps.

Node apps receive it with process.on('message'). Other apps read JSON lines
on the file descriptor named by $TEND_CHANNEL_FD, and may write JSON lines
back on it. What an app sends shows in the daemon's log.

  tend send api '{"reload_config": true}'     every instance of api
  tend send 3 '"ping"'                        instance id 3 only`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg := json.RawMessage(args[1])
			if !json.Valid(msg) {
				return usageErr("the message %s is not JSON (quote strings: '\"text\"')", args[1])
			}
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Send(cmd.Context(), []string{args[0]}, msg)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.errOut, "tend: sent to %d %s\n", len(res.Affected), plural(len(res.Affected), "instance"))
			return nil
		},
	}
}
