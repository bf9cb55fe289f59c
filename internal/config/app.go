package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tendhq/tend"
	yaml "go.yaml.in/yaml/v4"
)

// appDecoder turns one app mapping into a tend.AppSpec.
type appDecoder struct {
	file  string  // for messages
	index int     // position in the apps list, for apps without a name
	opt   Options // EnvName and BaseEnv
	dir   string  // absolute directory that relative paths start from
	label string  // `app "api"` or `apps[2]`, for messages

	spec       tend.AppSpec
	env        map[string]string // env:
	envOver    map[string]string // env_<opt.EnvName>:
	time       bool              // time: true
	nameNode   *yaml.Node        // where the name came from, for duplicate names
	dateFormat bool              // log_date_format: given
}

// decodeApp decodes app mapping n, the index-th app of file.
func decodeApp(file string, index int, n *yaml.Node, opt Options, dir string) (tend.AppSpec, *yaml.Node, error) {
	d := &appDecoder{file: file, index: index, opt: opt, dir: dir, label: fmt.Sprintf("apps[%d]", index)}
	if n.Kind != yaml.MappingNode {
		return tend.AppSpec{}, nil, posErr(file, n, "%s: expected a mapping, got %s", d.label, describe(n))
	}
	d.nameApp(n)
	es, err := entries(n)
	if err != nil {
		return tend.AppSpec{}, nil, d.errAt(err, n, "")
	}

	seen := map[string]*yaml.Node{} // canonical key -> key as written
	for _, e := range es {
		key := e.key.Value
		canon, ok := appKeys[key]
		if !ok && strings.HasPrefix(key, "env_") && len(key) > len("env_") {
			canon = "env_"
			ok = true
		}
		if !ok {
			return tend.AppSpec{}, nil, d.unknownKey(e.key)
		}
		if canon == ignoredKey {
			continue
		}
		if prev, dup := seen[canon]; dup && canon != "env_" {
			return tend.AppSpec{}, nil, posErr(file, e.key, "duplicate key %q: %q at line %d already sets it (%s)",
				key, prev.Value, prev.Line, d.label)
		}
		seen[canon] = e.key
		if err := d.set(canon, key, e.val); err != nil {
			return tend.AppSpec{}, nil, d.errAt(err, e.val, key)
		}
	}
	if err := d.finish(n); err != nil {
		return tend.AppSpec{}, nil, err
	}
	return d.spec, d.nameNode, nil
}

// nameApp finds the app's name, given or derived from its script, before
// anything else so that every message can say which app it is about. It
// reads the mapping as written, so that it works even when the mapping is
// about to be rejected.
func (d *appDecoder) nameApp(n *yaml.Node) {
	var script *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		switch appKeys[k.Value] {
		case "name":
			if isString(v) && strings.TrimSpace(v.Value) != "" {
				d.spec.Name, d.nameNode = strings.TrimSpace(v.Value), v
			}
		case "script":
			if script == nil && isString(v) && strings.TrimSpace(v.Value) != "" {
				script = v
			}
		}
	}
	if d.spec.Name == "" && script != nil {
		d.spec.Name, d.nameNode = DefaultName(script.Value), script
	}
	if d.spec.Name != "" {
		d.label = fmt.Sprintf("app %q", d.spec.Name)
	}
}

