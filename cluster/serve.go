package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// firstRequestGrace bounds how long a disconnecting worker waits for a
// connection it accepted to send its first request. It is the 5 s after
// which http.Server.Shutdown itself gives up on such connections.
const firstRequestGrace = 5 * time.Second

// Serve runs srv.Serve(ln) until the worker disconnects, then stops
// gracefully and returns nil: it stops taking connections, lets every
// connection already accepted start its first request, and calls
// http.Server.Shutdown, which waits for requests in flight. Any other end
// of srv.Serve is returned as is (http.ErrServerClosed after the program
// called srv.Shutdown or srv.Close). A worker whose main returns after
// Serve exits cleanly, so a primary's Disconnect stops it without failing
// a request.
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
	t := trackFirstRequests(srv)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-c.disc:
	}
	stop()
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	t.wait(firstRequestGrace)
	return srv.Shutdown(context.Background())
}

// firstRequests tracks connections whose first request has not reached
// the handler yet.
type firstRequests struct {
	mu      sync.Mutex
	waiting map[net.Conn]bool
	empty   chan struct{} // signalled when waiting may have become empty
}

type connKey struct{}

func trackFirstRequests(srv *http.Server) *firstRequests {
	t := &firstRequests{waiting: map[net.Conn]bool{}, empty: make(chan struct{}, 1)}
	connState, connContext, h := srv.ConnState, srv.ConnContext, srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.ConnState = func(nc net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			t.mu.Lock()
			t.waiting[nc] = true
			t.mu.Unlock()
		case http.StateIdle, http.StateClosed, http.StateHijacked:
			t.done(nc)
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
			t.done(nc)
		}
		h.ServeHTTP(w, r)
	})
	return t
}

func (t *firstRequests) done(nc net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiting[nc] {
		delete(t.waiting, nc)
		if len(t.waiting) == 0 {
			select {
			case t.empty <- struct{}{}:
			default:
			}
		}
	}
}

// wait returns once no connection awaits its first request, or after d.
func (t *firstRequests) wait(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		t.mu.Lock()
		n := len(t.waiting)
		t.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-t.empty:
		case <-timer.C:
			return
		}
	}
}
