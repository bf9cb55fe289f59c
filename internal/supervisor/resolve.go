package supervisor

import (
	"cmp"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/procexec"
)

// Resolved is the command an app's instances execute.
type Resolved struct {
	Path       string   // absolute path of the program to exec
	Argv       []string // full argv, Argv[0] is the program as named
	ScriptPath string   // the script file, absolute; "" for a command
	Node       bool     // the program is node running a script
	// Expand is set for command lines ("python3 -m http.server $PORT"):
	// $VAR and ${VAR} in the arguments take the instance's environment,
	// as the shell PM2 runs such commands through would do.
	Expand bool

	// Mode and Sched are how the instances share the app's port, as the
	// daemon chose them from the spec: tend.App shows them beside what
	// the user asked (spec.ExecMode, spec.Sched), which stays as given.
	Mode  tend.Mode
	Sched tend.Sched
	// FileEnv holds the variables of the app's env_file, as read when it
	// started or was last reloaded.
	FileEnv map[string]string `json:",omitempty"`
	// Cred is the user the instances run as, nil for the daemon's own;
	// UserEnv the HOME, USER, LOGNAME and SHELL that go with it.
	Cred    *procexec.Cred    `json:",omitempty"`
	UserEnv map[string]string `json:",omitempty"`
}

// interpreters maps a script's extension to the interpreter PM2 users
// expect; anything else is executed directly.
var interpreters = map[string]string{
	".js": "node", ".mjs": "node", ".cjs": "node",
	".py": "python3", ".rb": "ruby", ".sh": "bash",
}

// Resolve finds what spec runs and checks that it can run: the cwd exists,
// the script exists and the interpreter is on the user's PATH (taken from
// spec.BaseEnv, the shell that ran `tend start`), or the script is
// executable, and that its user exists. Errors name the thing and how to
// fix it.
func Resolve(spec *tend.AppSpec) (Resolved, error) {
	r, err := resolveCommand(spec)
	if err != nil {
		return r, err
	}
	if r.Cred, r.UserEnv, err = lookupUser(spec); err != nil || r.Cred == nil {
		return r, err
	}
	for _, c := range []struct {
		path string
		want uint32
		what string
	}{{spec.Cwd, 1, "enter"}, {r.Path, 1, "run"}, {r.ScriptPath, 4, "read"}} {
		if c.path != "" && !canReach(r.Cred, c.path, c.want) {
			return r, tend.Errorf(tend.EINVALID, "app %s: user %s cannot %s %s: make it and the directories above it readable by that user, or move the app", spec.Name, cmp.Or(spec.User, strconv.FormatUint(uint64(r.Cred.UID), 10)), c.what, c.path)
		}
	}
	return r, nil
}

// resolveCommand is Resolve's program and arguments.
func resolveCommand(spec *tend.AppSpec) (Resolved, error) {
	cwd := spec.Cwd
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		return Resolved{}, tend.Errorf(tend.ENOTFOUND, "app %s: working directory %s does not exist; fix --cwd", spec.Name, cwd)
	}
	pathEnv := envValue(spec.BaseEnv, "PATH")
	if pathEnv == "" {
		pathEnv = os.Getenv("PATH")
	}
	script := spec.Script
	abs := script
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(cwd, script)
	}
	fi, statErr := os.Stat(abs)
	if statErr != nil && strings.ContainsAny(script, " \t") {
		// "python3 app.py": a command line, split into words.
		words, err := tend.SplitWords(script)
		if err != nil {
			words = strings.Fields(script) // an unbalanced quote: as an older tend took it
		}
		prog, err := lookPath(words[0], pathEnv, cwd)
		if err != nil {
			return Resolved{}, tend.Errorf(tend.ENOTFOUND, "app %s: %s is not on PATH and is not a file in %s", spec.Name, words[0], cwd)
		}
		return Resolved{Path: prog, Argv: append(words, spec.Args...), Node: filepath.Base(prog) == "node", Expand: true}, nil
	}
	if statErr != nil {
		if !strings.Contains(script, "/") {
			if prog, err := lookPath(script, pathEnv, cwd); err == nil {
				return Resolved{Path: prog, Argv: append([]string{script}, spec.Args...)}, nil
			}
		}
		return Resolved{}, tend.Errorf(tend.ENOTFOUND, "app %s: script %s not found (looked in %s)", spec.Name, script, cwd)
	}
	if fi.IsDir() {
		return Resolved{}, tend.Errorf(tend.EINVALID, "app %s: script %s is a directory, not a file", spec.Name, script)
	}
	interp := spec.Interpreter
	if interp == "" {
		interp = interpreters[strings.ToLower(filepath.Ext(abs))]
	}
	if interp == "" || interp == "none" {
		if fi.Mode()&0o111 == 0 {
			return Resolved{}, tend.Errorf(tend.EINVALID, "app %s: script %s is not executable: chmod +x it, or name an interpreter with --interpreter", spec.Name, script)
		}
		return Resolved{Path: abs, Argv: append([]string{abs}, spec.Args...), ScriptPath: abs}, nil
	}
	prog, err := lookPath(interp, pathEnv, cwd)
	if err != nil {
		return Resolved{}, tend.Errorf(tend.ENOTFOUND, "app %s: interpreter %s is not on PATH: install it or give --interpreter /path/to/it", spec.Name, interp)
	}
	argv := []string{interp}
	argv = append(argv, spec.InterpreterArgs...)
	argv = append(argv, abs)
	argv = append(argv, spec.Args...)
	return Resolved{Path: prog, Argv: argv, ScriptPath: abs, Node: filepath.Base(prog) == "node"}, nil
}

// lookPath is exec.LookPath against a given PATH: the daemon's own PATH
// may differ from that of the shell the user started the app from.
func lookPath(name, pathEnv, cwd string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if isExec(p) {
			return p, nil
		}
		return "", os.ErrNotExist
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if isExec(p) {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
