package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/tendhq/tend/cluster/internal/seam"
	"github.com/tendhq/tend/internal/nodeipc"
	"golang.org/x/sys/unix"
)

// self is this process's Child, set up at init from the environment, as
// Node's cluster module does at startup: a worker says "online" and
// watches its channel even before the program calls anything.
var self = fromEnv()

// fromEnv decides the process's role. The variables are removed from the
// environment once read, so that programs the worker starts are not
// mistaken for workers (Node deletes NODE_UNIQUE_ID too).
func fromEnv() *Child {
	uid, isNode := os.LookupEnv("NODE_UNIQUE_ID")
	chVar := "NODE_CHANNEL_FD"
	chFD, hasCh := os.LookupEnv(chVar)
	mode := os.Getenv("NODE_CHANNEL_SERIALIZATION_MODE")
	if !hasCh && !isNode && activated() {
		// In socket mode tend is the primary and gives apps that are not
		// Node their channel under its own name. Elsewhere (fork and proxy
		// modes) the program stays a primary and the variable is its own.
		chVar = "TEND_CHANNEL_FD"
		chFD, hasCh = os.LookupEnv(chVar)
		os.Unsetenv(chVar)
	}
	os.Unsetenv("NODE_UNIQUE_ID")
	os.Unsetenv("NODE_CHANNEL_FD")
	os.Unsetenv("NODE_CHANNEL_SERIALIZATION_MODE")

	var ch *nodeipc.Channel
	if hasCh {
		fd, err := strconv.Atoi(chFD)
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "cluster: %s=%q is not a descriptor; ignoring it\n", chVar, chFD)
		case mode != "" && mode != "json":
			fmt.Fprintf(os.Stderr, "cluster: NODE_CHANNEL_SERIALIZATION_MODE=%q: only json is spoken; ignoring the channel\n", mode)
		default:
			if ch, err = nodeipc.FromFD(fd); err != nil {
				fmt.Fprintf(os.Stderr, "cluster: %v; ignoring the channel\n", err)
			}
		}
	}
	switch {
	case isNode && ch != nil:
		id, _ := strconv.Atoi(uid)
		return newChild(id, kindNode, ch, exit0)
	case activated():
		id, _ := strconv.Atoi(os.Getenv("TEND_WORKER_ID"))
		return newChild(id, kindActivation, ch, exit0)
	case ch != nil:
		id, _ := strconv.Atoi(os.Getenv("TEND_WORKER_ID"))
		return newChild(id, kindManaged, ch, exit0)
	}
	return newChild(0, kindPrimary, nil, exit0)
}

// activated reports whether sockets were passed to this very process
// (LISTEN_PID is ours and LISTEN_FDS positive). The variables stay set:
// Listen consumes them.
func activated() bool {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return false
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	return err == nil && n > 0
}

// exit0 ends a worker whose primary is gone, with status 0 as Node does.
func exit0() { os.Exit(0) }

// IsPrimary reports whether this process is a primary: nobody's worker,
// so it forks workers (Node's cluster.isPrimary). Under tend it is false
// (tend is the primary), so the same program runs its worker branch.
func IsPrimary() bool { return self.kind == kindPrimary }

// IsWorker reports whether this process is a worker: forked by a Primary
// (NODE_UNIQUE_ID and NODE_CHANNEL_FD), given its sockets by tend or
// systemd (LISTEN_FDS for this pid), or started by a manager with a Node
// channel (NODE_CHANNEL_FD). It is !IsPrimary().
func IsWorker() bool { return !IsPrimary() }

// Self returns this process's Child, the worker side of the cluster.
// Worker logic written against a *Child can be tested with clustertest.
func Self() *Child { return self }

var (
	stdOnce sync.Once
	std     *Primary
	stdErr  error
)

// Default returns the process's own Primary, created with the zero
// Settings (or those of an earlier Setup) on first use. Primary logic
// written against a *Primary can be tested with clustertest.
func Default() *Primary {
	stdOnce.Do(func() { std, stdErr = NewPrimary(Settings{}) })
	if stdErr != nil {
		// Only os.Executable can fail with zero Settings; a program that
		// cannot find itself cannot fork either.
		panic(stdErr)
	}
	return std
}

// Setup configures the workers forked afterwards (Node's
// cluster.setupPrimary): executable, arguments, environment, scheduling.
func Setup(s Settings) error {
	created := false
	stdOnce.Do(func() {
		created = true
		std, stdErr = NewPrimary(s)
	})
	if created {
		return stdErr
	}
	return Default().Setup(s)
}

// Fork starts a worker: this program again, unless Setup said otherwise,
// with env added to its environment. See Primary.Fork.
func Fork(env map[string]string) (*Worker, error) { return Default().Fork(env) }

// Workers returns the live workers of Default(), by id.
func Workers() []*Worker { return Default().Workers() }

// Events returns the channel of Default()'s events (online, listening,
// message, disconnect, exit, error).
func Events() <-chan Event { return Default().Events() }

// DisconnectAll disconnects every worker of Default() and waits until
// each has closed its channel, or ctx ends (Node's cluster.disconnect()).
func DisconnectAll(ctx context.Context) error { return Default().Disconnect(ctx) }

// Broadcast sends v, as JSON, to every worker of Default().
func Broadcast(v any) error { return Default().Broadcast(v) }

// ID returns this worker's id (Self().ID()); 0 in a primary.
func ID() int { return self.ID() }

// Listen is Self().Listen: in a worker, a listener shared with the other
// workers; in a primary, net.Listen.
func Listen(network, address string) (net.Listener, error) { return self.Listen(network, address) }

// ListenPacket is Self().ListenPacket: in a worker, a UDP socket shared
// with the other workers; in a primary, net.ListenPacket.
func ListenPacket(network, address string) (net.PacketConn, error) {
	return self.ListenPacket(network, address)
}

// Send sends v, as JSON, to the primary (Self().Send).
func Send(v any) error { return self.Send(v) }

// Messages returns the messages from the primary (Self().Messages).
func Messages() <-chan json.RawMessage { return self.Messages() }

// Disconnect leaves the cluster gracefully (Self().Disconnect).
func Disconnect() error { return self.Disconnect() }

// Serve serves HTTP until the worker disconnects, then shuts down
// gracefully (Self().Serve).
func Serve(srv *http.Server, ln net.Listener) error { return self.Serve(srv, ln) }

func init() {
	seam.NewPrimary = func(s any, spawn seam.Spawner) (any, error) { return newPrimary(s.(Settings), spawn) }
	seam.NewChild = func(id int, f *os.File) (any, error) {
		// FromFD owns and closes the descriptor it gets: give it a
		// duplicate so that f keeps its own.
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		ch, err := nodeipc.FromFD(fd)
		if err != nil {
			return nil, err
		}
		// A goroutine, not a process: losing the primary exits nothing.
		return newChild(id, kindNode, ch, func() {}), nil
	}
	seam.Kill = func(c any) { c.(*Child).kill() }
}
