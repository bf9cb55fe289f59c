package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
)

type startFlags struct {
	instances, name, cwd, interpreter, interpArgs   string
	namespace                                       string
	env                                             []string
	noAutorestart, force, waitReady, shutdownMsg    bool
	maxRestarts                                     int
	minUptime, restartDelay, expBackoff, killTO     string
	listenTO, killSignal, maxMem, readyURL          string
	cronRestart, watchDelay                         string
	watch, ignoreWatch                              []string
	stopCodes                                       []int
	port                                            int
	sched, mode, host                               string
	out, errFile, dateFormat, logType, ivar, incVar string
	merge, timeFlag                                 bool
	logMaxSize                                      string
	logRetain                                       int
	logCompress                                     bool
}

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
			res, err := c.Start(cmd.Context(), tend.StartRequest{Apps: specs, Force: f.force})
			if err != nil {
				return err
			}
			for _, s := range specs {
				fmt.Fprintf(e.errOut, "tend: started %s (%d %s)\n", s.Name, s.Instances, plural(s.Instances, "instance"))
			}
			for _, n := range res.Notes {
				fmt.Fprintf(e.errOut, "tend: note: %s\n", n)
			}
			e.printTable(res.Instances)
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// register adds the flags that describe an app to fl.
func (f *startFlags) register(fl *pflag.FlagSet) {
	fl.StringVarP(&f.instances, "instances", "i", "", "number of instances: N, max (one per core), or -N (cores minus N)")
	fl.StringVarP(&f.name, "name", "n", "", "app name (default: the script's name)")
	fl.StringVar(&f.namespace, "namespace", "", "a group of apps: a target for every command (tend restart <namespace>)")
	fl.StringArrayVar(&f.env, "env", nil, "KEY=VALUE for the app (repeatable; KEY alone takes this shell's value); with a config file, NAME selects env_NAME")
	fl.StringVar(&f.cwd, "cwd", "", "working directory of the app (default: here)")
	fl.StringVar(&f.interpreter, "interpreter", "", `program that runs the script ("none": execute it)`)
	fl.StringVar(&f.interpArgs, "interpreter-args", "", "arguments for the interpreter")
	fl.StringVar(&f.interpArgs, "node-args", "", "alias of --interpreter-args")
	fl.BoolVar(&f.noAutorestart, "no-autorestart", false, "do not restart the app when it exits")
	fl.IntVar(&f.maxRestarts, "max-restarts", 0, "unstable restarts in a row before the app is errored (default 16)")
	fl.StringVar(&f.minUptime, "min-uptime", "", "an exit sooner than this is unstable (default 1s)")
	fl.StringVar(&f.restartDelay, "restart-delay", "", "fixed delay before a restart, e.g. 2s")
	fl.StringVar(&f.expBackoff, "exp-backoff-restart-delay", "", "first delay of exponential backoff (x1.5 per restart, 15s cap; default 100ms)")
	fl.StringVar(&f.killTO, "kill-timeout", "", "time between the stop signal and SIGKILL (default 5s)")
	fl.StringVar(&f.killSignal, "kill-signal", "", "stop signal (default SIGINT)")
	fl.IntSliceVar(&f.stopCodes, "stop-exit-codes", nil, "exit codes that do not trigger a restart")
	fl.StringVar(&f.maxMem, "max-memory-restart", "", "restart an instance above this memory, e.g. 300M")
	fl.StringSliceVar(&f.watch, "watch", nil, "reload the app when files change: --watch for its cwd, --watch=src,config.json for those paths")
	fl.Lookup("watch").NoOptDefVal = "."
	fl.StringSliceVar(&f.ignoreWatch, "ignore-watch", nil, "glob patterns not to watch, besides node_modules, dotfiles, __pycache__, *.pyc, *.log and *~")
	fl.StringVar(&f.watchDelay, "watch-delay", "", "how long changes must settle before the reload (default 500ms)")
	fl.StringVar(&f.cronRestart, "cron-restart", "", `replace the instances on this cron schedule, one by one as a reload does, e.g. "0 3 * * *"`)
	fl.StringVar(&f.listenTO, "listen-timeout", "", "how long a new instance may take to be ready (default 3s)")
	fl.BoolVar(&f.waitReady, "wait-ready", false, "an instance is ready when it sends process.send('ready')")
	fl.StringVar(&f.readyURL, "ready-url", "", "an instance is ready when this URL answers 2xx")
	fl.BoolVar(&f.shutdownMsg, "shutdown-with-message", false, "stop Node apps with process.send('shutdown') instead of a signal")
	fl.IntVar(&f.port, "port", 0, "port the instances share (tend binds it)")
	fl.StringVar(&f.host, "host", "", "address to bind --port on in socket and proxy modes (default 127.0.0.1; 0.0.0.0 for every interface)")
	fl.StringVar(&f.sched, "sched", "", "how connections are spread: rr (default), shared, leastconn (proxy mode)")
	fl.StringVar(&f.mode, "exec-mode", "", "fork, cluster (Node), socket (LISTEN_FDS) or proxy")
	fl.StringVarP(&f.out, "output", "o", "", "stdout log file")
	fl.StringVarP(&f.errFile, "error", "e", "", "stderr log file")
	fl.BoolVar(&f.merge, "merge-logs", false, "one log file per app instead of per instance")
	fl.StringVar(&f.dateFormat, "log-date-format", "", "prefix each log line with the time in this format")
	fl.BoolVar(&f.timeFlag, "time", false, "prefix each log line with the time")
	fl.StringVar(&f.logType, "log-type", "", `"json" for JSON lines`)
	fl.StringVar(&f.logMaxSize, "log-max-size", "", "rotate a log file at this size, e.g. 50M (default 10M, or logs.max_size in $TEND_HOME/config.yaml)")
	fl.IntVar(&f.logRetain, "log-retain", 0, "rotated log files kept (default 10)")
	fl.BoolVar(&f.logCompress, "log-compress", false, "gzip rotated log files")
	fl.StringVar(&f.ivar, "instance-var", "", "variable that holds the instance index (default NODE_APP_INSTANCE)")
	fl.StringVar(&f.incVar, "increment-var", "", "variable incremented per instance, e.g. PORT")
	fl.BoolVarP(&f.force, "force", "f", false, "replace an app of the same name")
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// specs builds the apps to start from the arguments and flags.
func (f *startFlags) specs(cmd *cobra.Command, args []string) ([]tend.AppSpec, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	target, extra := args[0], args[1:]
	if n := cmd.ArgsLenAtDash(); n == 0 {
		return nil, usageErr("name what to start before --")
	} else if n > 1 {
		hint := ""
		if slices.Contains(os.Args, "--watch") {
			hint = " (--watch takes paths with =: --watch=" + args[1] + ")"
		}
		return nil, usageErr("unexpected argument %q: put the app's arguments after --%s", args[1], hint)
	}
	if config.IsConfigFile(target) {
		if len(extra) > 0 {
			return nil, usageErr("arguments after -- do not apply to a config file; set args: in %s", target)
		}
		envName := ""
		for _, v := range f.env {
			if strings.Contains(v, "=") {
				return nil, usageErr("--env %s: with a config file, --env names an env_<NAME> block; put variables in the file", v)
			}
			envName = v
		}
		return config.Load(target, config.Options{EnvName: envName, Cwd: wd, BaseEnv: os.Environ()})
	}
	s := tend.AppSpec{Script: target, Args: extra, Cwd: wd, BaseEnv: os.Environ(), Instances: 1}
	if f.cwd != "" {
		s.Cwd, _ = filepath.Abs(f.cwd)
	}
	s.Name, s.Namespace = f.name, f.namespace
	if s.Name == "" {
		s.Name = config.DefaultName(target)
	}
	if f.instances != "" {
		if s.Instances, err = config.ParseInstances(f.instances); err != nil {
			return nil, usageErr("--instances: %v", err)
		}
		s.InstancesGiven = true
	}
	for _, kv := range f.env {
		k, v, err := config.ParseEnvArg(kv)
		if err != nil {
			return nil, usageErr("--env: %v", err)
		}
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		s.Env[k] = v
	}
	s.Interpreter = f.interpreter
	s.InterpreterArgs = strings.Fields(f.interpArgs)
	if f.noAutorestart {
		no := false
		s.Autorestart = &no
	}
	if f.maxRestarts < 0 {
		return nil, usageErr("--max-restarts must not be negative")
	}
	s.MaxRestarts = f.maxRestarts
	for _, d := range []struct {
		flag, v string
		dst     *tend.Duration
	}{
		{"min-uptime", f.minUptime, &s.MinUptime}, {"restart-delay", f.restartDelay, &s.RestartDelay},
		{"exp-backoff-restart-delay", f.expBackoff, &s.ExpBackoffRestartDelay},
		{"kill-timeout", f.killTO, &s.KillTimeout}, {"listen-timeout", f.listenTO, &s.ListenTimeout},
		{"watch-delay", f.watchDelay, &s.WatchDelay},
	} {
		if d.v == "" {
			continue
		}
		if *d.dst, err = config.ParseDuration(d.v); err != nil {
			return nil, usageErr("--%s: %v", d.flag, err)
		}
	}
	if f.killSignal != "" {
		if s.KillSignal, err = config.ParseSignal(f.killSignal); err != nil {
			return nil, usageErr("--kill-signal: %v", err)
		}
	}
	if f.maxMem != "" {
		if s.MaxMemoryRestart, err = config.ParseBytes(f.maxMem); err != nil {
			return nil, usageErr("--max-memory-restart: %v", err)
		}
	}
	if f.cronRestart != "" {
		if _, err := config.ParseCron(f.cronRestart); err != nil {
			return nil, usageErr("--cron-restart: %v", err)
		}
		s.CronRestart = f.cronRestart
	}
	if err := config.CheckGlobs(f.ignoreWatch); err != nil {
		return nil, usageErr("--ignore-watch: %v", err)
	}
	s.Watch, s.IgnoreWatch = f.watch, f.ignoreWatch
	s.StopExitCodes = f.stopCodes
	s.WaitReady, s.ReadyURL, s.ShutdownWithMessage = f.waitReady, f.readyURL, f.shutdownMsg
	if f.port < 0 || f.port > 65535 {
		return nil, usageErr("--port %d is not a port number (1-65535)", f.port)
	}
	s.Port, s.Sched, s.ExecMode, s.Host = f.port, f.sched, f.mode, f.host
	s.OutFile, s.ErrorFile, s.MergeLogs = absOrEmpty(f.out), absOrEmpty(f.errFile), f.merge
	s.LogDateFormat, s.LogType = f.dateFormat, f.logType
	if f.timeFlag && s.LogDateFormat == "" {
		s.LogDateFormat = "2006-01-02T15:04:05"
	}
	s.InstanceVar, s.IncrementVar = f.ivar, f.incVar
	if f.logMaxSize != "" {
		if s.LogMaxSize, err = config.ParseBytes(f.logMaxSize); err != nil {
			return nil, usageErr("--log-max-size: %v", err)
		}
	}
	if f.logRetain < 0 {
		return nil, usageErr("--log-retain must not be negative")
	}
	s.LogRetain, s.LogCompress = f.logRetain, f.logCompress
	return []tend.AppSpec{s}, nil
}

func absOrEmpty(p string) string {
	if p == "" || p == "/dev/null" {
		return p
	}
	a, _ := filepath.Abs(p)
	return a
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
	c, err := e.client(cmd.Context())
	if err != nil {
		return tend.ActionResult{}, false, err
	}
	insts, err := c.Instances(cmd.Context())
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
