// Package tend holds the domain types shared by the daemon, the CLI, the
// control client and the config loader: what an app is (AppSpec), what runs
// (Instance), and how things fail (Error). It imports no infrastructure.
package tend

import (
	"encoding/json"
	"strconv"
	"time"
)

// Version is the version of this build. The CLI and the daemon compare it on
// every request so that a stale daemon is reported instead of misread.
var Version = "0.1.0-dev"

// Status is the lifecycle state of one instance.
type Status string

// The instance states, named as PM2 names them so that scripts parsing
// `ls --json` keep working.
const (
	StatusLaunching Status = "launching" // spawned, not yet ready
	StatusOnline    Status = "online"    // running (and ready, where readiness is known)
	StatusStopping  Status = "stopping"  // stop signal sent, waiting for exit
	StatusStopped   Status = "stopped"   // not running, will not restart by itself
	StatusErrored   Status = "errored"   // gave up: too many unstable restarts or could not start
	StatusWaiting   Status = "waiting"   // crashed, restart scheduled after a backoff delay; or waiting for its dependencies
	StatusCompleted Status = "completed" // a task that exited 0
)

// Duration is a time.Duration that travels as integer milliseconds, the unit
// PM2's keys (kill_timeout, restart_delay, ...) use.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON encodes d as whole milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, time.Duration(d).Milliseconds(), 10), nil
}

// UnmarshalJSON decodes whole milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms int64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	*d = Duration(time.Duration(ms) * time.Millisecond)
	return nil
}

// Defaults that apply when a field of an AppSpec is zero.
const (
	// DefaultMinUptime is PM2's: an instance that exits sooner counts as an
	// unstable restart.
	DefaultMinUptime = Duration(time.Second)
	// DefaultMaxRestarts is PM2's: this many unstable restarts in a row and
	// the instance is errored.
	DefaultMaxRestarts = 16
	// DefaultKillTimeout is longer than PM2's 1.6 s, a known complaint
	// (pm2#1522, #2976): web servers routinely need a few seconds to drain.
	DefaultKillTimeout = Duration(5 * time.Second)
	// DefaultListenTimeout is PM2's: how long a new instance may take to
	// become ready.
	DefaultListenTimeout = Duration(3 * time.Second)
	// DefaultKillSignal is PM2's default stop signal.
	DefaultKillSignal = "SIGINT"
	// DefaultInstanceVar is the variable that carries the instance index.
	DefaultInstanceVar = "NODE_APP_INSTANCE"
	// BackoffBase is the first restart delay when the app sets neither
	// restart_delay nor exp_backoff_restart_delay: systemd's RestartSec
	// default, so a crash loop never spins at full speed.
	BackoffBase = Duration(100 * time.Millisecond)
	// BackoffCap bounds exponential backoff, as PM2 does (15 s).
	BackoffCap = Duration(15 * time.Second)
)

// Mode is an execution mode: how the instances of an app get their
// connections.
type Mode string

// The execution modes.
const (
	ModeFork    Mode = "fork"    // independent processes, nothing shared
	ModeCluster Mode = "cluster" // Node apps: tend is the Node cluster primary
	ModeSocket  Mode = "socket"  // any app: systemd socket activation (fd 3, LISTEN_FDS)
	ModeProxy   Mode = "proxy"   // any app: private PORT per instance, tend forwards
)

// Sched is a scheduling policy: how connections are spread over the
// instances that share a port.
type Sched string

// The scheduling policies.
const (
	SchedRoundRobin Sched = "rr"        // tend accepts and hands each connection to the next free instance
	SchedShared     Sched = "shared"    // every instance accepts on the shared socket
	SchedLeastConn  Sched = "leastconn" // proxy mode: the instance with fewest open connections
	SchedSticky     Sched = "sticky"    // cluster and proxy modes: the client's address picks the instance slot
	SchedReusePort  Sched = "reuseport" // cluster and socket modes: a socket per instance, in one SO_REUSEPORT group
)