// set decodes the value v of key (canonical name canon) into the spec.
func (d *appDecoder) set(canon, key string, v *yaml.Node) error {
	s := &d.spec
	var err error
	switch canon {
	case "name":
		var name string
		if name, err = str(v); err == nil {
			err = tend.CheckName(strings.TrimSpace(name))
		}
	case "script":
		if s.Script, err = str(v); err == nil && strings.TrimSpace(s.Script) == "" {
			err = errors.New("must not be empty")
		}
	case "args":
		s.Args, err = words(v)
	case "cwd":
		var cwd string
		if cwd, err = str(v); err == nil {
			s.Cwd = d.path(cwd)
		}
	case "interpreter":
		s.Interpreter, err = str(v)
	case "interpreter_args":
		s.InterpreterArgs, err = words(v)
	case "instances":
		var t string
		if t, err = numText(v); err == nil {
			s.Instances, err = ParseInstances(t)
			s.InstancesGiven = true
		}
	case "exec_mode":
		var m string
		if m, err = str(v); err == nil {
			s.ExecMode, err = execMode(m)
		}
	case "port":
		s.Port, err = port(v)
	case "log_max_size":
		var t string
		if t, err = numText(v); err == nil {
			s.LogMaxSize, err = ParseBytes(t)
		}
	case "log_retain":
		s.LogRetain, err = count(v)
	case "log_compress":
		s.LogCompress, err = boolean(v)
	case "host":
		if s.Host, err = str(v); err == nil && net.ParseIP(s.Host) == nil && s.Host != "localhost" {
			err = fmt.Errorf("%q is not an IP address (127.0.0.1, 0.0.0.0, ::1, ...)", s.Host)
		}
	case "sched":
		if s.Sched, err = str(v); err == nil {
			err = oneOf(s.Sched, tend.SchedRoundRobin, tend.SchedShared, tend.SchedLeastConn)
		}
	case "env":
		d.env, err = env(v)
	case "env_":
		var m map[string]string
		if m, err = env(v); err == nil && key == "env_"+d.opt.EnvName {
			d.envOver = m
		}
	case "autorestart":
		s.Autorestart, err = boolPtr(v)
	case "autostart":
		s.Autostart, err = boolPtr(v)
	case "namespace":
		if s.Namespace, err = str(v); err == nil && s.Namespace != "" {
			err = tend.CheckName(s.Namespace)
		}
	case "cron_restart":
		if s.CronRestart, err = str(v); err == nil {
			_, err = ParseCron(s.CronRestart)
		}
	case "watch":
		// true watches cwd; a path or a list of paths watches those.
		if v.Kind == yaml.ScalarNode && v.Tag == "!!bool" {
			var on bool
			if on, err = boolean(v); on {
				s.Watch = []string{"."}
			}
		} else {
			s.Watch, err = words(v)
		}
	case "ignore_watch":
		if s.IgnoreWatch, err = words(v); err == nil {
			err = CheckGlobs(s.IgnoreWatch)
		}
	case "watch_delay":
		s.WatchDelay, err = duration(v)
	case "max_restarts":
		s.MaxRestarts, err = count(v)
	case "min_uptime":
		s.MinUptime, err = duration(v)
	case "restart_delay":
		s.RestartDelay, err = duration(v)
	case "exp_backoff_restart_delay":
		s.ExpBackoffRestartDelay, err = duration(v)
	case "kill_timeout":
		s.KillTimeout, err = duration(v)
	case "listen_timeout":
		s.ListenTimeout, err = duration(v)
	case "kill_signal":
		var sig string
		if sig, err = str(v); err == nil {
			s.KillSignal, err = ParseSignal(sig)
		}
	case "stop_exit_codes":
		s.StopExitCodes, err = exitCodes(v)
	case "max_memory_restart":
		var t string
		if t, err = numText(v); err == nil {
			s.MaxMemoryRestart, err = ParseBytes(t)
		}
	case "shutdown_with_message":
		s.ShutdownWithMessage, err = boolean(v)
	case "wait_ready":
		s.WaitReady, err = boolean(v)
	case "ready_url":
		if s.ReadyURL, err = str(v); err == nil {
			err = checkURL(s.ReadyURL)
		}
	case "instance_var":
		if s.InstanceVar, err = str(v); err == nil {
			err = checkEnvName(s.InstanceVar)
		}
	case "increment_var":
		if s.IncrementVar, err = str(v); err == nil {
			err = checkEnvName(s.IncrementVar)
		}
	case "out_file":
		s.OutFile, err = str(v)
	case "error_file":
		s.ErrorFile, err = str(v)
	case "merge_logs":
		s.MergeLogs, err = boolean(v)
	case "log_date_format":
		var f string
		if f, err = str(v); err == nil {
			s.LogDateFormat = goLayout(f)
			d.dateFormat = true
		}
	case "time":
		d.time, err = boolean(v)
	case "log_type":
		var t string
		if t, err = str(v); err == nil {
			if err = oneOf(t, "json", "raw"); err == nil && t == "json" {
				s.LogType = t // "" is raw
			}
		}
	default:
		// appKeys names a key this switch does not know: a bug here, not
		// in the user's file.
		return fmt.Errorf("internal error: no decoder for key %q", canon)
	}
	return err
}

// finish checks what the app as a whole needs and fills in the values this
// package is responsible for (see the package comment).
func (d *appDecoder) finish(n *yaml.Node) error {
	s := &d.spec
	if s.Script == "" {
		return posErr(d.file, n, "missing key \"script\" in %s", d.label)
	}
	if s.Cwd == "" {
		s.Cwd = d.dir
	}
	if !s.InstancesGiven {
		s.Instances = 1
	}
	if len(d.env) > 0 || len(d.envOver) > 0 {
		s.Env = make(map[string]string, len(d.env)+len(d.envOver))
		maps.Copy(s.Env, d.env)
		maps.Copy(s.Env, d.envOver)
	}
	if d.time && !d.dateFormat {
		s.LogDateFormat = timeLayout
	}
	s.BaseEnv = slices.Clone(d.opt.BaseEnv)
	return nil
}

// errAt positions err (from decoding key's value v) in the file. An error
// that is already a *tend.Error with a position passes through.
func (d *appDecoder) errAt(err error, v *yaml.Node, key string) error {
	msg := err.Error()
	if te, ok := errors.AsType[*tend.Error](err); ok {
		msg = te.Message
	}
	if key != "" {
		msg = key + ": " + msg
	}
	return posErr(d.file, at(err, v), "%s (%s)", msg, d.label)
}

