package supervisor

import (
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/procexec"
)

// inherited variables that would mislead the app: another manager's IPC
// channel, socket activation or notify socket must never pass through
// (node-cluster.md §2.1: a stale NODE_CHANNEL_FD later aborts node).
var stripped = []string{
	"NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE", "NODE_UNIQUE_ID",
	"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID",
	"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "pm_id", "TEND_APP", "TEND_INSTANCE", "TEND_ID", "TEND_WORKER_ID", "TEND_CHANNEL_FD", "TEND_DRAIN_MS",
	procexec.MarkerEnv,
}

// drainGrace is how long a stopping instance keeps idle keep-alive
// connections open for a client's next request (answered with
// "Connection: close"): a second, or half of kill_timeout if that is
// shorter, so that the drain never runs into SIGKILL. tend's Node preload
// and the Go cluster package read it from TEND_DRAIN_MS.
func drainGrace(spec *tend.AppSpec) time.Duration {
	kt := spec.KillTimeout.D()
	if kt <= 0 {
		kt = tend.DefaultKillTimeout.D()
	}
	return min(time.Second, kt/2)
}

// instanceEnv builds the environment of instance index of spec: the shell
// environment, under the user's variables, under what tend sets: id is
// the instance's id in tend ls (TEND_ID), wid the process's worker id
// (TEND_WORKER_ID: from 1, one per process of the app, as Node's
// worker.id, NODE_UNIQUE_ID for Node workers).
func instanceEnv(spec *tend.AppSpec, index, id, wid int, extra map[string]string) []string {
	m := make(map[string]string, len(spec.BaseEnv)+len(spec.Env)+8)
	for _, kv := range spec.BaseEnv {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	for _, k := range stripped {
		delete(m, k)
	}
	for k, v := range spec.Env {
		m[k] = v
	}
	ivar := spec.InstanceVar
	if ivar == "" {
		ivar = tend.DefaultInstanceVar
	}
	m[ivar] = strconv.Itoa(index)
	m["TEND_APP"] = spec.Name
	m["TEND_INSTANCE"] = strconv.Itoa(index)
	m["TEND_ID"] = strconv.Itoa(id)
	m["pm_id"] = strconv.Itoa(id) // PM2's name for it: "only on instance 0" checks read it
	m["TEND_WORKER_ID"] = strconv.Itoa(wid)
	m["TEND_DRAIN_MS"] = strconv.FormatInt(drainGrace(spec).Milliseconds(), 10)
	if d := spec.Watchdog.D(); d > 0 {
		// No WATCHDOG_PID: sd_notify clients then take it as theirs
		// whatever their pid (a shell script's child, say).
		m["WATCHDOG_USEC"] = strconv.FormatInt(d.Microseconds(), 10)
	}
	if v := spec.IncrementVar; v != "" {
		base, _ := strconv.Atoi(m[v])
		m[v] = strconv.Itoa(base + index)
	}
	for k, v := range extra {
		m[k] = v
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// expandArgs replaces $VAR and ${VAR} in args with values from env, as a
// shell does: an unset one is empty.
func expandArgs(args, env []string) []string { return expand(args, env, false) }

// expandKnown is expandArgs that leaves the references to variables env
// lacks as written ("$?", a shell's own variables).
func expandKnown(args, env []string) []string { return expand(args, env, true) }

func expand(args, env []string, keepUnknown bool) []string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = os.Expand(a, func(k string) string {
			if v, ok := m[k]; ok || !keepUnknown {
				return v
			}
			return "$" + k
		})
	}
	return out
}
