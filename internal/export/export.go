package export

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/daemon"
)

// Handling says what becomes of one setting in a target's output.
type Handling int

// The ways a target handles a setting.
const (
	// Mapped: the output expresses the setting in the target's own terms.
	Mapped Handling = iota + 1
	// ByTend: the output does not, but tend run, which the target runs,
	// applies it from the file. With a --command that does not run tend,
	// a warning says it is dropped.
	ByTend
	// Dropped: nothing applies it; a warning says so when an app sets it.
	Dropped
)

// Options are what an export needs beyond the apps.
type Options struct {
	// File is the ecosystem file the apps come from, as the user named
	// it. The default command runs tend with it: by its base name in an
	// image (whose working directory holds it), by its absolute path in a
	// systemd unit.
	File string
	// EnvName is the env_<name> block the apps were loaded with; the
	// default command passes it on (--env). "" is none.
	EnvName string
	// Image is the container image that holds tend and the file
	// (Kubernetes, compose: required).
	Image string
	// Command replaces the default command, tend run. nil: the default.
	Command []string
	// Tend is the path of the tend binary a systemd unit runs; ""
	// is DefaultTend.
	Tend string
	// User is the user a systemd unit runs as (User=); "" writes none:
	// root for a system unit, the user for a user unit.
	User string
	// Path is the PATH a systemd unit runs with, so that the interpreters
	// found now (node from nvm, a virtualenv's python) are found then; ""
	// writes none: systemd's own.
	Path string
	// DrainDelay is tend run's --drain-delay in a Kubernetes pod: how long,
	// told to stop, it fails /readyz while the apps still serve, so that
	// the Service stops sending the pod connections first. Zero: none.
	DrainDelay time.Duration
	// HealthPort is the port of tend run's health endpoints (/livez,
	// /readyz, /startupz) in a Kubernetes pod, which its probes ask; 0 is
	// DefaultHealthPort.
	HealthPort int
}

// DefaultHealthPort is where tend run serves its health endpoints in an
// exported pod: beside tend's metrics (9615) and web dashboard (9617)
// defaults, and off the ports apps commonly take (3000, 8000, 8080).
const DefaultHealthPort = 9616

// Target is one kind of output: Kubernetes, compose or systemd.
type Target struct {
	Name  string // as the command names it: kubernetes, compose, systemd
	Title string // as messages name it: Kubernetes, docker compose, systemd
	// Handling has an entry for each key of tend.Settings. A key it
	// lacks is treated as Dropped (and a test fails).
	Handling   map[string]Handling
	needsImage bool
	write      func(w *writer, apps []tend.AppSpec) error
}

// inTend are the settings that tend applies itself, from the file,
// wherever it runs: what is run, how instances share a port, restarts,
// readiness, hooks, logs, the user and the per-instance limits. No target
// says them in its own terms.
var inTend = []string{
	"script", "args", "cwd", "interpreter", "interpreter_args", "env_file", "exec_mode", "host", "sched",
	"max_restarts", "min_uptime", "restart_delay", "exp_backoff_restart_delay", "stop_exit_codes", "cron_restart",
	"watch", "ignore_watch", "watch_delay", "autostart",
	"kill_signal", "shutdown_with_message", "wait_ready", "listen_timeout", "instance_var", "increment_var",
	"watchdog", "eject_slow_after", "on_exit", "on_errored", "on_unhealthy", "notify_url",
	"out_file", "error_file", "merge_logs", "log_date_format", "time", "log_type", "log_max_size", "log_retain", "log_compress", "log_rotate_interval",
	"user", "group", "max_memory", "cpu_quota", "max_pids",
	"type", // tend run runs a task to its end and exits 0 (then no target restarts it but a Deployment: see kubernetes.go)
}

// handling is a target's Handling: mapped are Mapped; inTend, but those,
// and byTend are ByTend. A key named twice is a mistake in the tables.
func handling(mapped []string, byTend ...string) map[string]Handling {
	h := map[string]Handling{}
	set := func(k string, v Handling) {
		if _, dup := h[k]; dup {
			panic("export: " + k + " is handled twice")
		}
		h[k] = v
	}
	for _, k := range mapped {
		set(k, Mapped)
	}
	for _, k := range append(slices.Clone(inTend), byTend...) {
		if !slices.Contains(mapped, k) { // a target may say what tend does (cwd)
			set(k, ByTend)
		}
	}
	return h
}