// unknownKey is the error for a key tend does not know, with the nearest
// known key when it looks like a typo.
func (d *appDecoder) unknownKey(k *yaml.Node) error {
	if unsupportedKeys[k.Value] {
		return posErr(d.file, k, "key %q in %s is not supported by tend", k.Value, d.label)
	}
	msg := fmt.Sprintf("unknown key %q in %s", k.Value, d.label)
	if s := suggest(k.Value, appKeyNames()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return posErr(d.file, k, "%s", msg)
}

// path makes p absolute: "~/x" is under the home directory, a relative path
// is under the app's base directory.
func (d *appDecoder) path(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[1:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	return filepath.Clean(p)
}

// interpreters are commands that run the next word, so the app is named for
// that word: "python3 app.py" is "app", as PM2 names it.
var interpreters = regexp.MustCompile(`^(node|nodejs|bun|deno|tsx|ts-node|python[0-9.]*|pypy[0-9.]*|ruby|php|perl|bash|sh|dash|zsh|ksh|fish|java|env|uv|uvx|exec)$`)

// DefaultName is PM2's default app name: the script's base name without
// its extension. For a command it is the first word that is not an
// interpreter or a flag. What would not be a valid name is made one
// (tend.SafeName).
func DefaultName(script string) string { return tend.SafeName(baseName(script)) }

func baseName(script string) string {
	ws, err := splitWords(script)
	if err != nil || len(ws) == 0 {
		ws = strings.Fields(script)
	}
	word := ""
	for _, w := range ws {
		if strings.HasPrefix(w, "-") || interpreters.MatchString(filepath.Base(w)) {
			continue
		}
		word = w
		break
	}
	if word == "" && len(ws) > 0 {
		word = ws[0]
	}
	base := filepath.Base(word)
	if name := strings.TrimSuffix(base, filepath.Ext(base)); name != "" {
		return name
	}
	return base
}

// checkEnvName rejects names that cannot be environment variables.
func checkEnvName(k string) error {
	switch {
	case k == "":
		return errors.New("the variable name is empty")
	case strings.ContainsAny(k, "=\x00"):
		return fmt.Errorf("%q is not a variable name", k)
	}
	return nil
}

// checkURL accepts absolute http and https URLs.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

// oneOf accepts s when it is one of the choices.
func oneOf(s string, choices ...string) error {
	if slices.Contains(choices, s) {
		return nil
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(choices, ", "))
}

// execMode accepts tend's modes, and PM2's "cluster_mode" spelling.
func execMode(m string) (string, error) {
	m = strings.TrimSuffix(m, "_mode")
	return m, oneOf(m, tend.ModeFork, tend.ModeCluster, tend.ModeSocket, tend.ModeProxy)
}

// env decodes an env mapping. Values may be strings, numbers or booleans
// (PM2 stringifies them); null is the empty string.
func env(n *yaml.Node) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "expected a mapping of variables, got %s", describe(n))
	}
	es, err := entries(n)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(es))
	for _, e := range es {
		if err := checkEnvName(e.key.Value); err != nil {
			return nil, errAt(e.key, "%v", err)
		}
		v := e.val
		switch {
		case v.Kind != yaml.ScalarNode:
			return nil, errAt(v, "%s: expected a string, number or boolean, got %s", e.key.Value, describe(v))
		case v.Tag == "!!null":
			m[e.key.Value] = ""
		case strings.IndexByte(v.Value, 0) >= 0:
			return nil, errAt(v, "%s: the value contains a NUL byte", e.key.Value)
		default:
			m[e.key.Value] = v.Value
		}
	}
	return m, nil
}

// duration decodes a number of milliseconds or a duration string.
func duration(n *yaml.Node) (tend.Duration, error) {
	t, err := numText(n)
	if err != nil {
		return 0, err
	}
	return ParseDuration(t)
}

// integer decodes a whole number, written as a number or a string.
func integer(n *yaml.Node) (int, error) {
	t, err := numText(n)
	if err != nil {
		return 0, err
	}
	i, err := strconv.Atoi(t)
	if err != nil {
		return 0, errAt(n, "%s is not a whole number", describe(n))
	}
	return i, nil
}

// count decodes a whole number that is not negative.
func count(n *yaml.Node) (int, error) {
	i, err := integer(n)
	if err == nil && i < 0 {
		err = fmt.Errorf("%d must not be negative", i)
	}
	return i, err
}

// port decodes a TCP port number.
func port(n *yaml.Node) (int, error) {
	p, err := integer(n)
	if err == nil && (p < 1 || p > 65535) {
		err = fmt.Errorf("%d is out of range 1-65535", p)
	}
	return p, err
}

// exitCodes decodes one exit code or a list of them.
func exitCodes(n *yaml.Node) ([]int, error) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	codes := make([]int, 0, len(items))
	for _, c := range items {
		c = resolve(c)
		code, err := integer(c)
		if err != nil {
			return nil, err
		}
		if code < 0 || code > 255 {
			return nil, errAt(c, "%d is out of range 0-255", code)
		}
		codes = append(codes, code)
	}
	return codes, nil
}
