package tend

import (
	"encoding/json"
	"time"
)

// The control API's request and response bodies. The API is HTTP/1.1 with
// JSON bodies on the unix socket $TEND_HOME/tend.sock, under /v1/.

// VersionHeader carries the sender's Version on every request and response.
const VersionHeader = "Tend-Version"

// PingInfo answers GET /v1/ping.
type PingInfo struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	Home      string    `json:"home"`
	StartedAt time.Time `json:"started_at"`
	// KeeperPID is the process that keeps the apps while daemons come and
	// go; 0 under tend run, which has none.
	KeeperPID int `json:"keeper_pid,omitempty"`
}

// UpdateRequest is the body of POST /v1/update.
type UpdateRequest struct {
	// Exe is the tend binary to hand the running daemon over to.
	Exe string `json:"exe"`
}

// UpdateResult answers POST /v1/update: who is handing over. The new
// daemon answers ping once it has taken over.
type UpdateResult struct {
	From string `json:"from"` // the version of the daemon that hands over
	PID  int    `json:"pid"`  // its pid
}

// StartRequest is the body of POST /v1/start.
type StartRequest struct {
	Apps  []AppSpec `json:"apps"`
	Force bool      `json:"force,omitempty"` // replace apps of the same name
	// Stopped lists, per app name, the instances (by index) to leave
	// stopped: tend resurrect restores what was stopped when saved.
	Stopped map[string][]int `json:"stopped,omitempty"`
}

// SaveRequest is the body of POST /v1/save.
type SaveRequest struct {
	Force bool `json:"force,omitempty"` // save even an empty list
}

// SaveResult says what POST /v1/save wrote.
type SaveResult struct {
	Path string   `json:"path"`
	Apps []string `json:"apps"`
}

// ResurrectResult says what POST /v1/resurrect restored.
type ResurrectResult struct {
	Path    string    `json:"path"` // the file read
	SavedAt time.Time `json:"saved_at"`
	Started []string  `json:"started"` // apps started (or registered stopped)
	Skipped []string  `json:"skipped"` // apps of the same name were there already
	Failed  []string  `json:"failed"`  // "name: why"
	Notes   []string  `json:"notes,omitempty"`
}

// ActionRequest is the body of POST /v1/{stop,restart,delete,flush}.
type ActionRequest struct {
	Targets []string `json:"targets"` // ids, app names, or "all"
}

// ActionResult answers actions: the instances acted on, and every instance
// afterwards (what `tend ls` would print).
type ActionResult struct {
	Affected  []int      `json:"affected"`
	Instances []Instance `json:"instances"`
	// Notes are things the user should know about what was done, such as
	// a fallback tend chose.
	Notes []string `json:"notes,omitempty"`
}

// LogLine is one line of GET /v1/logs, an NDJSON stream.
type LogLine struct {
	Time     time.Time `json:"time"`
	App      string    `json:"app"`
	Instance int       `json:"instance"`
	ID       int       `json:"id"`
	Stream   string    `json:"stream"` // "out" or "err"
	Message  string    `json:"message"`
}

// SendRequest is the body of POST /v1/send: a JSON message for the
// instances the targets select (every instance of an app: a broadcast).
type SendRequest struct {
	Targets []string        `json:"targets"`
	Message json.RawMessage `json:"message"`
}

// SignalRequest is the body of POST /v1/signal.
type SignalRequest struct {
	Targets []string `json:"targets"`
	Signal  string   `json:"signal"` // "SIGUSR2", "USR2" or a number
}

// ReloadRequest is the body of POST /v1/reload.
type ReloadRequest struct {
	Targets []string `json:"targets"`
	// Apps, when set, replace the specs of the apps of the same name
	// (reload of an ecosystem file, or --update-env): new environment,
	// arguments and settings for the new instances.
	Apps []AppSpec `json:"apps,omitempty"`
	// Parallel is how many instances of an app are replaced at once
	// (default 1).
	Parallel int `json:"parallel,omitempty"`
	// ShellEnv, when set (--update-env), is the caller's environment
	// (KEY=VALUE): it updates the environment the apps were started
	// from. A key it lacks stays, unless UnsetEnv names it: a reload run
	// from a cron job must not drop the PORT the app was started with.
	ShellEnv []string `json:"shell_env,omitempty"`
	// Env sets the apps' own variables (--env KEY=VALUE); UnsetEnv
	// removes variables, from both.
	Env      map[string]string `json:"env,omitempty"`
	UnsetEnv []string          `json:"unset_env,omitempty"`
}

// ScaleRequest is the body of POST /v1/scale: Count absolute, or Delta
// when Relative.
type ScaleRequest struct {
	App      string `json:"app"`
	Count    int    `json:"count"`
	Relative bool   `json:"relative,omitempty"`
}

// ReloadResult answers reload and scale.
type ReloadResult struct {
	Reports   []ReloadReport `json:"reports"`
	Instances []Instance     `json:"instances"`
	// Affected lists the ids of the instances replaced, as ActionResult
	// does, so that a reload reads as the other actions.
	Affected []int `json:"affected"`
}

// ReloadRecord is one reload, scale or replacement the daemon made, as
// GET /v1/reloads lists them.
type ReloadRecord struct {
	ReloadReport
	// By says who started it: "dashboard", "command" (the CLI or another
	// client of the API), or what tend replaced instances for: "watch",
	// "cron", "memory", "health".
	By string `json:"by"`
}

// WebRequest is the body of POST /v1/web: serve the dashboard (or keep
// serving it) and mint a token to open it, or stop serving it.
type WebRequest struct {
	// Addr is where to serve: "" for the default (loopback), or where it
	// already serves.
	Addr string `json:"addr,omitempty"`
	// Public allows an address other machines reach.
	Public bool `json:"public,omitempty"`
	// ReadOnly mints a token whose session can only look.
	ReadOnly bool `json:"read_only,omitempty"`
	// Stop stops serving the dashboard.
	Stop bool `json:"stop,omitempty"`
}

// WebResult answers POST /v1/web.
type WebResult struct {
	Addr     string `json:"addr,omitempty"` // where the dashboard listens; "" once stopped
	URL      string `json:"url,omitempty"`  // the address to open, with a one-time token
	ReadOnly bool   `json:"read_only,omitempty"`
	Public   bool   `json:"public,omitempty"`
}
