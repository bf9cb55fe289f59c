package pm2dump

import "strings"

// bookkeeping are the keys of pm2_env that record a process rather than
// configure an app (its id, status, counters, metrics, versions), or that
// drive PM2's own instrumentation, which tend does not have: dropped
// without a note. Keys starting with axm_ or _ are PM2's too.
var bookkeeping = map[string]bool{
	"pm_id": true, "unique_id": true, "status": true, "pm_uptime": true, "created_at": true,
	"restart_time": true, "unstable_restarts": true, "prev_restart_delay": true, "exit_code": true,
	"username": true, "windowsHide": true, "kill_retry_time": true, "version": true, "node_version": true,
	"versioning": true, "vizion": true, "vizion_running": true, "pmx": true, "automation": true,
	"treekill": true, "km_link": true, "source_map_support": true, "disable_source_map_support": true,
	"trace": true, "disable_trace": true, "deep_monitoring": true, "instances": true,
	// The instance index PM2 sets for the process itself.
	"NODE_APP_INSTANCE": true,
	// Read by Convert under their tend names.
	"name": true, "env": true, "pm_exec_path": true, "pm_cwd": true, "cwd": true, "exec_interpreter": true,
	"interpreter": true, "pm_out_log_path": true, "pm_err_log_path": true, "pm_log_path": true, "pm_pid_path": true,
	"filter_env": true, "port": true, "script": true,
}

// unsupported are PM2 settings that tend does not have, with why and what
// to do instead. tend's ecosystem loader refuses them (config's
// unsupportedKeys) because each changes what the app sees; here the app
// is imported without them and the note says so.
var unsupported = map[string]string{
	"append_env_to_name": "tend does not rename apps after their --env",
	"disable_logs":       "tend always keeps logs; out_file: /dev/null discards them",
	"name_prefix":        "not a tend setting",
	"execute_command":    "not a tend setting",
	"watch_options":      "tend has no chokidar options; watch, ignore_watch and watch_delay are its settings",
	"log_file":           "tend has no combined log file; out_file and error_file are carried over",
	"pid_file":           "tend writes no pid files (tend jlist shows each pid)",
}

// internal reports whether key is PM2's bookkeeping.
func internal(key string) bool {
	return bookkeeping[key] || strings.HasPrefix(key, "axm_") || strings.HasPrefix(key, "_")
}

// pm2Interpreters is the interpreter PM2 picks by extension
// (lib/API/interpreter.json) where tend picks the same program, or its
// current name (python3 for python): an exec_interpreter equal to it is
// PM2's default rather than the user's choice, and is left to tend's.
var pm2Interpreters = map[string]string{
	".js": "node", ".mjs": "node", ".cjs": "node",
	".py": "python", ".rb": "ruby", ".sh": "bash",
}
