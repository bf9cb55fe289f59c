package cli

import (
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/daemon"
	"github.com/tendhq/tend/internal/export"
)

// exportHelp says, per target, what the output holds and what tend chose.
var exportHelp = map[string]string{
	"kubernetes": `Write a Deployment for each app of the file, and a Service for each app
with a port, as YAML on stdout. The pod runs tend as PID 1:
  tend run <the file's base name> [--env NAME] --only <app>
    --health-addr [::]:<--health-port> --drain-delay <--drain-delay> --errored-fails-livez
so the image given with --image must hold tend on its PATH and the file in
its working directory. The kubelet's probes ask tend run, on the container
port tend-health (--health-port, 9616 by default):
  startupProbe          /startupz, every second, for listen_timeout + ` + export.StartupSlack.String() + `
  readinessProbe        /readyz: every instance runs, got ready at its start
                        (listen_timeout, wait_ready or ready_url) and passes
                        its liveness_* probe (tend replaces one that fails)
  livenessProbe         /livez: tend's supervision answers, and no instance
                        is errored (tend gave up restarting it)
On SIGTERM, /readyz fails and tend run waits --drain-delay while the apps
still serve, so the Service stops sending the pod connections first; then
it stops the app. What the manifests map:
  port                  containerPort and a Service (port and targetPort)
  kill_timeout          terminationGracePeriodSeconds: tend run's stop
                        bound, --drain-delay + kill_timeout + ` + daemon.StopMargin.String() + `
  instances             CPU requests = limits = instances, so that
                        instances: max in the pod starts that many (tend
                        counts a CPU quota, rounded up)
  max_memory_restart    memory requests = limits = instances x
                        max_memory_restart + 64Mi for tend itself
  env, env_NAME         the container's env (env_NAME with --env NAME)
  namespace             the label app.kubernetes.io/part-of
Every other setting is applied by tend in the pod. instances: max and -N
count --cpus CPUs (by default this machine's).`,
	"compose": `Write a compose file with a service per app of the file, as YAML on
stdout. The service runs tend as PID 1:
  tend run <the file's base name> [--env NAME] --only <app>
so the image given with --image must hold tend on its PATH and the file in
its working directory. What the file maps:
  port                  ports: "PORT:PORT"
  liveness_*, ready_url healthcheck (the liveness probe if any, else
                        ready_url): curl for a URL, bash for a TCP port,
                        the command itself for liveness_exec
  kill_timeout          stop_grace_period: kill_timeout + ` + daemon.StopMargin.String() + `, tend
                        run's stop bound
  autorestart           restart: on-failure (tend run exits 1 when an
                        instance errored), or "no"
  instances             deploy.resources cpus = instances
  max_memory_restart    deploy.resources memory = instances x
                        max_memory_restart + 64M for tend itself
  env, env_NAME         environment ($ escaped as $$)
Every other setting is applied by tend in the container. instances: max
and -N count --cpus CPUs (by default this machine's).`,
	"systemd": `Write a service unit per app of the file, tend-<app>.service, each after a
comment naming it, on stdout. The unit runs
  <this tend> run <the file's absolute path> [--env NAME] --only <app>
(--tend names another binary) as you (--user names another; as root, no
User= is written), with this shell's PATH, as tend startup's unit does, and
a TEND_HOME of its own in its StateDirectory, private to its user. What the
units map:
  cwd                   WorkingDirectory=
  env, env_NAME         Environment= (readable by every user: keep secrets
                        in env_file)
  autorestart           Restart=on-failure, or Restart=no
  kill_timeout          TimeoutStopSec=: kill_timeout + ` + daemon.StopMargin.String() + `, with
                        KillMode=mixed: SIGTERM to tend, which stops each
                        app with its own kill_signal
  max_memory_restart    MemoryMax=: instances x max_memory_restart + 64M
Every other setting is applied by tend in the unit. tend files have no
user key (PM2's user and uid are refused): every app of the file runs as
the unit's user.`,
}

