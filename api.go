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
}

// StartRequest is the body of POST /v1/start.
type StartRequest struct {
	Apps  []AppSpec `json:"apps"`
	Force bool      `json:"force,omitempty"` // replace apps of the same name
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
}
