package tend

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Settings is every key of an app, in the order describe and the README
// show them. Keys, aliases and flags follow PM2's names, so that PM2's
// files and habits carry over.
var Settings = []Setting{
	// The app.
	{Key: "name", Example: "api", Flag: "name", Short: "n", Kind: KindText, Group: "app", Default: "the script's name",
		Help: "app name: a target of every command",
		codec: required(text(func(s *AppSpec) *string { return &s.Name }, func(v string) (string, error) {
			v = strings.TrimSpace(v)
			return v, CheckName(v)
		}))},
	{Key: "namespace", Example: "shop", Flag: "namespace", Kind: KindText, Group: "app",
		Help: "a group of apps: a target of every command (tend restart <namespace>)",
		codec: text(func(s *AppSpec) *string { return &s.Namespace }, func(v string) (string, error) {
			if v == "" {
				return v, nil // none
			}
			if err := CheckName(v); err != nil {
				return v, fmt.Errorf("namespace %v", err)
			}
			return v, nil
		})},
	{Key: "script", Example: "server.js", Aliases: []string{"exec", "cmd", "command"}, Kind: KindText, Group: "app",
		Help: "what runs: a script, a program, or a command line (the argument of tend start)",
		codec: required(text(func(s *AppSpec) *string { return &s.Script }, func(v string) (string, error) {
			if strings.TrimSpace(v) == "" {
				return v, errors.New("must not be empty")
			}
			return v, nil
		}))},
	{Key: "args", Example: "--verbose", Kind: KindWords, Group: "app",
		Help:  "arguments of the script (after -- on the command line)",
		codec: list(func(s *AppSpec) *[]string { return &s.Args }, nil)},
	{Key: "cwd", Example: "/srv/api", Flag: "cwd", Kind: KindText, Group: "app", Default: "the directory of the shell, or of the file",
		Help: "working directory of the app",
		codec: codec{
			set:  func(s *AppSpec, in Input) error { s.Cwd = absPath(in.Text, in.Dir); return nil },
			show: func(s *AppSpec) string { return s.Cwd },
		}},
	{Key: "interpreter", Example: "node", Aliases: []string{"exec_interpreter"}, Flag: "interpreter", Kind: KindText, Group: "app",
		Default: "by extension: node, python3, ruby, bash",
		Help:    `program that runs the script ("none": execute it)`,
		codec:   text(func(s *AppSpec) *string { return &s.Interpreter }, nil)},
	{Key: "interpreter_args", Example: "--max-old-space-size=512", Aliases: []string{"interpreterArgs", "node_args"}, Flag: "interpreter-args", FlagAliases: []string{"node-args"},
		Kind: KindWords, Group: "app", Help: "arguments of the interpreter, quoted as in a shell",
		codec: list(func(s *AppSpec) *[]string { return &s.InterpreterArgs }, nil)},
	{Key: "instances", Example: "max", Flag: "instances", Short: "i", Kind: KindNumber, Group: "app", Default: "1",
		Help: "number of instances: N, max (one per CPU: the cores, or a container's CPU quota below them), or -N (that less N)",
		codec: codec{
			arg: "n|max",
			set: func(s *AppSpec, in Input) (err error) {
				s.Instances, err = ParseInstances(in.Text)
				s.InstancesGiven = true
				return err
			},
			check: func(s *AppSpec) error { return notNegative(int64(s.Instances)) },
			zero:  func(s *AppSpec) { s.Instances, s.InstancesGiven = 1, false },
			show: func(s *AppSpec) string {
				if s.InstancesGiven {
					return strconv.Itoa(s.Instances)
				}
				return ""
			},
		}},
	{Key: "env", Example: "NODE_ENV=production", Flag: "env", Kind: KindEnv, Group: "app",
		Help: "KEY=VALUE for the app (repeatable; KEY alone takes the shell's value); env_<name> in a file, chosen with --env <name>",
		codec: codec{
			set: envList,
			check: func(s *AppSpec) error {
				for k := range s.Env {
					if err := CheckEnvName(k); err != nil {
						return err
					}
				}
				return nil
			},
			show: func(s *AppSpec) string { return "" }, // describe shows the keys, and values on request
		}},

	{Key: "env_file", Example: ".env", Flag: "env-file", Kind: KindList, Group: "app",
		Help:  "dotenv files whose variables the app gets, under env: read at start and at each reload, values shown only by describe --env",
		codec: list(func(s *AppSpec) *[]string { return &s.EnvFile }, nil)},

	// Order: one-shot tasks and dependencies between the apps of a file.
	{Key: "type", Example: "task", Flag: "type", Kind: KindText, Group: "app", Default: "service",
		Help: "service, or task: a one-shot job (migrations) run to completion once per start or reload of its file; exit 0 leaves it completed, a failure is retried only with max_restarts, then blocks its dependents",
		codec: text(func(s *AppSpec) *AppType { return &s.Type }, func(v string) (string, error) {
			return v, oneOf(AppType(v), TypeService, TypeTask)
		})},
	{Key: "depends_on", Example: "migrate:completed,db:ready", Kind: KindList, Pairs: true, Group: "app",
		Help:  "apps of the file started first, as compose writes it: a list (condition started) or a mapping app: condition, started (spawned), ready, or completed (a task that exited 0); stopped after them",
		codec: dependsCodec},

	// Sharing a port.
	{Key: "exec_mode", Example: "cluster", Flag: "exec-mode", Kind: KindText, Group: "port", Default: "cluster for Node with -i or --port, socket with --port, else fork",
		Help: "fork, cluster (Node), socket (LISTEN_FDS) or proxy ($PORT)",
		codec: text(func(s *AppSpec) *Mode { return &s.ExecMode }, func(v string) (string, error) {
			v = strings.TrimSuffix(v, "_mode") // PM2 writes cluster_mode
			return v, oneOf(Mode(v), ModeFork, ModeCluster, ModeSocket, ModeProxy)
		})},
	{Key: "port", Example: "3000", Flag: "port", Kind: KindNumber, Group: "port",
		Help: "port the instances share (tend binds it)",
		codec: codec{
			arg: "port",
			set: func(s *AppSpec, in Input) (err error) {
				if s.Port, err = parseInt(in.Text); err == nil && s.Port != 0 { // 0: none
					err = checkPort(s.Port)
				}
				return err
			},
			check: func(s *AppSpec) error {
				if s.Port == 0 {
					return nil
				}
				return checkPort(s.Port)
			},
			zero: func(s *AppSpec) { s.Port = 0 },
			show: func(s *AppSpec) string {
				if s.Port != 0 {
					return strconv.Itoa(s.Port)
				}
				return ""
			},
		}},
	{Key: "host", Example: "0.0.0.0", Flag: "host", Kind: KindText, Group: "port", Default: "127.0.0.1",
		Help:  "address to bind the port on in socket and proxy modes (0.0.0.0: every interface)",
		codec: text(func(s *AppSpec) *string { return &s.Host }, func(v string) (string, error) { return v, CheckHost(v) })},
	{Key: "sched", Example: "shared", Flag: "sched", Kind: KindText, Group: "port", Default: "rr (shared in socket mode)",
		Help: "how connections are spread: rr, shared, leastconn (proxy mode), sticky (cluster and proxy modes: a client address keeps its instance), reuseport (cluster and socket modes: a socket per instance)",
		codec: text(func(s *AppSpec) *Sched { return &s.Sched }, func(v string) (string, error) {
			return v, oneOf(Sched(v), SchedRoundRobin, SchedShared, SchedLeastConn, SchedSticky, SchedReusePort)
		})},

	// User and limits.
	{Key: "user", Example: "www-data", Aliases: []string{"uid"}, Flag: "user", FlagAliases: []string{"uid"}, Kind: KindText, Group: "limits", Default: "the daemon's user",
		Help:  "run the instances as this user (name or uid), with its groups, HOME, USER and SHELL; the daemon must run as root",
		codec: text(func(s *AppSpec) *string { return &s.User }, idName)},
	{Key: "group", Example: "www-data", Aliases: []string{"gid"}, Flag: "group", FlagAliases: []string{"gid"}, Kind: KindText, Group: "limits", Default: "the user's group",
		Help:  "run the instances with this group (name or gid)",
		codec: text(func(s *AppSpec) *string { return &s.Group }, idName)},
	{Key: "max_memory", Example: "512M", Flag: "max-memory", Kind: KindNumber, Group: "limits",
		Help:  "hard memory limit of each instance and its children (a cgroup): past it the kernel kills it, reported oom-killed",
		codec: size(func(s *AppSpec) *int64 { return &s.MaxMemory })},
	{Key: "cpu_quota", Example: "150%", Flag: "cpu-quota", Kind: KindNumber, Group: "limits",
		Help:  "CPU time of each instance and its children, in percent of one CPU (150% is one and a half)",
		codec: percent(func(s *AppSpec) *int { return &s.CPUQuota })},
	{Key: "max_pids", Example: "64", Flag: "max-pids", Kind: KindNumber, Group: "limits",
		Help:  "most processes and threads each instance may have at once",
		codec: count(func(s *AppSpec) *int { return &s.MaxPids })},
	// Restarts.
	{Key: "autorestart", Example: "false", Flag: "no-autorestart", Invert: true, Kind: KindSwitch, Group: "restarts", Default: "true",
		Help:  "restart instances that exit",
		codec: optFlag(func(s *AppSpec) **bool { return &s.Autorestart })},
	{Key: "max_restarts", Example: "5", Flag: "max-restarts", Kind: KindNumber, Group: "restarts", Default: "16",
		Help:  "unstable restarts in a row before the instance is errored",
		codec: count(func(s *AppSpec) *int { return &s.MaxRestarts })},
	{Key: "min_uptime", Example: "2s", Flag: "min-uptime", Kind: KindNumber, Group: "restarts", Default: "1s",
		Help:  "an exit sooner than this is an unstable restart",
		codec: duration(func(s *AppSpec) *Duration { return &s.MinUptime })},
	{Key: "restart_delay", Example: "2s", Flag: "restart-delay", Kind: KindNumber, Group: "restarts",
		Help:  "fixed delay before a restart, e.g. 2s",
		codec: duration(func(s *AppSpec) *Duration { return &s.RestartDelay })},
	{Key: "exp_backoff_restart_delay", Example: "200ms", Flag: "exp-backoff-restart-delay", Kind: KindNumber, Group: "restarts", Default: "100ms",
		Help:  "first delay of exponential backoff (x1.5 per restart, 15s cap)",
		codec: duration(func(s *AppSpec) *Duration { return &s.ExpBackoffRestartDelay })},
	{Key: "stop_exit_codes", Example: "0,2", Flag: "stop-exit-codes", Kind: KindNumbers, Group: "restarts",
		Help: "exit codes that do not trigger a restart",
		codec: codec{
			set: func(s *AppSpec, in Input) error {
				s.StopExitCodes = make([]int, 0, len(in.List))
				for _, c := range in.List {
					n, err := parseInt(c)
					if err == nil {
						err = checkExitCode(n)
					}
					if err != nil {
						return err
					}
					s.StopExitCodes = append(s.StopExitCodes, n)
				}
				return nil
			},
			check: func(s *AppSpec) error {
				for _, c := range s.StopExitCodes {
					if err := checkExitCode(c); err != nil {
						return err
					}
				}
				return nil
			},
			show: func(s *AppSpec) string { return strings.Trim(fmt.Sprint(s.StopExitCodes), "[]") },
			zero: func(s *AppSpec) { s.StopExitCodes = nil },
		}},
	{Key: "max_memory_restart", Example: "300M", Flag: "max-memory-restart", Kind: KindNumber, Group: "restarts",
		Help:  "replace an instance above this memory, e.g. 300M; when unset and a cgroup (a container) limits memory, 90% of that limit over every instance",
		codec: size(func(s *AppSpec) *int64 { return &s.MaxMemoryRestart })},
	{Key: "cron_restart", Example: "0 3 * * *", Aliases: []string{"cron"}, Flag: "cron-restart", Kind: KindText, Group: "restarts",
		Help: `replace the instances on this cron schedule, one by one as a reload does, e.g. "0 3 * * *"`,
		codec: text(func(s *AppSpec) *string { return &s.CronRestart }, func(v string) (string, error) {
			_, err := ParseCron(v)
			return v, err
		})},
	{Key: "watch", Example: "src,config.json", Flag: "watch", Bare: ".", Kind: KindList, Group: "restarts",
		Help:  "reload when files change: --watch for the app's directory, --watch=src,config.json for those paths",
		codec: list(func(s *AppSpec) *[]string { return &s.Watch }, nil)},
	{Key: "ignore_watch", Example: "*.tmp", Flag: "ignore-watch", Kind: KindList, Group: "restarts",
		Help:  "glob patterns not to watch, besides node_modules, dotfiles, __pycache__, *.pyc, *.log and *~",
		codec: list(func(s *AppSpec) *[]string { return &s.IgnoreWatch }, CheckGlobs)},
	{Key: "watch_delay", Example: "1s", Flag: "watch-delay", Kind: KindNumber, Group: "restarts", Default: "500ms",
		Help:  "how long changes must settle before the reload",
		codec: duration(func(s *AppSpec) *Duration { return &s.WatchDelay })},
	{Key: "autostart", Example: "false", Flag: "no-autostart", Invert: true, Kind: KindSwitch, Group: "restarts", Default: "true",
		Help:  "start the app with tend start (off: listed as stopped until started by name)",
		codec: optFlag(func(s *AppSpec) **bool { return &s.Autostart })},

	// Stop and readiness.
	{Key: "kill_signal", Example: "SIGTERM", Flag: "kill-signal", Kind: KindText, Group: "stop", Default: DefaultKillSignal,
		Help:  "stop signal",
		codec: text(func(s *AppSpec) *string { return &s.KillSignal }, ParseSignal)},
	{Key: "kill_timeout", Example: "8s", Flag: "kill-timeout", Kind: KindNumber, Group: "stop", Default: DefaultKillTimeout.D().String(),
		Help:  "time between the stop signal and SIGKILL",
		codec: duration(func(s *AppSpec) *Duration { return &s.KillTimeout })},
	{Key: "shutdown_with_message", Example: "true", Flag: "shutdown-with-message", Kind: KindSwitch, Group: "stop",
		Help:  "stop Node apps with process.send('shutdown') instead of a signal",
		codec: boolean(func(s *AppSpec) *bool { return &s.ShutdownWithMessage })},
	{Key: "wait_ready", Example: "true", Flag: "wait-ready", Kind: KindSwitch, Group: "stop",
		Help:  "an instance is ready when it sends process.send('ready')",
		codec: boolean(func(s *AppSpec) *bool { return &s.WaitReady })},
	{Key: "listen_timeout", Example: "10s", Flag: "listen-timeout", Kind: KindNumber, Group: "stop", Default: DefaultListenTimeout.D().String(),
		Help:  "how long a new instance may take to be ready",
		codec: duration(func(s *AppSpec) *Duration { return &s.ListenTimeout })},
	{Key: "ready_url", Example: "http://127.0.0.1:$PORT/health", Flag: "ready-url", Kind: KindText, Group: "stop",
		Help:  "an instance is ready when this URL answers 2xx, or tcp://host:port accepts ($PORT is the instance's port)",
		codec: text(func(s *AppSpec) *string { return &s.ReadyURL }, func(v string) (string, error) { return v, CheckURL(v) })},
	{Key: "instance_var", Example: "INSTANCE_ID", Flag: "instance-var", Kind: KindText, Group: "stop", Default: DefaultInstanceVar,
		Help:  "variable that holds the instance index",
		codec: text(func(s *AppSpec) *string { return &s.InstanceVar }, envName)},
	{Key: "increment_var", Example: "PORT", Flag: "increment-var", Kind: KindText, Group: "stop",
		Help:  "variable incremented per instance, e.g. PORT",
		codec: text(func(s *AppSpec) *string { return &s.IncrementVar }, envName)},

	// Health.
	{Key: "liveness_http", Example: "http://127.0.0.1:$PORT/healthz", Flag: "liveness-url", Kind: KindText, Group: "health",
		Help:  "replace an instance when this URL stops answering 2xx ($PORT and the instance's variables expanded; the probe reaches that instance)",
		codec: text(func(s *AppSpec) *string { return &s.LivenessHTTP }, httpURL)},
	{Key: "liveness_tcp", Example: "127.0.0.1:$PORT", Flag: "liveness-tcp", Kind: KindText, Group: "health",
		Help:  "replace an instance when this address stops accepting connections",
		codec: oneProbe(text(func(s *AppSpec) *string { return &s.LivenessTCP }, hostPort))},
	{Key: "liveness_exec", Example: "./healthcheck --quick", Flag: "liveness-exec", Kind: KindText, Group: "health",
		Help:  "replace an instance when this command, run with its variables, stops exiting 0",
		codec: oneProbe(text(func(s *AppSpec) *string { return &s.LivenessExec }, commandLine))},
	{Key: "liveness_period", Example: "5s", Flag: "liveness-period", Kind: KindNumber, Group: "health", Default: DefaultLivenessPeriod.D().String(),
		Help:  "time between two liveness probes of an instance",
		codec: duration(func(s *AppSpec) *Duration { return &s.LivenessPeriod })},
	{Key: "liveness_timeout", Example: "1s", Flag: "liveness-timeout", Kind: KindNumber, Group: "health", Default: DefaultLivenessTimeout.D().String(),
		Help:  "a probe that takes longer fails",
		codec: duration(func(s *AppSpec) *Duration { return &s.LivenessTimeout })},
	{Key: "liveness_failure_threshold", Example: "2", Flag: "liveness-failure-threshold", Kind: KindNumber, Group: "health", Default: strconv.Itoa(DefaultLivenessFailures),
		Help:  "failed probes in a row that replace the instance",
		codec: count(func(s *AppSpec) *int { return &s.LivenessFailures })},
	{Key: "liveness_initial_delay", Example: "30s", Flag: "liveness-initial-delay", Kind: KindNumber, Group: "health",
		Help:  "time after an instance is ready before its first probe",
		codec: duration(func(s *AppSpec) *Duration { return &s.LivenessDelay })},
	{Key: "watchdog", Example: "10s", Flag: "watchdog", Kind: KindNumber, Group: "health",
		Help:  "the systemd watchdog: instances get WATCHDOG_USEC and must send WATCHDOG=1 (sd_notify) within it, or are replaced",
		codec: duration(func(s *AppSpec) *Duration { return &s.Watchdog })},

	{Key: "eject_slow_after", Example: "1s", Flag: "eject-slow-after", Kind: KindNumber, Group: "health",
		Help:  "proxy mode: an instance that answers later than this 5 times in a row while others answer in time is out of rotation for 10s, doubling (off by default: long polls are some apps' normal)",
		codec: duration(func(s *AppSpec) *Duration { return &s.EjectSlowAfter })},

	// Notifications.
	{Key: "on_exit", Example: "./notify.sh", Flag: "on-exit", Kind: KindText, Group: "notify",
		Help:  "command run when an instance exits by itself (crash or exit), with TEND_EVENT, TEND_APP, TEND_INSTANCE, TEND_PID, TEND_EXIT_CODE, TEND_SIGNAL, TEND_REASON and TEND_LOG_LINES",
		codec: text(func(s *AppSpec) *string { return &s.OnExit }, commandLine)},
	{Key: "on_errored", Example: "./page-oncall.sh", Flag: "on-errored", Kind: KindText, Group: "notify",
		Help:  "command run when an instance gives up restarting (errored); the same variables",
		codec: text(func(s *AppSpec) *string { return &s.OnErrored }, commandLine)},
	{Key: "on_unhealthy", Example: "./notify.sh", Flag: "on-unhealthy", Kind: KindText, Group: "notify",
		Help:  "command run when an instance is found unhealthy and replaced; the same variables",
		codec: text(func(s *AppSpec) *string { return &s.OnUnhealthy }, commandLine)},
	{Key: "notify_url", Example: "https://hooks.example.com/tend", Flag: "notify-url", Kind: KindText, Group: "notify",
		Help:  "URL that each of those events is POSTed to as JSON, with retries",
		codec: text(func(s *AppSpec) *string { return &s.NotifyURL }, httpURL)},

	// Logs.
	{Key: "out_file", Example: "out.log", Aliases: []string{"out", "output", "out_log"}, Flag: "output", Short: "o", Kind: KindText, Group: "logs",
		Default: "$TEND_HOME/logs/<name>-out-<i>.log",
		Help:    "stdout log file, relative to the app's directory",
		codec:   text(func(s *AppSpec) *string { return &s.OutFile }, homePath)},
	{Key: "error_file", Example: "err.log", Aliases: []string{"error", "err", "err_file", "err_log"}, Flag: "error", Short: "e", Kind: KindText, Group: "logs",
		Default: "$TEND_HOME/logs/<name>-error-<i>.log",
		Help:    "stderr log file, relative to the app's directory",
		codec:   text(func(s *AppSpec) *string { return &s.ErrorFile }, homePath)},
	{Key: "merge_logs", Example: "true", Aliases: []string{"combine_logs"}, Flag: "merge-logs", Kind: KindSwitch, Group: "logs",
		Help:  "one log file per app instead of per instance",
		codec: boolean(func(s *AppSpec) *bool { return &s.MergeLogs })},
	{Key: "log_date_format", Example: "YYYY-MM-DD HH:mm:ss", Flag: "log-date-format", Kind: KindText, Group: "logs",
		Help: `prefix each line with the time in this format: dayjs's, as PM2 ("YYYY-MM-DD HH:mm:ss"), or Go's`,
		codec: text(func(s *AppSpec) *string { return &s.LogDateFormat }, func(v string) (string, error) {
			return GoLayout(v), nil
		})},
	{Key: "time", Example: "true", Flag: "time", Kind: KindSwitch, Group: "logs", After: true,
		Help: "prefix each line with the time (YYYY-MM-DDTHH:mm:ss unless log_date_format says otherwise)",
		codec: codec{
			set: func(s *AppSpec, in Input) error {
				on, err := parseBool(in.Text)
				if on && s.LogDateFormat == "" {
					s.LogDateFormat = TimeLayout
				}
				return err
			},
			show: func(*AppSpec) string { return "" }, // log_date_format shows it
		}},
	{Key: "log_type", Example: "json", Flag: "log-type", Kind: KindText, Group: "logs", Default: "raw",
		Help: `"json" for JSON lines, "raw" for the lines as printed`,
		codec: text(func(s *AppSpec) *string { return &s.LogType }, func(v string) (string, error) {
			if err := oneOf(v, "json", "raw"); err != nil {
				return "", err
			}
			return strings.TrimPrefix(v, "raw"), nil // "" is raw
		})},
	{Key: "log_max_size", Example: "50M", Flag: "log-max-size", Kind: KindNumber, Group: "logs", Default: "10M, or logs.max_size in $TEND_HOME/config.yaml",
		Help:  "rotate a log file at this size, e.g. 50M",
		codec: size(func(s *AppSpec) *int64 { return &s.LogMaxSize })},
	{Key: "log_rotate_interval", Example: "daily", Flag: "log-rotate-interval", Kind: KindText, TakesBool: true, Group: "logs", Default: "none, or logs.rotate_interval in $TEND_HOME/config.yaml",
		Help: `also rotate log files by time, to dated names (<name>-out-<i>__2026-03-01_00-00-00.log): daily (or true: at midnight), hourly, a cron schedule ("0 */6 * * *"), or false`,
		codec: text(func(s *AppSpec) *string { return &s.LogRotateInterval }, func(v string) (string, error) {
			v, _, err := ParseRotateInterval(v)
			return v, err
		})},
	{Key: "log_retain", Example: "5", Flag: "log-retain", Kind: KindNumber, Group: "logs", Default: "10",
		Help:  "rotated log files kept",
		codec: count(func(s *AppSpec) *int { return &s.LogRetain })},
	{Key: "log_compress", Example: "true", Flag: "log-compress", Kind: KindSwitch, Group: "logs",
		Help:  "gzip rotated log files",
		codec: boolean(func(s *AppSpec) *bool { return &s.LogCompress })},
}