// Counted reports whether tend hands out the connections under s, and so
// counts them per instance; under shared and reuseport the kernel does.
func (s Sched) Counted() bool { return s != SchedShared && s != SchedReusePort }

// AppSpec is what the user asked to run: the parsed form of `tend start`
// flags or of one entry of an ecosystem file. Keys follow PM2's names.
// The zero value of each optional field means "default". Settings
// describes every key; Validate checks a whole spec.
type AppSpec struct {
	Name            string   `json:"name"`
	Namespace       string   `json:"namespace,omitempty"`   // a group of apps, a target as in PM2
	Script          string   `json:"script"`                // path or command as given
	Args            []string `json:"args,omitempty"`        // passed to the script
	Cwd             string   `json:"cwd,omitempty"`         // absolute; defaults to the CLI's cwd
	Interpreter     string   `json:"interpreter,omitempty"` // "" = by extension, "none" = exec the script
	InterpreterArgs []string `json:"interpreter_args,omitempty"`
	Instances       int      `json:"instances"` // resolved count, at least 1
	// InstancesGiven says the count is the user's (-i, instances:), not the
	// default: a Node script then runs as a cluster even alone, as in PM2,
	// so that its reload has no downtime.
	InstancesGiven bool `json:"instances_given,omitempty"`

	// Env holds the variables the user gave (--env, env:, env_<name>:).
	Env map[string]string `json:"env,omitempty"`
	// EnvFile lists dotenv files (relative to Cwd) whose variables sit
	// under Env: read when the app starts and at each reload.
	EnvFile []string `json:"env_file,omitempty"`
	// BaseEnv is the environment of the shell that ran `tend start`
	// ("KEY=VALUE" entries). It sits under Env and under what tend sets.
	BaseEnv []string `json:"base_env,omitempty"`

	// User and Group run the instances as another user, by name or number
	// (the daemon must be root); Group defaults to the user's own.
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
	// MaxMemory, CPUQuota and MaxPids limit each instance, with what it
	// starts, in a cgroup of its own: bytes, percent of one CPU, tasks.
	MaxMemory int64 `json:"max_memory,omitempty"`
	CPUQuota  int   `json:"cpu_quota,omitempty"`
	MaxPids   int   `json:"max_pids,omitempty"`

	// Restart policy.
	Autorestart            *bool    `json:"autorestart,omitempty"` // nil = true
	Autostart              *bool    `json:"autostart,omitempty"`   // nil = true; false: listed, stopped
	MaxRestarts            int      `json:"max_restarts,omitempty"`
	MinUptime              Duration `json:"min_uptime,omitempty"`
	RestartDelay           Duration `json:"restart_delay,omitempty"`
	ExpBackoffRestartDelay Duration `json:"exp_backoff_restart_delay,omitempty"`
	StopExitCodes          []int    `json:"stop_exit_codes,omitempty"`
	MaxMemoryRestart       int64    `json:"max_memory_restart,omitempty"` // bytes
	// CronRestart replaces the running instances, one by one as a reload
	// does, on this cron schedule ("0 3 * * *", "@daily").
	CronRestart string `json:"cron_restart,omitempty"`
	// Watch lists files and directories (relative to Cwd) whose changes
	// replace the instances as a reload does; IgnoreWatch adds glob
	// patterns to the ignored names; WatchDelay gathers a burst of changes.
	Watch       []string `json:"watch,omitempty"`
	IgnoreWatch []string `json:"ignore_watch,omitempty"`
	WatchDelay  Duration `json:"watch_delay,omitempty"`

	// Stop and readiness.
	KillTimeout         Duration `json:"kill_timeout,omitempty"`
	KillSignal          string   `json:"kill_signal,omitempty"` // "SIGINT", "SIGTERM", ...
	ShutdownWithMessage bool     `json:"shutdown_with_message,omitempty"`
	WaitReady           bool     `json:"wait_ready,omitempty"`
	ListenTimeout       Duration `json:"listen_timeout,omitempty"`
	ReadyURL            string   `json:"ready_url,omitempty"`

	// Health: a liveness probe (one of HTTP, TCP or a command) that
	// replaces an instance after FailureThreshold failures in a row, and
	// the systemd watchdog (WATCHDOG_USEC, WATCHDOG=1 pings expected).
	LivenessHTTP     string   `json:"liveness_http,omitempty"` // http(s) URL, 2xx expected; $PORT and the instance's variables expanded
	LivenessTCP      string   `json:"liveness_tcp,omitempty"`  // host:port that must accept
	LivenessExec     string   `json:"liveness_exec,omitempty"` // a command line that must exit 0
	LivenessPeriod   Duration `json:"liveness_period,omitempty"`
	LivenessTimeout  Duration `json:"liveness_timeout,omitempty"`
	LivenessFailures int      `json:"liveness_failure_threshold,omitempty"`
	LivenessDelay    Duration `json:"liveness_initial_delay,omitempty"`
	Watchdog         Duration `json:"watchdog,omitempty"`
	// EjectSlowAfter, in proxy mode, takes out of rotation for a while an
	// instance that answers later than this while the others answer in
	// time (outlier ejection); zero: only refused connections eject.
	EjectSlowAfter Duration `json:"eject_slow_after,omitempty"`

	// Notifications: commands run, and a URL posted to, when an instance
	// exits by itself, gives up (errored) or is found unhealthy.
	OnExit      string `json:"on_exit,omitempty"`
	OnErrored   string `json:"on_errored,omitempty"`
	OnUnhealthy string `json:"on_unhealthy,omitempty"`
	NotifyURL   string `json:"notify_url,omitempty"`

	// Instance variables.
	InstanceVar  string `json:"instance_var,omitempty"`
	IncrementVar string `json:"increment_var,omitempty"`

	// Sharing a port.
	ExecMode Mode `json:"exec_mode,omitempty"` // ModeFork, ModeCluster, ModeSocket, ModeProxy; "" = the daemon decides (App.Resolved)
	Port     int  `json:"port,omitempty"`
	// Host is the address tend binds the shared port on in socket and
	// proxy modes: loopback unless the user names another ("0.0.0.0").
	// Node cluster apps bind what their listen() asks for.
	Host  string `json:"host,omitempty"`
	Sched Sched  `json:"sched,omitempty"` // SchedRoundRobin, SchedShared, SchedLeastConn

	// Logs.
	OutFile       string `json:"out_file,omitempty"`
	ErrorFile     string `json:"error_file,omitempty"`
	MergeLogs     bool   `json:"merge_logs,omitempty"`
	LogDateFormat string `json:"log_date_format,omitempty"`
	LogType       string `json:"log_type,omitempty"` // "" (raw) or "json"
	// Rotation: a log file is rotated when it would pass LogMaxSize bytes;
	// LogRetain rotated files are kept, gzipped with LogCompress. Zero
	// values take the daemon's defaults (see DefaultLogMaxSize).
	LogMaxSize  int64 `json:"log_max_size,omitempty"`
	LogRetain   int   `json:"log_retain,omitempty"`
	LogCompress bool  `json:"log_compress,omitempty"`

	// Order: Type is TypeService ("") or TypeTask; DependsOn lists the
	// apps that start before this one, and the condition each must meet.
	Type      AppType      `json:"type,omitempty"`
	DependsOn []Dependency `json:"depends_on,omitempty"`

	// LogRotateInterval also rotates log files by time, to dated names
	// (see ParseRotateInterval); "" takes the daemon's default, "false"
	// is none.
	LogRotateInterval string `json:"log_rotate_interval,omitempty"`
}

