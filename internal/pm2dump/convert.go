package pm2dump

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/config"
	yaml "go.yaml.in/yaml/v4"
)

// Options are what Convert needs besides the process list.
type Options struct {
	// Shell is the importing shell's environment (os.Environ()):
	// variables it holds with the same value are not copied into the
	// apps' env, since tend gives the apps this environment anyway.
	Shell []string
	// PM2Home is PM2's directory, where its default log files are, for
	// processes whose environment does not say (PM2_HOME).
	PM2Home string
}

// Note is a setting of the dump that the import does not carry over, or
// carries over differently, and why.
type Note struct {
	App, Key, Why string
}

func (n Note) String() string { return n.App + ": " + n.Key + ": " + n.Why }

// App is one imported app: ecosystem-file keys (tend's names) and values.
type App struct {
	Name      string
	Instances int
	keys      map[string]*yaml.Node // a key of tend.Settings, env_<name> -> value
}

// Import is a converted process list.
type Import struct {
	Apps  []App
	Notes []Note
}

// Convert turns PM2's processes (Read) into tend apps. Every setting is
// checked as an ecosystem file's would be; one that fails is left out
// with a note, so the apps that come out are valid.
func Convert(procs []Proc, opt Options) *Import {
	c := &converter{opt: opt, shell: tend.EnvMap(opt.Shell), im: &Import{}}
	names, byName := group(procs)
	for _, n := range names {
		c.app(n, byName[n])
	}
	return c.im
}

type converter struct {
	opt   Options
	shell map[string]string
	im    *Import
}

// note records what app a cannot take of key.
func (c *converter) note(a *App, key, format string, args ...any) {
	c.im.Notes = append(c.im.Notes, Note{App: a.Name, Key: key, Why: fmt.Sprintf(format, args...)})
}

// app converts the instances procs of the app PM2 calls name.
func (c *converter) app(name string, procs []Proc) {
	p := procs[0]
	a := &App{Name: name, Instances: len(procs), keys: map[string]*yaml.Node{}}
	if err := tend.CheckName(name); err != nil {
		a.Name = tend.SafeName(name)
		c.note(a, "name", "PM2's name %q is not a tend name (%v): imported as %s", name, err, a.Name)
	}
	script := p.str("pm_exec_path")
	if script == "" {
		script = p.str("script")
	}
	if script == "" {
		c.note(a, "script", "the dump does not say what runs (no pm_exec_path): app not imported")
		return
	}
	a.keys["name"], a.keys["script"] = text(a.Name), text(script)
	if cwd := p.str("pm_cwd"); cwd != "" {
		c.set(a, "cwd", text(cwd))
	}
	if len(procs) != 1 {
		c.set(a, "instances", number(len(procs)))
	}
	c.sameApp(a, procs)
	c.interpreter(a, p, script)
	c.settings(a, p)
	c.logs(a, p)
	c.env(a, p)
	c.status(a, procs)
	c.im.Apps = append(c.im.Apps, *a)
}

// sameApp notes processes of one name that run different things: PM2
// lets `pm2 start` give two scripts the same name, tend imports them as
// instances of the first.
func (c *converter) sameApp(a *App, procs []Proc) {
	first := jsonText([]any{procs[0]["pm_exec_path"], procs[0]["args"], procs[0]["pm_cwd"]})
	for _, p := range procs[1:] {
		if jsonText([]any{p["pm_exec_path"], p["args"], p["pm_cwd"]}) != first {
			c.note(a, "script", "PM2 ran %d processes of this name that differ in script, args or cwd: all are imported as instances of the first (%s)",
				len(procs), procs[0].str("pm_exec_path"))
			return
		}
	}
}

// settings carries over the keys of p that are settings of tend's.
func (c *converter) settings(a *App, p Proc) {
	env := p.env()
	for _, key := range slices.Sorted(maps.Keys(p)) {
		if _, isVar := env[key]; isVar || internal(key) || p[key] == nil {
			continue // PM2 copies the variables beside the settings
		}
		if why, ok := unsupported[key]; ok {
			if !empty(p[key]) {
				c.note(a, key, "%s", why)
			}
			continue
		}
		if strings.HasPrefix(key, "env_") {
			if _, isSetting := tend.Lookup(key); !isSetting {
				c.envBlock(a, key, p[key])
				continue
			}
		}
		st, ok := tend.Lookup(key)
		if !ok {
			c.note(a, key, "tend has no such setting")
			continue
		}
		v, ok := node(p[key])
		if !ok {
			c.note(a, key, "%s is not a value tend reads", jsonText(p[key]))
			continue
		}
		if st.Key == "exec_mode" {
			v.Value = strings.TrimSuffix(v.Value, "_mode")
		}
		if !isDefault(st, v) {
			c.set(a, st.Key, v)
		}
	}
	if port, ok := p["port"]; ok && !empty(port) {
		c.note(a, "port", "PM2's port only sets PORT for the app (env carries it); tend's port would make tend bind %s and share it: add port: %s to do that", jsonText(port), jsonText(port))
	}
	if f := p["filter_env"]; !empty(f) && f != false {
		c.note(a, "filter_env", "tend passes this shell's environment; the variables the app needs are under env")
	}
}

