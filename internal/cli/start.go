package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/client"
	"github.com/tendhq/tend/internal/config"
)

func startCmd(e *env) *cobra.Command {
	var f startFlags
	cmd := &cobra.Command{
		Use:     "start <script|command|config file> [-- args...]",
		GroupID: "apps",
		Short:   "Start an app, a command, or every app of an ecosystem file",
		Long: `Start an app and print what runs.

  tend start server.js -i max          one instance per core
  tend start ./bin/api -- --flag x     args after -- go to the app
  tend start "python3 app.py"          a command line
  tend start tend.yaml --env production   every app of the file, with env_production

The interpreter follows the extension (.js .mjs .cjs: node, .py: python3,
.rb: ruby, .sh: bash); other files are executed. The environment of this
shell reaches the app, under --env and what tend sets (TEND_APP,
TEND_INSTANCE, NODE_APP_INSTANCE).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if res, ok, err := e.startExisting(cmd, args); ok || err != nil {
				if err == nil {
					e.printTable(res.Instances)
				}
				return err
			}
			specs, err := f.specs(cmd, args)
			if err != nil {
				return err
			}
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			e.sayOrder(specs, f.added)
			res, err := e.start(cmd.Context(), c, tend.StartRequest{Apps: specs, Force: f.force}, "started")
			if err != nil {
				return err
			}
			e.printTable(res.Instances)
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// sayOrder tells, before a start that waits for them, which apps wait
// for which, and which start only because --only's apps need them.
func (e *env) sayOrder(specs []tend.AppSpec, added []string) {
	if len(added) > 0 {
		who := "it depends"
		if len(specs)-len(added) > 1 {
			who = "they depend"
		}
		fmt.Fprintf(e.errOut, "tend: --only: also starting %s, which %s on\n", strings.Join(added, ", "), who)
	}
	for _, s := range specs {
		if len(s.DependsOn) == 0 {
			continue
		}
		items := make([]string, len(s.DependsOn))
		for i, d := range s.DependsOn {
			items[i] = d.String()
		}
		fmt.Fprintf(e.errOut, "tend: %s waits for %s\n", s.Name, strings.Join(items, ", "))
	}
}

// start asks the daemon to start req's apps, and says that it did (done:
// "started", "imported") with the daemon's notes.
func (e *env) start(ctx context.Context, c *client.Client, req tend.StartRequest, done string) (tend.ActionResult, error) {
	res, err := c.Start(ctx, req)
	if err != nil {
		return res, err
	}
	for _, s := range req.Apps {
		fmt.Fprintf(e.errOut, "tend: %s %s (%d %s)\n", done, s.Name, s.Instances, plural(s.Instances, "instance"))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(e.errOut, "tend: note: %s\n", n)
	}
	return res, nil
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// startExisting handles `tend start <name|id>` for an app tend already has,
// as PM2 does: its stopped or errored instances start again. ok is false
// when args name no such app (then they are a script to start).
func (e *env) startExisting(cmd *cobra.Command, args []string) (tend.ActionResult, bool, error) {
	target := args[0]
	if len(args) != 1 || strings.ContainsAny(target, "/ \t") || config.IsConfigFile(target) {
		return tend.ActionResult{}, false, nil
	}
	if _, err := os.Stat(target); err == nil {
		return tend.ActionResult{}, false, nil
	}
	c, insts, err := e.instances(cmd.Context())
	if err != nil {
		return tend.ActionResult{}, false, err
	}
	var ids []string
	for _, in := range insts {
		if (in.Name == target || strconv.Itoa(in.ID) == target) && in.PID == 0 {
			ids = append(ids, strconv.Itoa(in.ID))
		}
	}
	known := slices.ContainsFunc(insts, func(in tend.Instance) bool { return in.Name == target || strconv.Itoa(in.ID) == target })
	if !known {
		return tend.ActionResult{}, false, nil
	}
	if len(ids) == 0 {
		return tend.ActionResult{}, true, tend.Errorf(tend.ECONFLICT, "%s is already running (tend restart %s to restart it)", target, target)
	}
	res, err := c.Act(cmd.Context(), "restart", ids)
	if err == nil {
		fmt.Fprintf(e.errOut, "tend: started %s again (%d %s)\n", target, len(ids), plural(len(ids), "instance"))
	}
	return res, true, err
}
