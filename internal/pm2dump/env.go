package pm2dump

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// PM2 keeps no record of which variables the user gave an app: pm2_env.env
// is the environment of the shell that ran `pm2 start` (or of the PM2
// daemon, for a resurrect), with the app's env and env_<name> merged over
// it (lib/Common.js: prepareAppConf, mergeEnvironmentVariables), plus
// PM2's own PM2_HOME, PM2_USAGE, unique_id and the like. The import keeps
// a variable only when it can be the user's:
//
//   - PM2's own variables (PM2_*, unique_id, the app's module
//     configuration, which PM2 stores under the app's name) are dropped;
//   - a variable the importing shell holds with the same value is dropped
//     silently: tend gives the app this shell's environment anyway
//     (tend.AppSpec.BaseEnv), so nothing changes for the app;
//   - the variables of a terminal session (PWD, SHLVL, SSH_*, TERM...) are
//     dropped silently: they described the old shell, never the app;
//   - the variables of a login (PATH, HOME, LANG, NVM_*...) that differ
//     from this shell's are dropped with one note naming them: they were
//     the old shell's, and this shell's reach the app instead, but an app
//     may depend on them (node found on nvm's PATH);
//   - everything else is kept: what the user set in env, in an ecosystem
//     file or on the command line (`PORT=3000 pm2 start app.js`).

// terminalVars are the variables of a terminal session; terminalPrefixes
// start the names of more (SSH_CLIENT, XDG_SESSION_ID, SUDO_USER...).
var terminalVars = map[string]bool{
	"PWD": true, "OLDPWD": true, "SHLVL": true, "_": true, "TERM": true, "COLORTERM": true, "DISPLAY": true,
	"WINDOWID": true, "LS_COLORS": true, "LESSOPEN": true, "LESSCLOSE": true, "PS1": true, "PROMPT_COMMAND": true,
	"HISTFILE": true, "HISTSIZE": true, "LINES": true, "COLUMNS": true, "TMUX": true, "TMUX_PANE": true,
	"STY": true, "WINDOW": true, "MOTD_SHOWN": true, "VTE_VERSION": true, "DBUS_SESSION_BUS_ADDRESS": true,
	"GPG_AGENT_INFO": true, "MAIL": true, "INVOCATION_ID": true, "JOURNAL_STREAM": true,
	"SYSTEMD_EXEC_PID": true, "MANAGERPID": true, "NOTIFY_SOCKET": true,
}
var terminalPrefixes = []string{"SSH_", "XDG_", "TERM_", "SUDO_", "KONSOLE_", "GNOME_", "ITERM_"}

// loginVars are the variables of a login; loginPrefixes start more.
var loginVars = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true, "HOSTNAME": true,
	"LANG": true, "LANGUAGE": true,
}
var loginPrefixes = []string{"LC_", "NVM_"}

func isVar(k string, names map[string]bool, prefixes []string) bool {
	return names[k] || slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) })
}

// isPM2Var reports whether k is a variable PM2 sets for itself.
func isPM2Var(k, app string) bool {
	return strings.HasPrefix(k, "PM2_") || k == "unique_id" || k == "pm_id" || k == app
}

// userEnv returns the variables of env that are the user's (see above)
// and the login variables it dropped, sorted. shell is this shell's
// environment.
func userEnv(app string, env map[string]any, shell map[string]string) (kept map[string]string, dropped []string) {
	kept = map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v, ok := envValue(env[k])
		sv, inShell := shell[k]
		switch {
		case !ok, isPM2Var(k, app):
		case inShell && sv == v:
		case isVar(k, terminalVars, terminalPrefixes):
		case isVar(k, loginVars, loginPrefixes):
			dropped = append(dropped, k)
		default:
			kept[k] = v
		}
	}
	return kept, dropped
}

// envValue is a variable's value as PM2 passes it to the process: a
// string, or a number or boolean in its JSON form. Objects are PM2's
// module configuration, not variables.
func envValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return fmt.Sprint(v), true
	}
	return "", false
}