// dropping marks keys Dropped in h: the target has no way to say them.
func dropping(h map[string]Handling, keys ...string) map[string]Handling {
	for _, k := range keys {
		if _, dup := h[k]; dup {
			panic("export: " + k + " is handled twice")
		}
		h[k] = Dropped
	}
	return h
}

// Targets are the outputs of tend export, in the order help lists them.
var Targets = []*Target{kubernetesTarget, composeTarget, systemdTarget}

// Lookup returns the target called name.
func Lookup(name string) (*Target, bool) {
	for _, t := range Targets {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// Export writes the target's output for apps to out. The warnings, one
// line each ("app \"api\": ..."), name every setting of an app that the
// output does not carry out. Bad options are an EINVALID error, and then
// nothing is written.
func (t *Target) Export(out io.Writer, apps []tend.AppSpec, o Options) (warnings []string, err error) {
	if o.File == "" {
		return nil, tend.Errorf(tend.EINVALID, "no ecosystem file: the output runs tend run with the file the apps come from")
	}
	if t.needsImage && strings.TrimSpace(o.Image) == "" {
		return nil, tend.Errorf(tend.EINVALID, "--image is required: the image that holds tend and %s, e.g. --image registry.example.com/shop:1.0", filepath.Base(o.File))
	}
	if strings.ContainsAny(o.Image, " \t\n") {
		return nil, tend.Errorf(tend.EINVALID, "--image %q has blanks in it: give an image reference, e.g. registry.example.com/shop:1.0", o.Image)
	}
	if o.Command != nil && len(o.Command) == 0 {
		return nil, tend.Errorf(tend.EINVALID, "--command is empty: give the command the target runs, or leave it out for tend run")
	}
	if o.DrainDelay < 0 {
		return nil, tend.Errorf(tend.EINVALID, "--drain-delay %s must not be negative", o.DrainDelay)
	}
	if o.HealthPort < 0 || o.HealthPort > 65535 {
		return nil, tend.Errorf(tend.EINVALID, "--health-port %d is not a port: give one from 1 to 65535", o.HealthPort)
	}
	o.HealthPort = cmp.Or(o.HealthPort, DefaultHealthPort)
	w := &writer{t: t, o: o}
	for i := range apps {
		w.account(&apps[i])
	}
	if err := t.write(w, apps); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(out, w.out.String()); err != nil {
		return nil, err
	}
	return w.warnings, nil
}

// writer is one export in progress: its output and its warnings.
type writer struct {
	t        *Target
	o        Options
	out      strings.Builder
	warnings []string
}

func (w *writer) warn(s *tend.AppSpec, format string, args ...any) {
	w.warnings = append(w.warnings, fmt.Sprintf("app %q: ", s.Name)+fmt.Sprintf(format, args...))
}

// account warns of each setting s gives that the output will not carry
// out: those the target cannot express, and, when the command is not
// tend, those that only tend applies.
func (w *writer) account(s *tend.AppSpec) {
	runsTend := w.runsTend()
	for i := range tend.Settings {
		st := &tend.Settings[i]
		if _, set := st.Show(s); !set {
			continue
		}
		switch h, ok := w.t.Handling[st.Key]; {
		case st.Key == "depends_on" && w.o.Command != nil && runsTend:
			// A command that may run every app: tend run orders them.
		case !ok || h == Dropped:
			w.warn(s, "%s has no %s equivalent; dropped", st.Key, w.t.Title)
		case h == ByTend && !runsTend:
			w.warn(s, "%s is applied by tend, and --command does not run tend; dropped", st.Key)
		}
	}
	if runsTend {
		w.privileges(s)
	}
}

// privileges warns of the settings tend run applies only with rights the
// target may not give it: another user needs tend to run as root, and
// limits need cgroups it can write.
func (w *writer) privileges(s *tend.AppSpec) {
	if s.User != "" || s.Group != "" {
		switch {
		case w.t.Name == "systemd" && w.o.User != "" && w.o.User != "root":
			w.warn(s, "user/group: the unit runs tend as %s, which cannot run the app as another user; drop --user, or the app's user", w.o.User)
		case w.t.Name != "systemd":
			w.warn(s, "user/group: tend run must be root in the container to run the app as another user")
		}
	}
	if supervisorLimits(s) && w.t.Name != "systemd" {
		w.warn(s, "max_memory, cpu_quota and max_pids need a cgroup tend run can write, which containers seldom give (a read-only /sys/fs/cgroup): the %s's resources carry max_memory for every instance", w.t.Title)
	}
}

// supervisorLimits reports whether s has per-instance cgroup limits.
func supervisorLimits(s *tend.AppSpec) bool {
	return s.MaxMemory > 0 || s.CPUQuota > 0 || s.MaxPids > 0
}

// runsTend reports whether the command the output runs is tend.
func (w *writer) runsTend() bool {
	if w.o.Command == nil {
		return true
	}
	_, ok := tendRunArgs(w.o.Command)
	return ok
}

// tendRunArgs finds "tend run" in cmd, also behind an init (tini --
// tend run ...) or in a shell's script (sh -c "exec tend run ..."), and
// returns the words after it.
func tendRunArgs(cmd []string) ([]string, bool) {
	for i, word := range cmd {
		if filepath.Base(word) == "tend" && i+1 < len(cmd) && cmd[i+1] == "run" {
			return cmd[i+2:], true
		}
		if strings.ContainsAny(word, " \t") {
			if words, err := tend.SplitWords(word); err == nil {
				if args, ok := tendRunArgs(words); ok {
					return firstCommand(args), true
				}
			}
		}
	}
	return nil, false
}

// firstCommand cuts the words that follow a command's name in a shell
// script at the end of that command: at its first control operator (;
// & && || |), alone or written against a word ("30s;"), so that another
// command's words are not taken for tend run's. A & after > or < or
// before > is a redirection (2>&1, &>log), which does not end it. The
// quotes are gone by now, so a quoted ';' cuts too: none of the flags
// read from tend run's words holds one.
func firstCommand(words []string) []string {
	for i, w := range words {
		for j := 0; j < len(w); j++ {
			switch w[j] {
			case ';', '|':
			case '&':
				if j > 0 && (w[j-1] == '>' || w[j-1] == '<') || j+1 < len(w) && w[j+1] == '>' {
					continue
				}
			default:
				continue
			}
			cut := slices.Clone(words[:i])
			if j > 0 {
				cut = append(cut, w[:j])
			}
			return cut
		}
	}
	return words
}

// command is what runs app s: tend run with the file, for this app
// only, unless the user gave another command. tendPath and file are how
// the target names tend and the file.
func (w *writer) command(s *tend.AppSpec, tendPath, file string) []string {
	if w.o.Command != nil {
		return w.o.Command
	}
	cmd := []string{tendPath, "run", file}
	if w.o.EnvName != "" {
		cmd = append(cmd, "--env", w.o.EnvName)
	}
	cmd = append(cmd, "--only", s.Name)
	if len(s.DependsOn) > 0 {
		// Its dependencies run in their own place: the target orders
		// them (compose) or warned that it cannot.
		cmd = append(cmd, "--no-deps")
	}
	return cmd
}

// probeKeys are the settings of an app's readiness and liveness probes.
var probeKeys = []string{"ready_url", "liveness_http", "liveness_tcp", "liveness_exec",
	"liveness_period", "liveness_timeout", "liveness_failure_threshold", "liveness_initial_delay"}

// probe is a check of an app's health or readiness, as its setting says.
type probe struct {
	key     string   // the setting it comes from
	scheme  string   // "http", "https", "tcp" or "exec"
	host    string   // as written; "" for exec
	port    int      // the port it reaches
	path    string   // http(s): the path and query, "/" at least
	command []string // exec: the command line
}

// probeOf reads setting key's value v as a probe. A port written as a
// variable ($PORT) is the app's port; without one the probe cannot be
// written, and a warning says so (ok false).
func (w *writer) probeOf(s *tend.AppSpec, key, v string) (p probe, ok bool) {
	p.key = key
	if key == "liveness_exec" {
		words, err := tend.SplitWords(v)
		if err != nil || len(words) == 0 {
			w.warn(s, "%s %q is not a command line; dropped", key, v)
			return p, false
		}
		p.scheme, p.command = "exec", words
		return p, true
	}
	rest := v
	switch {
	case strings.HasPrefix(v, "http://"), strings.HasPrefix(v, "https://"), strings.HasPrefix(v, "tcp://"):
		p.scheme, rest, _ = strings.Cut(v, "://")
	default: // liveness_tcp: host:port
		p.scheme = "tcp"
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	if p.scheme != "tcp" {
		p.path = "/"
		if hasPath {
			p.path += path
		}
	}
	host, port, err := net.SplitHostPort(authority)
	if err != nil { // no port: the scheme's
		host, port = authority, map[string]string{"http": "80", "https": "443"}[p.scheme]
	}
	p.host = host
	if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65536 {
		p.port = n
		return p, true
	}
	if strings.HasPrefix(port, "$") && s.Port != 0 {
		p.port = s.Port // $PORT: the instance's, which shares the app's port or sits behind it
		return p, true
	}
	w.warn(s, "%s %s: its port is not a number, and the app has no port: to stand for; dropped", key, v)
	return p, false
}

// probes returns the app's readiness probe (ready_url) and its liveness
// probe (liveness_http, liveness_tcp or liveness_exec), each if any.
func (w *writer) probes(s *tend.AppSpec) (ready, live *probe) {
	if s.ReadyURL != "" {
		if p, ok := w.probeOf(s, "ready_url", s.ReadyURL); ok {
			ready = &p
		}
	}
	for _, c := range []struct{ key, v string }{{"liveness_http", s.LivenessHTTP}, {"liveness_tcp", s.LivenessTCP}, {"liveness_exec", s.LivenessExec}} {
		if c.v == "" {
			continue
		}
		if p, ok := w.probeOf(s, c.key, c.v); ok {
			live = &p
		}
	}
	return ready, live
}

// livenessTiming is an app's liveness period, timeout and threshold,
// with tend's defaults.
func livenessTiming(s *tend.AppSpec) (period, timeout time.Duration, failures int) {
	period, timeout, failures = s.LivenessPeriod.D(), s.LivenessTimeout.D(), s.LivenessFailures
	if period == 0 {
		period = tend.DefaultLivenessPeriod.D()
	}
	if timeout == 0 {
		timeout = tend.DefaultLivenessTimeout.D()
	}
	if failures == 0 {
		failures = tend.DefaultLivenessFailures
	}
	return period, timeout, failures
}

// tendMemory is what tend itself needs beside its apps' instances in a
// pod or a container: tend run measured 14.5 MiB resident (VmHWM) with
// the Node example's 2 instances after 200 requests; 64 MiB leaves the
// Go heap room to grow under load and with many log lines in flight.
const tendMemory = 64 << 20

// resources is what an app asks of its machine: a CPU per instance when
// it sets instances, so that tend run with instances: max in a container
// limited to them starts that many (tend counts a CPU quota, rounded
// up); and, with max_memory_restart, memory for every instance up to it
// plus tend's own, so that tend replaces an instance that grows before
// the kernel's OOM killer ends them all. Zero: not asked.
func resources(s *tend.AppSpec) (cpus int, memory int64) {
	if s.InstancesGiven {
		cpus = max(s.Instances, 1)
	}
	if per := max(s.MaxMemory, s.MaxMemoryRestart); per > 0 {
		memory = int64(max(s.Instances, 1))*per + tendMemory
	}
	return cpus, memory
}

// mebibytes is n bytes in MiB, rounded up.
func mebibytes(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// stopBound is how long tend run in the target may take to stop, after
// drain (daemon.StopBound): with the default command it runs app s alone
// (--only, and --no-deps with depends_on); another command may run every
// app of the file, whose depends_on layers stop one after another.
func (w *writer) stopBound(s *tend.AppSpec, apps []tend.AppSpec, drain time.Duration) time.Duration {
	return daemon.StopBound(w.commandDrain(drain), daemon.StopTime(w.runs(s, apps)))
}

// runs is what tend run runs in app s's target: s alone with the default
// command (--only, and --no-deps with depends_on), every app of the file
// with another command, which may run them all.
func (w *writer) runs(s *tend.AppSpec, apps []tend.AppSpec) []tend.AppSpec {
	if w.o.Command != nil {
		return apps
	}
	return []tend.AppSpec{*s}
}

// commandDrain is the drain delay that tend run, as the command runs it,
// waits on a stop signal, where drain is what the target's own command
// would pass: a --command that runs tend with --drain-delay waits that,
// and one with --health-addr alone waits tend run's default, whatever
// the export's --drain-delay says. The bound is never shortened below
// drain, which the user asked for.
func (w *writer) commandDrain(drain time.Duration) time.Duration {
	f := w.commandFlags()
	switch {
	case f.drain != nil:
		return *f.drain
	case f.healthAddr != nil:
		return max(drain, daemon.DefaultDrainDelay)
	}
	return drain
}

// runFlags are the flags of a --command that runs tend run which decide
// what its pod's probes reach and how long its stop takes; nil when the
// command does not name them.
type runFlags struct {
	healthAddr *string
	drain      *time.Duration
}

// commandFlags reads runFlags from --command, as tend run's flag parser
// would: "--flag value" or "--flag=value". A --drain-delay tend run would
// refuse is left out: that command does not start.
func (w *writer) commandFlags() runFlags {
	var f runFlags
	if w.o.Command == nil {
		return f
	}
	args, _ := tendRunArgs(w.o.Command)
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			break // what follows is the app's
		}
		name, value, inline := strings.Cut(args[i], "=")
		if name != "--health-addr" && name != "--drain-delay" {
			continue
		}
		if !inline {
			if i+1 == len(args) {
				break
			}
			i++
			value = args[i]
		}
		switch name {
		case "--health-addr":
			f.healthAddr = &value
		case "--drain-delay":
			if d, err := tend.ParseDuration(value); err == nil {
				f.drain = new(d.D())
			}
		}
	}
	return f
}

// wholeSeconds is d in whole seconds, rounded up: a bound that a target
// counts in seconds is never shortened.
func wholeSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// dnsName makes name a DNS label, as Kubernetes and compose name things:
// lowercase letters, digits and '-', at most 63, starting and ending
// with a letter or digit.
func dnsName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

// names gives each app the name the target calls it by, warns of those
// it had to change and refuses two apps that would share one.
func (w *writer) names(apps []tend.AppSpec, rename func(string) string) (map[string]string, error) {
	names, owner := map[string]string{}, map[string]string{}
	for i := range apps {
		s := &apps[i]
		n := rename(s.Name)
		if prev, ok := owner[n]; ok {
			return nil, tend.Errorf(tend.EINVALID, "apps %q and %q would both be named %q in %s: rename one of them in %s", prev, s.Name, n, w.t.Title, w.o.File)
		}
		if n != s.Name {
			w.warn(s, "named %q in %s, which does not take %q as a name", n, w.t.Title, s.Name)
		}
		names[s.Name], owner[n] = n, s.Name
	}
	return names, nil
}

// checkHost warns when tend binds app s's port where who, outside the
// container, cannot reach it: on loopback, as socket and proxy modes do
// without host:. (Node scripts, run as cluster workers by default, and
// apps in fork mode bind what they ask for.)
func (w *writer) checkHost(s *tend.AppSpec, who string) {
	switch s.Host {
	case "", "127.0.0.1", "localhost", "::1":
	default:
		return
	}
	ext := strings.ToLower(filepath.Ext(s.Script))
	node := filepath.Base(s.Interpreter) == "node" || s.Interpreter == "" && (ext == ".js" || ext == ".mjs" || ext == ".cjs")
	if s.ExecMode == tend.ModeSocket || s.ExecMode == tend.ModeProxy || s.ExecMode == "" && !node {
		w.warn(s, "tend binds port %d on loopback in socket and proxy modes unless host: says otherwise, and %s cannot reach it there: set host: 0.0.0.0", s.Port, who)
	}
}
