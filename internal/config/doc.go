// Package config reads PM2-style ecosystem files (YAML, JSON, and PM2's own
// ecosystem.config.js when node is installed) into tend.AppSpec values, and
// parses the small values the CLI takes as flags (instances, durations,
// sizes, signals, KEY=VALUE environment entries).
//
// The keys are PM2's, aliases included, so an existing ecosystem file loads
// unchanged. Files are decoded into a yaml.Node tree first, so every error
// names the file, line and column, the key and the app:
//
//	tend.yaml:4:5: unknown key "instancez" in app "api" (did you mean "instances"?)
//	tend.yaml:7:16: instances: "lots" is not a number, "max" or "-N" (app "api")
//
// Loading only parses and normalises what the file says: names default to
// the script's base name, cwd is made absolute, instances is resolved to a
// count and env_<name> is merged over env. Every other zero value is left
// zero, meaning "the daemon's default" (see tend.AppSpec), and nothing here
// looks at the file system beyond reading the file itself.
package config
