package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
)

// The verbs PM2 users type in deploy scripts and at the prompt, with
// PM2's meaning: startOrReload, startOrRestart, jlist, prettylist, env,
// ecosystem.

// onlyApps keeps the specs named in only ("app1,app2", --only); every name
// must be one of the file's.
func onlyApps(specs []tend.AppSpec, only []string) ([]tend.AppSpec, error) {
	if len(only) == 0 {
		return specs, nil
	}
	var names []string
	for _, o := range only {
		for n := range strings.SplitSeq(o, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(specs, func(s tend.AppSpec) bool { return s.Name == n }) {
			return nil, tend.Errorf(tend.ENOTFOUND, "--only %s: the file has no app of that name", n)
		}
	}
	return slices.DeleteFunc(slices.Clone(specs), func(s tend.AppSpec) bool { return !slices.Contains(names, s.Name) }), nil
}

// startOrCmd is startOrReload and startOrRestart: the file's apps that do
// not run start; those that do are reloaded with the file's settings, or
// restarted as they are.
func startOrCmd(e *env, then string) *cobra.Command {
	var envName string
	var only []string
	name := "startOr" + strings.ToUpper(then[:1]) + then[1:]
	cmd := &cobra.Command{
		Use:     name + " <config file>",
		GroupID: "apps",
		Short:   "Start the file's apps that do not run, " + then + " those that do (PM2's deploy verb)",
		Long: "Start the file's apps that do not run, and " + then + " those that do: startOrReload replaces their\n" +
			"instances one by one with the file's settings (and --env NAME's block); startOrRestart restarts them\n" +
			"as they run, settings unchanged (use startOrReload to apply a changed file).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !config.IsConfigFile(args[0]) {
				return usageErr("%s takes an ecosystem file (.yaml, .yml, .json, .config.js), not %s", name, args[0])
			}
			wd, _ := os.Getwd()
			specs, err := config.Load(args[0], config.Options{EnvName: envName, Cwd: wd, BaseEnv: os.Environ()})
			if err == nil {
				specs, err = onlyApps(specs, only)
			}
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, insts, err := e.instances(ctx)
			if err != nil {
				return err
			}
			missing, present := byPresence(specs, insts)
			if len(missing) > 0 {
				if _, err := e.start(ctx, c, tend.StartRequest{Apps: missing}, "started"); err != nil {
					return err
				}
			}
			if len(present) > 0 {
				if err := e.thenPresent(cmd, then, present); err != nil {
					return err
				}
			}
			all, err := c.Instances(ctx)
			if err == nil {
				e.printTable(all)
			}
			return err
		},
	}
	if then == "reload" {
		cmd.Aliases = []string{"startOrGracefulReload"}
	}
	cmd.Flags().StringVar(&envName, "env", "", "NAME: apply the file's env_NAME block")
	cmd.Flags().StringSliceVar(&only, "only", nil, "only these apps of the file: app1,app2")
	return cmd
}

// thenPresent reloads (with the file's settings) or restarts the apps
// that run.
func (e *env) thenPresent(cmd *cobra.Command, then string, present []tend.AppSpec) error {
	ctx := cmd.Context()
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	names := make([]string, len(present))
	for i, s := range present {
		names[i] = s.Name
	}
	if then == "restart" {
		res, err := c.Act(ctx, "restart", names)
		if err != nil {
			return interrupted(ctx, err, "restart of "+strings.Join(names, " "))
		}
		fmt.Fprintf(e.errOut, "tend: restart: %d %s\n", len(res.Affected), plural(len(res.Affected), "instance"))
		return nil
	}
	res, err := withReports(c.Reload(ctx, tend.ReloadRequest{Targets: names, Apps: present, Parallel: 1}))
	if res == nil {
		return interrupted(ctx, err, "reload of "+strings.Join(names, " "))
	}
	e.printReports(res.Reports)
	return err
}

// reloadWithShellEnv is restart --update-env: a reload of targets with
// this shell's environment.
func (e *env) reloadWithShellEnv(cmd *cobra.Command, targets []string) error {
	ctx := cmd.Context()
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	res, err := withReports(c.Reload(ctx, tend.ReloadRequest{Targets: targets, ShellEnv: os.Environ(), Parallel: 1}))
	if res == nil {
		return interrupted(ctx, err, "restart of "+strings.Join(targets, " "))
	}
	e.printReports(res.Reports)
	if len(res.Instances) > 0 {
		e.printTable(res.Instances)
	}
	return err
}

