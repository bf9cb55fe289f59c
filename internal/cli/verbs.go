package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// pm2Verbs says, for PM2's commands that tend does not have under the
// same name, what to run instead: a PM2 user's first commands should find
// their way.
var pm2Verbs = map[string]string{
	"pid":            "tend ls --json (each instance's pid), or tend describe <app>",
	"monitor":        "tend web (a web dashboard the daemon serves), tend monit (in the terminal), or /metrics for Prometheus (metrics_addr)",
	"plus":           "tend web (a web dashboard the daemon serves), tend monit, or /metrics for Prometheus (metrics_addr in config.yaml)",
	"link":           "tend web (a web dashboard the daemon serves), tend monit, or /metrics for Prometheus (metrics_addr in config.yaml)",
	"unlink":         "nothing: tend sends nothing anywhere",
	"dump":           "tend save",
	"unstartup":      "systemctl disable <service> (the unit tend startup printed), then remove it",
	"reloadLogs":     "nothing: tend notices a moved log file by itself (or kill -USR1 <daemon pid>)",
	"gracefulReload": "tend reload <app>",
	"stopall":        "tend stop all",
	"serve":          "tend start \"python3 -m http.server $PORT\" --port <port> (tend has no static file server of its own)",
	"install":        "nothing: tend has no modules; log rotation (pm2-logrotate) is built in",
	"module:install": "nothing: tend has no modules; log rotation (pm2-logrotate) is built in",
	"deploy":         "your deploy tool, then tend reload <app> (tend does not deploy)",
	"report":         "tend describe <app>, tend ping and tend.log in $TEND_HOME",
	"trigger":        "tend send <app> '<json>' (the app's process.on('message'))",
}

// unknownCommand words the error for a command tend does not have: what
// to run instead when it is PM2's, else the nearest commands.
func unknownCommand(root *cobra.Command, args []string) error {
	name := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			name = a
			break
		}
	}
	if instead, ok := pm2Verbs[name]; ok {
		return usageErr("%q is PM2's: with tend, %s", name, instead)
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if near := root.SuggestionsFor(name); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, " or ") + "?"
	}
	return usageErr("%s (tend --help lists the commands)", msg)
}
