package nodecluster

import "encoding/json"

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event.
const (
	// Online: the worker's cluster code started ({act:"online"}).
	Online EventKind = iota
	// Listening: one of the worker's servers is listening; Port and Address
	// are what the worker reported.
	Listening
	// Message: a user message (process.send) in Msg.
	Message
	// Ready: the worker sent the string "ready" (PM2's wait_ready).
	Ready
	// Disconnected: the worker's channel closed; Err is nil for a plain EOF.
	// The worker gets no more connections; its process may still run.
	Disconnected
	// Error: a server of the worker could not be set up (Err; Port and
	// Address are the request). The worker received the errno and its
	// server emitted 'error'.
	Error
	// Leaving: the worker disconnects by itself (worker.disconnect() in
	// Node); it takes no new connection. Node's exitedAfterDisconnect.
	Leaving
)

var kindNames = [...]string{"online", "listening", "message", "ready", "disconnected", "error", "leaving"}

// String returns the kind's lower-case name.
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// An Event is something a worker did, delivered on the channel given to
// AddWorker. Events of one worker arrive in order.
type Event struct {
	Worker  int
	Kind    EventKind
	Port    int
	Address string
	Msg     json.RawMessage
	Err     error
}
