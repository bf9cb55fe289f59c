package nodeipc

import (
	"strconv"
	"strings"
)

// Env returns the variables that make a Node child open its IPC channel on fd
// with JSON serialization. The mode is always set explicitly: a parent's
// inherited "advanced" would otherwise switch the child to V8's format, which
// this package does not speak.
func Env(fd int) []string {
	return []string{
		"NODE_CHANNEL_FD=" + strconv.Itoa(fd),
		"NODE_CHANNEL_SERIALIZATION_MODE=json",
	}
}

// StripEnv returns env without NODE_CHANNEL_* and NODE_UNIQUE_ID. A manager
// that is itself run under PM2 or Node inherits them; passed on, they would
// point a child at an fd that is not its channel (Node aborts later) or make
// it a cluster worker of nobody. env is not modified.
func StripEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "NODE_CHANNEL_") || name == "NODE_UNIQUE_ID" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