// jlistCmd is PM2's jlist (one line of JSON) and prettylist (indented).
func jlistCmd(e *env, pretty bool) *cobra.Command {
	name := map[bool]string{false: "jlist", true: "prettylist"}[pretty]
	return &cobra.Command{
		Use:     name,
		GroupID: "look",
		Short:   "Every instance as JSON, as tend ls --json (PM2's " + name + ")",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, insts, err := e.instances(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(e.out)
			if pretty {
				enc.SetIndent("", "  ")
			}
			return enc.Encode(insts)
		},
	}
}

// envCmd prints the environment an instance's process runs with, as PM2's
// env does: read from the process itself, so it is what the app sees.
func envCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "env <id>",
		GroupID: "look",
		Short:   "Print the environment of instance <id>'s process",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.Atoi(args[0])
			if err != nil {
				return usageErr("env takes an instance id (tend ls shows them), not %q", args[0])
			}
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			insts, err := c.InstancesOf(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if len(insts) != 1 || insts[0].ID != id {
				return tend.Errorf(tend.ENOTFOUND, "no instance has id %d (tend ls)", id)
			}
			if insts[0].PID == 0 {
				return tend.Errorf(tend.EFAILED, "instance %d (%s) is %s: no process to read", id, insts[0].Name, insts[0].Status)
			}
			b, err := os.ReadFile("/proc/" + strconv.Itoa(insts[0].PID) + "/environ")
			if err != nil {
				return tend.Causef(err, tend.EFAILED, "reading the environment of pid %d: %v", insts[0].PID, err)
			}
			vars := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			if !slices.Contains(vars, "TEND_ID="+strconv.Itoa(id)) {
				// It ended, and its pid is another process's now.
				return tend.Errorf(tend.EFAILED, "instance %d's process (pid %d) is gone: try again", id, insts[0].PID)
			}
			sort.Strings(vars)
			_, err = fmt.Fprintln(e.out, strings.Join(vars, "\n"))
			return err
		},
	}
}

// ecosystemCmd writes a sample ecosystem file: one app, and every other
// setting commented out with what it does, from the table of settings.
func ecosystemCmd(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "ecosystem [file]",
		Aliases: []string{"init"},
		GroupID: "apps",
		Short:   "Write a sample ecosystem file (tend.yaml) that names every setting",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "tend.yaml"
			if len(args) == 1 {
				path = args[0]
			}
			if err := writeNewFile(path, sampleFile(), 0o644, force); err != nil {
				return err
			}
			fmt.Fprintf(e.errOut, "tend: wrote %s; edit it, then tend start %s\n", path, path)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "overwrite the file")
	return cmd
}

// sampleFile is the sample ecosystem file: name, script and instances
// set, every other setting there as a comment with an example.
func sampleFile() []byte {
	var b bytes.Buffer
	b.WriteString("# An ecosystem file for tend (PM2's keys; tend start reads PM2's files too).\n" +
		"# tend start tend.yaml starts its apps; tend reload tend.yaml applies changes.\n" +
		"# Every key, with its flag and default: https://github.com/tendhq/tend#settings\n" +
		"apps:\n  - name: api\n    script: ./server.js\n    instances: max\n")
	for _, g := range tend.Groups {
		b.WriteString("\n    # " + g.Title + "\n")
		for _, st := range tend.Settings {
			if st.Group != g.ID || st.Key == "name" || st.Key == "script" || st.Key == "instances" {
				continue
			}
			ex := st.Example
			switch {
			case st.Kind == tend.KindEnv:
				k, v, _ := strings.Cut(ex, "=")
				ex = "{" + k + ": " + v + "}"
			case st.Kind != tend.KindSwitch && strings.ContainsAny(ex, ":#{}[],&*!|>'\"%@` $"):
				ex = strconv.Quote(ex)
			}
			fmt.Fprintf(&b, "    # %s: %s\n    #   %s\n", st.Key, ex, st.Help)
		}
	}
	return b.Bytes()
}

// byPresence splits specs into the apps that have no instance among insts
// and those that do.
func byPresence(specs []tend.AppSpec, insts []tend.Instance) (missing, present []tend.AppSpec) {
	for _, s := range specs {
		if slices.ContainsFunc(insts, func(in tend.Instance) bool { return in.Name == s.Name }) {
			present = append(present, s)
		} else {
			missing = append(missing, s)
		}
	}
	return missing, present
}
