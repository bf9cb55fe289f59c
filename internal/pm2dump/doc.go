// Package pm2dump turns PM2's saved process list into tend apps: the dump
// `pm2 save` writes (~/.pm2/dump.pm2), or what `pm2 jlist` prints.
//
// A dump is one JSON object per instance: PM2's pm2_env, which mixes the
// app's settings (name, args, max_memory_restart...), PM2's bookkeeping
// (pm_id, status, created_at, axm_*...), the app's settings under PM2's
// internal names (pm_exec_path for script, pm_cwd for cwd, pm_out_log_path
// for out_file) and, twice, the whole environment of the shell that ran
// `pm2 start` merged with the app's own env. Convert sorts these out:
// instances of one name become one app with that many instances, settings
// are checked one by one through the ecosystem-file loader (package
// config, so through tend.Settings) and kept when valid, bookkeeping is
// dropped, and of the environment only what differs from the importing
// shell is kept (see env.go). What cannot be carried over is a Note, one
// per app and key, with the reason.
//
// The result is an ecosystem file (YAML with tend's keys), which is what
// `tend import pm2 --dry-run` prints and what the import starts: the
// values go through exactly the path a user's file does.
package pm2dump
