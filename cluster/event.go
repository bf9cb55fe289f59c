package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
)

// EventKind says what an Event reports. The kinds are Node's cluster
// events of the same names.
type EventKind int

// The kinds of Event, in the order a worker's life produces them.
const (
	// Online: the worker process started and its cluster code runs.
	Online EventKind = iota + 1
	// Listening: the worker's Listen succeeded; Addr is the address.
	Listening
	// Message: the worker sent a message (Send); Msg holds it as JSON.
	Message
	// Disconnected: the worker's channel closed. It gets no more
	// connections; its process may still be running.
	Disconnected
	// Exit: the worker process is gone. Code is its exit status, or -1
	// when Signal ended it. This is the worker's last event.
	Exit
	// Error: something went wrong for the worker that it may not have
	// reported itself: a Listen the primary could not serve (the worker's
	// Listen returned the same error), or no Listen within
	// Settings.ListenTimeout. Err says what.
	Error
	// Forked: Fork has started the worker's process; Online follows.
	// Node's "fork" event.
	Forked
	// Configured: Setup changed the settings of later forks (Worker is
	// nil). Node's "setup" event.
	Configured
)

var kindNames = [...]string{"", "online", "listening", "message", "disconnect", "exit", "error", "fork", "setup"}

// String returns Node's name for the kind ("online", "exit", ...).
func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// An Event is something a worker did. A Primary delivers the events of
// one worker in order.
type Event struct {
	Kind   EventKind
	Worker *Worker
	// Addr is the listening address (Listening), or the requested one
	// (Error from Listen).
	Addr net.Addr
	// Msg is the message (Message), JSON as the worker sent it.
	Msg json.RawMessage
	// Code and Signal are the exit status (Exit): Code is -1 when the
	// worker was killed by Signal.
	Code   int
	Signal os.Signal
	// Err is the reason for Error, or the channel error for an abnormal
	// Disconnected (nil for a plain close).
	Err error
}

// Decode unmarshals a Message event's payload into v.
func (e Event) Decode(v any) error {
	if e.Kind != Message {
		return fmt.Errorf("cluster: decoding a %s event: only message events carry a payload", e.Kind)
	}
	if err := json.Unmarshal(e.Msg, v); err != nil {
		return fmt.Errorf("cluster: message from worker %d: %w", e.Worker.ID(), err)
	}
	return nil
}

// String describes the event for logs, e.g. "worker 3 (pid 4242) exit: signal: killed".
func (e Event) String() string {
	w := "worker ?"
	if e.Worker != nil {
		w = fmt.Sprintf("worker %d (pid %d)", e.Worker.ID(), e.Worker.PID())
	}
	switch e.Kind {
	case Listening:
		return fmt.Sprintf("%s listening on %v", w, e.Addr)
	case Message:
		return fmt.Sprintf("%s message: %s", w, e.Msg)
	case Exit:
		if e.Signal != nil {
			return fmt.Sprintf("%s exit: signal: %v", w, e.Signal)
		}
		return fmt.Sprintf("%s exit: code %d", w, e.Code)
	case Error:
		return fmt.Sprintf("%s error: %v", w, e.Err)
	}
	return fmt.Sprintf("%s %s", w, e.Kind)
}
