package config

import (
	"sort"
	"strings"
)

// appKeys maps every per-app key tend understands, aliases included, to its
// canonical PM2 name. The aliases are PM2's, so existing files load as is.
var appKeys = map[string]string{
	"name":                      "name",
	"script":                    "script",
	"exec":                      "script",
	"cmd":                       "script",
	"command":                   "script",
	"args":                      "args",
	"cwd":                       "cwd",
	"interpreter":               "interpreter",
	"exec_interpreter":          "interpreter",
	"interpreter_args":          "interpreter_args",
	"interpreterArgs":           "interpreter_args",
	"node_args":                 "interpreter_args",
	"instances":                 "instances",
	"exec_mode":                 "exec_mode",
	"port":                      "port",
	"host":                      "host",
	"log_max_size":              "log_max_size",
	"log_retain":                "log_retain",
	"log_compress":              "log_compress",
	"sched":                     "sched",
	"env":                       "env",
	"autorestart":               "autorestart",
	"autostart":                 "autostart",
	"max_restarts":              "max_restarts",
	"min_uptime":                "min_uptime",
	"restart_delay":             "restart_delay",
	"exp_backoff_restart_delay": "exp_backoff_restart_delay",
	"kill_timeout":              "kill_timeout",
	"listen_timeout":            "listen_timeout",
	"kill_signal":               "kill_signal",
	"stop_exit_codes":           "stop_exit_codes",
	"max_memory_restart":        "max_memory_restart",
	"cron_restart":              "cron_restart",
	"cron":                      "cron_restart",
	"namespace":                 "namespace",
	"watch":                     "watch",
	"ignore_watch":              "ignore_watch",
	"watch_delay":               "watch_delay",
	"shutdown_with_message":     "shutdown_with_message",
	"wait_ready":                "wait_ready",
	"ready_url":                 "ready_url",
	"instance_var":              "instance_var",
	"increment_var":             "increment_var",
	"out_file":                  "out_file",
	"out":                       "out_file",
	"output":                    "out_file",
	"out_log":                   "out_file",
	"error_file":                "error_file",
	"error":                     "error_file",
	"err":                       "error_file",
	"err_file":                  "error_file",
	"err_log":                   "error_file",
	"merge_logs":                "merge_logs",
	"combine_logs":              "merge_logs",
	"log_date_format":           "log_date_format",
	"time":                      "time",
	"log_type":                  "log_type",

	// PM2 keys tend accepts and ignores: PM2's own instrumentation, source
	// maps and deployment tracking, and flags of its CLI. Ignoring them
	// keeps PM2 files loadable; none changes what runs or how it stops.
	"source_map_support": ignoredKey,
	"vizion":             ignoredKey,
	"pmx":                ignoredKey,
	"automation":         ignoredKey,
	"treekill":           ignoredKey,
	"force":              ignoredKey,
}

// ignoredKey marks keys in appKeys that are accepted and dropped.
const ignoredKey = "-"

// unsupportedKeys are PM2 keys that tend does not implement. They are errors
// rather than silently ignored because each one changes what the app sees
// (its user, its environment, where its logs go), so ignoring it would run
// the app differently from what the file asks for.
var unsupportedKeys = map[string]bool{
	"uid": true, "user": true, "gid": true,
	"filter_env": true, "append_env_to_name": true, "node_version": true,
	"log_file": true, "log": true, "disable_logs": true,
	"pid_file": true, "pid": true,
	"name_prefix": true, "execute_command": true, "watch_options": true,
}

// topKeys are the keys allowed at the top level of a file.
var topKeys = []string{"apps", "deploy"}

// isScriptKey reports whether key is script or one of its aliases, which
// marks a top-level mapping as a single app.
func isScriptKey(key string) bool { return appKeys[key] == "script" }

// suggest returns the candidate closest to key, or "" when none is close
// enough to be a likely typo.
func suggest(key string, candidates []string) string {
	best, bestD := "", -1
	lk := strings.ToLower(key)
	for _, c := range candidates {
		d := editDistance(lk, strings.ToLower(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	// Two edits catch a transposition or a slip of two keys; beyond a third
	// of the key's length the "suggestion" is usually another word.
	if bestD < 0 || bestD > 2 || bestD > len(key)/3+1 {
		return ""
	}
	return best
}

// appKeyNames returns every accepted per-app key, for suggestions.
func appKeyNames() []string {
	names := make([]string, 0, len(appKeys))
	for k := range appKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// editDistance is the Levenshtein distance between a and b, in bytes: keys
// are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