// Liveness defaults, Kubernetes's but for the timeout: a loaded machine
// answers a trivial request in well under 2 s, rarely under 1.
const (
	DefaultLivenessPeriod   = Duration(10 * time.Second)
	DefaultLivenessTimeout  = Duration(2 * time.Second)
	DefaultLivenessFailures = 3
)

// HasHooks reports whether the app asks to be told of its instances'
// exits, errors or ill health.
func (s *AppSpec) HasHooks() bool {
	return s.OnExit != "" || s.OnErrored != "" || s.OnUnhealthy != "" || s.NotifyURL != ""
}

// HasLiveness reports whether the app has a liveness probe.
func (s *AppSpec) HasLiveness() bool {
	return s.LivenessHTTP != "" || s.LivenessTCP != "" || s.LivenessExec != ""
}

// Log rotation defaults, unless the app or the daemon's config.yaml says
// otherwise: logs never fill a disk silently (PM2 needs a plug-in for
// this), and 10 files of 10 MB keep days of history for most services.
const (
	DefaultLogMaxSize = 10 << 20
	DefaultLogRetain  = 10
)

// AutostartOn reports whether tend start starts the app; without it the
// app is listed as stopped until tend start or restart names it.
func (s *AppSpec) AutostartOn() bool { return s.Autostart == nil || *s.Autostart }

// AutorestartOn reports whether crashed instances restart by themselves.
func (s *AppSpec) AutorestartOn() bool { return s.Autorestart == nil || *s.Autorestart }

// Exit records how one run of an instance ended.
type Exit struct {
	Time     time.Time `json:"time"`
	Code     int       `json:"code"`             // -1 when killed by a signal
	Signal   string    `json:"signal,omitempty"` // "SIGKILL", ...
	UptimeMS int64     `json:"uptime_ms"`
	Cause    string    `json:"cause"` // "crash", "exit" (code 0), "disconnect" (a Node worker that left by itself), "stop", "restart", "reload", "memory", "unhealthy"
}

// Instance is one row of `tend ls`: one slot of an app and the process
// currently in it.
type Instance struct {
	ID          int     `json:"id"`   // global id, stable for the slot's life
	Name        string  `json:"name"` // app name
	Namespace   string  `json:"namespace,omitempty"`
	Instance    int     `json:"instance"` // index within the app, 0..N-1
	PID         int     `json:"pid"`      // 0 when not running
	Status      Status  `json:"status"`
	Restarts    int     `json:"restarts"`
	UptimeMS    int64   `json:"uptime_ms"`
	CPU         float64 `json:"cpu"`    // percent of one core
	Memory      uint64  `json:"memory"` // resident bytes, whole process tree
	Mode        Mode    `json:"mode"`
	User        string  `json:"user"`
	Port        int     `json:"port,omitempty"`
	Sched       Sched   `json:"sched,omitempty"`
	Connections uint64  `json:"connections,omitempty"` // handed to this instance by tend
	Ready       bool    `json:"ready"`
	// Health is what its liveness probe or watchdog says: HealthOK,
	// HealthFailing or HealthUnhealthy; "" without either, or before the
	// first answer.
	Health        string `json:"health,omitempty"`
	ProbeFailures int    `json:"probe_failures,omitempty"` // failed probes of the current process
	// NextRestartMS is how long until a waiting instance restarts.
	NextRestartMS int64 `json:"next_restart_ms,omitempty"`
	LastExit      *Exit `json:"last_exit,omitempty"`
	// Problem is a short human explanation when something is wrong
	// (did not listen, listens on another port, cannot write logs).
	Problem string `json:"problem,omitempty"`
}

// EventKind says what an Event reports.
type EventKind string

// The kinds of Event.
const (
	// EventInstance: the instance's state (status, pid, readiness,
	// restarts, problem, port or last exit) changed, or it is the current
	// state a stream starts with (or resumes with after EventLost).
	EventInstance EventKind = "instance"
	// EventRemoved: the instance left its app (scale down, delete).
	EventRemoved EventKind = "removed"
	// EventLost: the reader fell behind and Lost events were dropped.
	EventLost EventKind = "lost"
)

// Event is one line of `tend events`: a change of one instance.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     EventKind `json:"kind"`
	App      string    `json:"app,omitempty"`
	ID       int       `json:"id"`
	Instance int       `json:"instance"`
	PID      int       `json:"pid"`
	Status   Status    `json:"status,omitempty"`
	Ready    bool      `json:"ready"`
	Restarts int       `json:"restarts"`
	Port     int       `json:"port,omitempty"`
	LastExit *Exit     `json:"last_exit,omitempty"`
	Problem  string    `json:"problem,omitempty"`
	Health   string    `json:"health,omitempty"`
	Lost     int       `json:"lost,omitempty"`
}