// interpreter carries exec_interpreter unless it is the one PM2 picked by
// the script's extension, which tend picks too.
func (c *converter) interpreter(a *App, p Proc, script string) {
	in := p.str("exec_interpreter")
	if in == "" {
		in = p.str("interpreter")
	}
	if in == "" || in == pm2Interpreters[strings.ToLower(filepath.Ext(script))] {
		return
	}
	c.set(a, "interpreter", text(in))
}

// pm2LogSuffix is the -<pm_id> PM2 adds to a log path ending in .log,
// per process, unless merge_logs is on.
var pm2LogSuffix = regexp.MustCompile(`-[0-9]+\.log$`)

// logs carries out_file and error_file when the user chose them: paths
// in PM2's own logs directory are PM2's defaults, and tend has its own.
func (c *converter) logs(a *App, p Proc) {
	home := c.opt.PM2Home
	if h, ok := p.env()["PM2_HOME"].(string); ok && h != "" {
		home = h
	}
	inHome := func(path, dir string) bool {
		return home != "" && filepath.Dir(path) == filepath.Join(home, dir)
	}
	merged := p["merge_logs"] == true
	for _, l := range []struct{ pm2, key string }{{"pm_out_log_path", "out_file"}, {"pm_err_log_path", "error_file"}} {
		path := p.str(l.pm2)
		if path == "" || inHome(path, "logs") {
			continue
		}
		if !merged {
			path = pm2LogSuffix.ReplaceAllString(path, ".log")
		}
		c.set(a, l.key, text(path))
	}
	if path := p.str("pm_log_path"); path != "" && !inHome(path, "logs") {
		c.note(a, "log_file", "%s", unsupported["log_file"])
	}
	if path := p.str("pm_pid_path"); path != "" && !inHome(path, "pids") {
		c.note(a, "pid_file", "%s", unsupported["pid_file"])
	}
}

// env carries the user's variables (see env.go).
func (c *converter) env(a *App, p Proc) {
	kept, dropped := userEnv(p.str("name"), p.env(), c.shell)
	if len(dropped) > 0 {
		c.note(a, "env", "left out %d %s of the shell PM2 started it from, which differ from this shell's: %s (the app gets this shell's; add any it needs under env)",
			len(dropped), plural(len(dropped), "variable"), strings.Join(dropped, ", "))
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range slices.Sorted(maps.Keys(kept)) {
		one := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{text(k), text(kept[k])}}
		if err := c.check(a, "env", one); err != nil {
			c.note(a, "env", "%s: %v", k, err)
			continue
		}
		m.Content = append(m.Content, text(k), text(kept[k]))
	}
	if len(m.Content) > 0 {
		a.keys["env"] = m
	}
}

// envBlock carries env_<name>, a mapping of variables for
// `tend start --env <name>` of the file it ends up in.
func (c *converter) envBlock(a *App, key string, v any) {
	vars, ok := v.(map[string]any)
	if !ok || len(vars) == 0 {
		return
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if s, ok := envValue(vars[k]); ok {
			m.Content = append(m.Content, text(k), text(s))
		}
	}
	c.set(a, key, m)
}

// status keeps stopped apps stopped, and says which PM2 had given up on.
func (c *converter) status(a *App, procs []Proc) {
	count := map[string]int{}
	for _, p := range procs {
		count[p.str("status")]++
	}
	switch {
	case count["stopped"] == len(procs):
		c.set(a, "autostart", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
		c.note(a, "status", "stopped in PM2: imported with autostart: false, so it stays stopped until tend start %s", a.Name)
	case count["errored"] > 0:
		c.note(a, "status", "errored in PM2 (it kept crashing): imported, and tend starts it")
	}
}

// set checks key: v as the ecosystem loader would, alone in an app, and
// keeps it, or notes why not.
func (c *converter) set(a *App, key string, v *yaml.Node) {
	if err := c.check(a, key, v); err != nil {
		c.note(a, key, "%v", err)
		return
	}
	a.keys[key] = v
}

// check loads a file with one app, named as a, that sets key: v. The
// error is the loader's, without the scratch file's position and app.
func (c *converter) check(a *App, key string, v *yaml.Node) error {
	app := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{text("name"), text(a.Name)}}
	if key != "script" {
		app.Content = append(app.Content, text("script"), text("x"))
	}
	app.Content = append(app.Content, text(key), v)
	b, err := yaml.Marshal(&yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{app}})
	if err != nil {
		return err
	}
	_, err = config.Parse(b, "check", config.Options{Cwd: "/"})
	if err == nil {
		return nil
	}
	msg := err.Error()
	if te, ok := errors.AsType[*tend.Error](err); ok {
		msg = te.Message
	}
	msg = position.ReplaceAllString(msg, "")
	msg = strings.TrimSuffix(msg, fmt.Sprintf(" (app %q)", a.Name))
	return errors.New(strings.TrimPrefix(msg, key+": "))
}

// position is the file:line:col: prefix of the loader's errors.
var position = regexp.MustCompile(`^check:[0-9]+:[0-9]+: `)

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
