package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// firstRequestGrace bounds how long a disconnecting worker waits for a
// connection it accepted to send its first request. It is the 5 s after
// which http.Server.Shutdown itself gives up on such connections.
const firstRequestGrace = 5 * time.Second

// idleGrace is how long after its disconnect a worker leaves keep-alive
// connections open, so that a client in use gets its next answer (with
// "Connection: close") instead of a closed connection: a second, or what
// tend says in TEND_DRAIN_MS (it keeps the drain within kill_timeout).
func idleGrace() time.Duration {
	if ms, err := strconv.ParseUint(os.Getenv("TEND_DRAIN_MS"), 10, 31); err == nil {
		return time.Duration(ms) * time.Millisecond
	}
	return time.Second
}

// Serve runs srv.Serve(ln) until the worker disconnects, or, unless the
// process is a worker of a cluster primary (which stops it with a
// disconnect), until SIGINT or SIGTERM: how tend, systemd and a terminal
// stop a process. Then it stops gracefully and returns nil: it
// stops taking connections, lets every connection already accepted start
// its first request, answers every request from then on with "Connection:
// close" and gives keep-alive connections up to a second to end that way,
// and calls http.Server.Shutdown, which waits for requests in flight.
// (Shutdown alone closes idle keep-alive connections at once, and a client
// writing its next request on one meets a reset.) Any other end of
// srv.Serve is returned as is (http.ErrServerClosed after the program
// called srv.Shutdown or srv.Close; a program that also shuts srv down on
// SIGINT or SIGTERM itself gets nil or http.ErrServerClosed, whichever
// of the two reacted first: treat both as a clean end). A worker whose main returns after
// Serve exits cleanly, so a primary's Disconnect or a manager's stop
// signal ends it without failing a request. A second signal is not caught.
//
// Serve chains hooks onto srv's ConnState, ConnContext and Handler before
// serving (http.Server.Shutdown alone would drop a request that arrives on
// a connection accepted just before it: net/http reads it, sees the
// shutdown, and closes). In a primary, it is srv.Serve(ln) with the same
// hooks.
func (c *Child) Serve(srv *http.Server, ln net.Listener) error {
	select {
	case <-c.disc:
		ln.Close()
		return nil
	default:
	}
	c.serving.Add(1)
	defer c.serving.Done()
	stop := ln.Close
	switch l := ln.(type) {
	case *rrListener:
		l.served.Store(true)
		stop = func() error {
			// Connections the primary already handed over are ours:
			// Accept them before closing, or their clients see a reset.
			<-l.drain()
			return l.Close()
		}
	case *sharedListener:
		l.served.Store(true)
	}
	t := trackConns(srv)
	var sigs chan os.Signal
	if c.kind != kindNode {
		// Managers (tend, systemd) and terminals stop a process with a
		// signal: the first starts the same graceful stop as a
		// disconnect; after it, signals act as if nobody listened (a
		// second one ends the process). A worker of a cluster primary is
		// stopped by its primary instead and keeps Go's default.
		sigs = make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(sigs)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-c.disc:
	case <-sigs:
		go c.disconnect(false)
	}
	if sigs != nil {
		signal.Stop(sigs)
	}
	t.draining.Store(true)
	idleEnd := time.Now().Add(idleGrace())
	stop()
	if err := <-errc; errors.Is(err, http.ErrServerClosed) {
		// The program shut srv down itself (its own signal handler,
		// say): its Shutdown does the waiting.
		return err
	} else if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	t.wait(time.Now().Add(firstRequestGrace), func() bool { return len(t.waiting) == 0 })
	t.wait(idleEnd, func() bool { return t.open == 0 })
	return srv.Shutdown(context.Background())
}

// conns tracks a server's connections for a graceful stop.
type conns struct {
	mu      sync.Mutex
	open    int               // connections not closed or hijacked
	waiting map[net.Conn]bool // connections whose first request has not reached the handler
	changed chan struct{}     // signalled when open or waiting may have shrunk

	draining atomic.Bool // answers end their connection
}

type connKey struct{}

func trackConns(srv *http.Server) *conns {
	t := &conns{waiting: map[net.Conn]bool{}, changed: make(chan struct{}, 1)}
	connState, connContext, h := srv.ConnState, srv.ConnContext, srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.ConnState = func(nc net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			t.mu.Lock()
			t.open++
			t.waiting[nc] = true
			t.mu.Unlock()
		case http.StateIdle:
			t.served(nc)
		case http.StateClosed, http.StateHijacked:
			t.mu.Lock()
			t.open--
			delete(t.waiting, nc)
			t.mu.Unlock()
			t.signal()
		}
		if connState != nil {
			connState(nc, st)
		}
	}
	srv.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, nc)
		}
		return context.WithValue(ctx, connKey{}, nc)
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if nc, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			t.served(nc)
		}
		if t.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
	return t
}

// served notes that nc no longer awaits its first request.
func (t *conns) served(nc net.Conn) {
	t.mu.Lock()
	first := t.waiting[nc]
	delete(t.waiting, nc)
	t.mu.Unlock()
	if first {
		t.signal()
	}
}

// signal wakes wait.
func (t *conns) signal() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// wait returns once done (called with t.mu held) is true, or at deadline.
func (t *conns) wait(deadline time.Time, done func() bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		t.mu.Lock()
		ok := done()
		t.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-t.changed:
		case <-timer.C:
			return
		}
	}
}