// EventOf is the event that reports in's state.
func EventOf(in Instance, kind EventKind, t time.Time) Event {
	return Event{Time: t, Kind: kind, App: in.Name, ID: in.ID, Instance: in.Instance, PID: in.PID,
		Status: in.Status, Ready: in.Ready, Restarts: in.Restarts, Port: in.Port, LastExit: in.LastExit, Problem: in.Problem, Health: in.Health}
}

// Resolved is what tend chose for an app from its spec: how its
// instances share the port, and what runs.
type Resolved struct {
	Mode       Mode     `json:"mode"`            // exec mode: the spec's, or the one tend chose
	Sched      Sched    `json:"sched,omitempty"` // scheduling, when instances share a port
	ScriptPath string   `json:"script_path"`     // resolved absolute path
	Command    []string `json:"command"`         // argv actually executed
	// MaxMemoryRestart is the max_memory_restart tend chose for an app
	// that sets none, from the cgroup's memory limit (MemoryShare); 0 for
	// none.
	MaxMemoryRestart int64 `json:"max_memory_restart,omitempty"`
}

// App is the full picture of one app, as `tend describe` shows it: Spec
// is what the user asked, Resolved what tend chose.
type App struct {
	Spec AppSpec `json:"spec"`
	Resolved
	OutLog      []string   `json:"out_log"`       // per instance
	ErrLog      []string   `json:"err_log"`       // per instance
	Instances   []Instance `json:"instances"`     // one per slot
	Exits       []Exit     `json:"exits"`         // most recent last, bounded
	EnvKeys     []string   `json:"env_keys"`      // keys the user gave
	EnvValues   []string   `json:"env,omitempty"` // KEY=VALUE, only when asked
	CreatedAt   time.Time  `json:"created_at"`
	LogProblems []string   `json:"log_problems,omitempty"`
	// LastReload is the report of the app's most recent reload or scale.
	LastReload *ReloadReport `json:"last_reload,omitempty"`
}

// ReloadStep is what a reload did to one instance slot.
type ReloadStep struct {
	ID        int    `json:"id"`
	Instance  int    `json:"instance"`
	OldPID    int    `json:"old_pid,omitempty"`
	NewPID    int    `json:"new_pid,omitempty"`
	ReadyMS   int64  `json:"ready_ms"`             // the new process was ready after
	ReadyBy   string `json:"ready_by,omitempty"`   // which signal: listening, ready, notify, tcp, http, timeout
	StoppedMS int64  `json:"stopped_ms,omitempty"` // the old process was gone after
	Error     string `json:"error,omitempty"`      // why the reload stopped here
	// OwnPorts are the ports the old process listened on itself (an app
	// in fork mode): the new one could not bind them beside it, so the
	// old one stopped first and the instance was down in between.
	OwnPorts []int `json:"own_ports,omitempty"`
	// Hint says, with OwnPorts, how the app would reload without downtime.
	Hint string `json:"hint,omitempty"`
}

// ReloadReport is the outcome of one reload (or scale) of one app.
type ReloadReport struct {
	App        string       `json:"app"`
	Action     string       `json:"action"` // "reload" or "scale"
	Time       time.Time    `json:"time"`
	DurationMS int64        `json:"duration_ms"`
	OK         bool         `json:"ok"`
	Error      string       `json:"error,omitempty"`
	Steps      []ReloadStep `json:"steps"`
	// EnvChanges names the variables the reload changed for the new
	// instances: "+KEY" added, "~KEY" changed, "-KEY" removed. Values are
	// not shown: they may be secrets.
	EnvChanges []string `json:"env_changes,omitempty"`
}

// The states of Instance.Health.
const (
	HealthOK        = "healthy"
	HealthFailing   = "failing"   // failed probes, fewer than the threshold
	HealthUnhealthy = "unhealthy" // judged unhealthy: being replaced
)
