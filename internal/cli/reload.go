package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/human"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
)

func reloadCmd(e *env) *cobra.Command {
	var updateEnv bool
	var envs, unset, only []string
	var parallel int
	cmd := &cobra.Command{
		Use:     "reload <id|name|all|config file>...",
		GroupID: "apps",
		Short:   "Replace instances one by one without dropping a request",
		Long: `Reload apps with no downtime: for each instance, start a new process, wait
until it is ready, take the old one out of rotation, stop it gracefully, go on.

If a new process crashes or is not ready within listen_timeout, it is killed,
the old ones keep serving, the reload stops and tend exits non-zero.

Ready means: READY=1 on the instance's NOTIFY_SOCKET (sd_notify); with
--wait-ready, process.send('ready'); for Node cluster workers, listening; an
HTTP or TCP probe (--ready-url); otherwise listen_timeout expiring.

  tend reload api                      new code, same environment
  tend reload api --update-env         this shell's variables added or changed (none removed)
  tend reload api --unset-env DEBUG    without DEBUG
  tend reload tend.yaml --env production   the file's settings`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			req := tend.ReloadRequest{Parallel: parallel}
			envName := ""
			for _, v := range envs {
				if !strings.Contains(v, "=") {
					envName = v
				}
			}
			if req.Targets, req.Apps, err = loadTargets(args, envName, only); err != nil {
				return err
			}
			if updateEnv {
				req.ShellEnv = os.Environ()
			}
			for _, kv := range envs {
				if !strings.Contains(kv, "=") {
					continue // a name: the file's env_<name>
				}
				k, v, err := tend.ParseEnvArg(kv)
				if err != nil {
					return usageErr("--env: %v", err)
				}
				if req.Env == nil {
					req.Env = map[string]string{}
				}
				req.Env[k] = v
			}
			req.UnsetEnv = unset
			res, err := withReports(c.Reload(ctx, req))
			if res == nil {
				return interrupted(ctx, err, "reload of "+strings.Join(args, " "))
			}
			e.printReports(res.Reports)
			if len(res.Instances) > 0 {
				e.printTable(res.Instances)
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&updateEnv, "update-env", "a", false, "update the environment the app was started from with this shell's (a variable this shell lacks stays: see --unset-env)")
	cmd.Flags().StringArrayVar(&unset, "unset-env", nil, "KEY to remove from the new instances' environment (repeatable)")
	cmd.Flags().StringArrayVar(&envs, "env", nil, "KEY=VALUE for the new instances (repeatable); with a config file, NAME selects env_NAME")
	cmd.Flags().IntVar(&parallel, "parallel", 1, "instances replaced at once")
	cmd.Flags().StringSliceVar(&only, "only", nil, "with a config file: only these of its apps, app1,app2")
	return cmd
}

func scaleCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "scale <app> <N|+N|-N>",
		GroupID: "apps",
		Short:   "Add or remove instances without a failed request",
		Long: `Set the number of instances of an app. New instances must become ready;
removed ones (highest index first) leave the rotation and stop gracefully.

  tend scale api 4      exactly 4
  tend scale api +2     2 more
  tend scale api -1     1 fewer`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := args[1]
			relative := strings.HasPrefix(spec, "+") || strings.HasPrefix(spec, "-")
			n, err := strconv.Atoi(spec)
			if err != nil || !relative && n < 1 {
				return usageErr("scale %s: %q is not a count (N of at least 1, +N or -N)", args[0], spec)
			}
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			res, err := withReports(c.Scale(ctx, args[0], n, relative))
			if res == nil {
				return interrupted(ctx, err, "scale of "+args[0])
			}
			e.printReports(res.Reports)
			e.printTable(res.Instances)
			return err
		},
	}
	// Flags end at the first argument: -1 in "scale api -1" is a count.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// withReports returns what a reload or scale did, also when it failed
// (the error then carries the reports); nil when there is nothing to show.
func withReports(res tend.ReloadResult, err error) (*tend.ReloadResult, error) {
	if rerr, ok := errors.AsType[*client.ResultError](err); ok {
		return &rerr.Result, err
	}
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// printReports says what a reload or scale did to each instance.
func (e *env) printReports(reps []tend.ReloadReport) {
	for _, r := range reps {
		outcome := e.paint(green, "done")
		if !r.OK {
			outcome = e.paint(red, "stopped")
		}
		fmt.Fprintf(e.errOut, "tend: %s %s: %s in %s\n", r.Action, r.App, outcome, human.Duration(time.Duration(r.DurationMS)*time.Millisecond))
		for _, st := range r.Steps {
			var parts []string
			if st.NewPID != 0 {
				p := fmt.Sprintf("new pid %d", st.NewPID)
				if st.Error == "" {
					p += fmt.Sprintf(" ready after %s (%s)", human.Duration(time.Duration(st.ReadyMS)*time.Millisecond), st.ReadyBy)
				}
				parts = append(parts, p)
			}
			switch {
			case len(st.OwnPorts) > 0:
				// Stopped before the new one started: say so first.
				parts = append([]string{fmt.Sprintf("old pid %d stopped first, after %s", st.OldPID, human.Duration(time.Duration(st.StoppedMS)*time.Millisecond))}, parts...)
			case st.OldPID != 0 && st.Error == "":
				parts = append(parts, fmt.Sprintf("old pid %d stopped after %s", st.OldPID, human.Duration(time.Duration(st.StoppedMS)*time.Millisecond)))
			}
			if st.Error != "" {
				parts = append(parts, e.paint(red, st.Error))
				if st.OldPID != 0 && len(st.OwnPorts) == 0 {
					parts = append(parts, fmt.Sprintf("old pid %d kept serving", st.OldPID))
				}
			}
			fmt.Fprintf(e.errOut, "  %s[%d] (id %d): %s\n", r.App, st.Instance, st.ID, strings.Join(parts, ", "))
		}
		if i := slices.IndexFunc(r.Steps, func(st tend.ReloadStep) bool { return len(st.OwnPorts) > 0 }); i >= 0 {
			st := r.Steps[i]
			fmt.Fprintf(e.errOut, "  %s: %s listens on port %d itself, so each instance stopped before its new process could bind it and was down in between; for a %s without downtime, %s\n",
				e.paint(yellow, "warning"), r.App, st.OwnPorts[0], r.Action, st.Hint)
		}
		if len(r.EnvChanges) > 0 {
			fmt.Fprintf(e.errOut, "  environment: %s\n", strings.Join(r.EnvChanges, " "))
		}
		if r.Error != "" && !slices.ContainsFunc(r.Steps, func(st tend.ReloadStep) bool { return st.Error != "" }) {
			fmt.Fprintf(e.errOut, "  %s\n", r.Error)
		}
	}
}