func exportCmd(e *env) *cobra.Command {
	var names []string
	for _, t := range export.Targets {
		names = append(names, t.Name)
	}
	cmd := &cobra.Command{
		Use:     "export <" + strings.Join(names, "|") + "> <config file>",
		GroupID: "apps",
		Short:   "Write Kubernetes manifests, a compose file or systemd units that run a file's apps",
		Long: `Write what runs the apps of an ecosystem file under Kubernetes, docker
compose or systemd, on stdout: tend run as the entrypoint, and what the
target can say of each app (ports, probes, resources, the stop grace
period, the environment) in the target's own terms. Each setting that
the output does not carry out is named on stderr, never dropped silently.

  tend export kubernetes tend.yaml --image registry.example.com/shop:1.0 | kubectl apply -f -
  tend export compose tend.yaml --image shop:1.0 > compose.yaml
  tend export systemd tend.yaml | awk '/^# tend-.*\.service$/ {f = $2; next} {print > f}'

tend export <target> --help says what each target maps.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("name a target: %s", strings.Join(names, ", "))
			}
			return usageErr("unknown target %q: %s", args[0], strings.Join(names, ", "))
		},
	}
	for _, t := range export.Targets {
		cmd.AddCommand(exportTargetCmd(e, t))
	}
	return cmd
}

func exportTargetCmd(e *env, t *export.Target) *cobra.Command {
	var o export.Options
	var envName, command, drain string
	var only []string
	var cpus int
	cmd := &cobra.Command{
		Use:   t.Name + " <config file>",
		Short: "Write what runs the file's apps under " + t.Title,
		Long:  exportHelp[t.Name],
		// Bad arguments are bad input (exit 2), as newRoot makes them for
		// the commands it holds directly.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("name one ecosystem file; usage: %s", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			if !config.IsConfigFile(file) {
				return usageErr("%s is not an ecosystem file (.yaml, .yml, .json or .config.js): tend export reads the apps of one", file)
			}
			o.File, o.EnvName = file, envName
			if t.Name == "systemd" {
				if err := unitDefaults(cmd, &o); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("command") {
				words, err := tend.SplitWords(command)
				if err != nil {
					return usageErr("--command: %v", errText(err))
				}
				o.Command = words
				if o.Command == nil {
					o.Command = []string{}
				}
			}
			if drain != "" {
				d, err := tend.ParseDuration(drain)
				if err != nil {
					return usageErr("--drain-delay: %v", errText(err))
				}
				o.DrainDelay = d.D()
			}
			if cpus < 0 {
				return usageErr("--cpus %d must not be negative", cpus)
			}
			if o.HealthPort == 0 && cmd.Flags().Changed("health-port") {
				return usageErr("--health-port 0 is not a port: give one from 1 to 65535")
			}
			if cpus > 0 {
				// The file is read for the machine it will run on:
				// instances: max there is its CPUs, not this machine's.
				tend.NumCPU = func() int { return cpus }
			}
			specs, err := config.Load(file, config.Options{EnvName: envName})
			if err != nil {
				return err
			}
			if specs, err = onlyApps(specs, only); err != nil {
				return err
			}
			warnings, err := t.Export(e.out, specs, o)
			for _, w := range warnings {
				fmt.Fprintf(e.errOut, "tend export: %s\n", w)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&envName, "env", "", "NAME: apply the file's env_NAME block, and pass --env NAME to tend run")
	fl.StringSliceVar(&only, "only", nil, "only these apps of the file: app1,app2")
	fl.StringVar(&command, "command", "", "the command to run instead of tend run, as a shell would split it")
	switch t.Name {
	case "kubernetes", "compose":
		fl.StringVar(&o.Image, "image", "", "the image that holds tend and the file (required)")
		fl.IntVar(&cpus, "cpus", 0, "the CPUs that instances: max and -N count in the container (0: this machine's)")
	}
	switch t.Name {
	case "kubernetes":
		fl.StringVar(&drain, "drain-delay", daemon.DefaultDrainDelay.String(), "tend run's --drain-delay: how long a deleted pod fails /readyz but keeps serving before tend stops the app, while the Service forgets it (0: none)")
		fl.IntVar(&o.HealthPort, "health-port", export.DefaultHealthPort, "the port of tend run's health endpoints in the pod, which the probes ask; not the app's")
	case "systemd":
		fl.StringVar(&o.Tend, "tend", "", "the tend binary the units run (default: this one)")
		fl.StringVar(&o.User, "user", "", "the user the units run as (default: you; as root, none)")
	}
	return cmd
}

// unitDefaults fills in what tend startup's unit takes from this shell
// too: this tend binary, this user and this PATH, so that the units run
// the apps as this shell would.
func unitDefaults(cmd *cobra.Command, o *export.Options) error {
	if o.Tend == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Tend = exe
	}
	if !cmd.Flags().Changed("user") {
		u, err := user.Current()
		if err != nil {
			return err
		}
		if u.Uid != "0" { // root is what a system unit runs as anyway
			o.User = u.Username
		}
	}
	o.Path = os.Getenv("PATH")
	return nil
}