// Groups names the headings of Setting.Group, in order.
var Groups = []struct{ ID, Title string }{
	{"app", "app"}, {"port", "sharing a port"}, {"restarts", "restarts"}, {"stop", "stop and readiness"}, {"health", "health"}, {"notify", "notifications"}, {"logs", "logs"}, {"limits", "user and limits"},
}

func envName(v string) (string, error) { return v, CheckEnvName(v) }

// homePath expands a leading ~/ to the home directory; other paths stay as
// given (relative ones are under the app's directory).
func homePath(v string) (string, error) {
	if v == "~" || strings.HasPrefix(v, "~/") {
		return absPath(v, ""), nil
	}
	return v, nil
}

// oneProbe adds to a probe's check that no other probe is set: one
// liveness probe per app.
func oneProbe(c codec) codec {
	check := c.check
	c.check = func(s *AppSpec) error {
		n := 0
		for _, v := range []string{s.LivenessHTTP, s.LivenessTCP, s.LivenessExec} {
			if v != "" {
				n++
			}
		}
		if n > 1 {
			return errors.New("give one liveness probe: liveness_http, liveness_tcp or liveness_exec")
		}
		return check(s)
	}
	return c
}

// httpURL accepts an http:// or https:// URL ($VARs allowed).
func httpURL(v string) (string, error) {
	if strings.HasPrefix(v, "tcp://") {
		return v, fmt.Errorf("%q: a TCP probe is liveness_tcp (--liveness-tcp host:port)", v)
	}
	return v, CheckURL(v)
}

// hostPort accepts host:port ($VARs allowed).
func hostPort(v string) (string, error) {
	return v, CheckURL("tcp://" + strings.TrimPrefix(v, "tcp://"))
}

// commandLine accepts a command line a shell would split.
func commandLine(v string) (string, error) {
	w, err := SplitWords(v)
	if err == nil && len(w) == 0 {
		err = errors.New("the command is empty")
	}
	return v, err
}

func checkPort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%d is out of range 1-65535", p)
	}
	return nil
}

func checkExitCode(c int) error {
	if c < 0 || c > 255 {
		return fmt.Errorf("%d is out of range 0-255", c)
	}
	return nil
}

// idName accepts a user or group name, or a number.
func idName(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return v, nil
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return strconv.FormatUint(n, 10), nil
	}
	for _, r := range v {
		if !(r == '_' || r == '-' || r == '.' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return v, fmt.Errorf("%q is not a user or group name, nor a number", v)
		}
	}
	return v, nil
}
