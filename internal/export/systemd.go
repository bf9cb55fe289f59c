package export

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tendhq/tend"
)

// systemdTarget writes a service unit per app that runs tend run for it.
var systemdTarget = &Target{
	Name: "systemd", Title: "systemd",
	write: writeSystemd,
	Handling: dropping(handling(
		[]string{"name", "cwd", "env", "autorestart", "kill_timeout", "max_memory_restart"},
		// A unit has no port, probe or CPU count of its own: tend has them.
		append([]string{"namespace", "instances", "port"}, probeKeys...)...),
		// After= would order the units' starts, not wait for readiness
		// or completion: not what depends_on says.
		"depends_on"),
}

// DefaultTend is the tend binary a systemd unit runs unless told.
const DefaultTend = "/usr/local/bin/tend"

// unitBase is what app name is called in its unit's name,
// tend-<base>.service: name, with the characters a unit name cannot hold
// ('+', and '@', which marks a template) as '-'.
func unitBase(name string) string {
	return strings.NewReplacer("+", "-", "@", "-").Replace(name)
}

func writeSystemd(w *writer, apps []tend.AppSpec) error {
	names, err := w.names(apps, unitBase)
	if err != nil {
		return err
	}
	file, err := filepath.Abs(w.o.File)
	if err != nil {
		return err
	}
	tendPath := w.o.Tend
	if tendPath == "" {
		tendPath = DefaultTend
	}
	if !filepath.IsAbs(tendPath) {
		return tend.Errorf(tend.EINVALID, "--tend %s is not an absolute path: systemd runs a program by its full path", tendPath)
	}
	for i := range apps {
		s := &apps[i]
		unit := "tend-" + names[s.Name] + ".service"
		if i > 0 {
			w.out.WriteString("\n")
		}
		// Each unit has a home of its own: tend run needs one no other
		// daemon serves, and it must be private (StateDirectoryMode).
		home := strings.TrimSuffix(unit, ".service")
		fmt.Fprintf(&w.out, "# %s\n[Unit]\nDescription=tend: app %s of %s\n", unit, s.Name, specifiers(file))
		w.out.WriteString("After=network-online.target\nWants=network-online.target\n\n[Service]\nType=exec\n")
		fmt.Fprintf(&w.out, "ExecStart=%s\n", execLine(w.command(s, tendPath, file)))
		fmt.Fprintf(&w.out, "WorkingDirectory=%s\n", specifiers(s.Cwd))
		if w.o.User != "" {
			fmt.Fprintf(&w.out, "User=%s\n", specifiers(w.o.User))
		}
		fmt.Fprintf(&w.out, "StateDirectory=%s\nStateDirectoryMode=0700\nEnvironment=TEND_HOME=%%S/%s\n", home, home)
		if w.o.Path != "" {
			fmt.Fprintf(&w.out, "Environment=%s\n", quoteUnit(specifiers("PATH="+w.o.Path)))
		}
		for _, k := range slices.Sorted(maps.Keys(s.Env)) {
			fmt.Fprintf(&w.out, "Environment=%s\n", quoteUnit(specifiers(k+"="+s.Env[k])))
		}
		if len(s.Env) > 0 {
			w.warn(s, "env: every user can read Environment= lines (systemctl show): keep secrets in env_file")
		}
		restart := "on-failure" // tend run exits 1 when an instance errored
		if !s.AutorestartOn() {
			restart = "no"
		}
		fmt.Fprintf(&w.out, "Restart=%s\n", restart)
		// mixed: SIGTERM reaches tend alone, which stops each app with its
		// own kill_signal; SIGKILL reaches every process after the timeout.
		fmt.Fprintf(&w.out, "KillMode=mixed\nTimeoutStopSec=%d\n", wholeSeconds(w.stopBound(s, apps, 0)))
		// The unit's cgroup is tend's to divide: a cgroup per instance.
		w.out.WriteString("Delegate=yes\n")
		if _, memory := resources(s); memory > 0 {
			fmt.Fprintf(&w.out, "MemoryMax=%dM\n", mebibytes(memory))
		}
		w.out.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	}
	return nil
}

// execLine is a command line as ExecStart= reads it: words with blanks
// or quotes quoted, $ and % (variables and specifiers) doubled.
func execLine(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		a = strings.ReplaceAll(specifiers(a), "$", "$$")
		if a == "" || strings.ContainsAny(a, " \t\"'\\;") {
			a = quoteUnit(a)
		}
		words[i] = a
	}
	return strings.Join(words, " ")
}

// quoteUnit quotes s in double quotes as unit files read them: \ and "
// escaped, control characters in C style.
func quoteUnit(s string) string { return strconv.Quote(s) }

// specifiers doubles %, which a unit file reads as a specifier (%h, %S).
func specifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }
