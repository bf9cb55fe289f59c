// Package seam lets clustertest run workers as goroutines of the test
// process instead of as child processes, without widening the public API of
// package cluster. Package cluster fills in the functions at init.
package seam

import "os"

// A Process is a started worker, as the Primary sees it.
type Process interface {
	Pid() int
	Signal(os.Signal) error
	// Wait blocks until the worker is gone and returns its exit code, or
	// -1 and the signal that ended it.
	Wait() (code int, sig os.Signal)
}

// A Spawner starts worker id with channel (the child's end of its IPC
// socketpair; the caller closes it after Spawner returns) and env (the
// full environment, NODE_UNIQUE_ID and NODE_CHANNEL_FD included).
type Spawner func(id int, channel *os.File, env []string) (Process, error)

// Set by package cluster.
var (
	// NewPrimary returns a *cluster.Primary for settings (a
	// cluster.Settings) whose workers are started by spawn.
	NewPrimary func(settings any, spawn Spawner) (any, error)
	// NewChild returns a *cluster.Child speaking on channel as worker id.
	// It takes ownership of channel.
	NewChild func(id int, channel *os.File) (any, error)
	// Kill ends a *cluster.Child as the death of its process would: its
	// channel and listeners close at once.
	Kill func(child any)
)
