package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tendhq/tend"
)

const (
	// readHeaderTimeout bounds how long a client may take to send its
	// request headers, so that idle or slow connections cannot pile up
	// (Slowloris). A scraper sends its few headers at once.
	readHeaderTimeout = 5 * time.Second
	// idleTimeout closes kept-alive connections that saw no request for
	// longer than any usual scrape interval (Prometheus's default is 1 m),
	// so a scraper keeps its connection but abandoned ones do not stay.
	idleTimeout = 5 * time.Minute
	// maxScrapes is how many scrapes may run at once; more get 503. A
	// couple of Prometheus servers and a curl need far fewer, and the
	// bound keeps a stuck Source from tying up a goroutine per request.
	maxScrapes = 8
)

// NewHandler returns an http.Handler that serves the Prometheus metrics of
// src, of the Go runtime and of the calling process, in a registry of its
// own (nothing is registered globally). A series the collector cannot build
// is left out of the response and counted in
// promhttp_metric_handler_errors_total rather than failing the scrape.
func NewHandler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collector{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: maxScrapes,
	})
}

// Listen binds the metrics listener on addr, a "host:port" address. An
// empty host (":9615") binds loopback, 127.0.0.1, not every interface:
// nothing can scrape tend from another machine unless the user names an
// address that allows it, such as "0.0.0.0:9615". Port 0 picks a free port.
//
// Errors are meant for the user: a malformed address is a tend.EINVALID, a
// port in use a tend.ECONFLICT that names the port.
func Listen(addr string) (net.Listener, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, tend.Errorf(tend.EINVALID, "metrics address %q is not host:port, such as 127.0.0.1:9615", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, tend.Errorf(tend.EINVALID, "metrics address %q: port %q is not a number from 0 to 65535", addr, portStr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	addr = net.JoinHostPort(host, portStr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, tend.Errorf(tend.ECONFLICT, "cannot serve metrics on %s: port %d is already in use; stop the program that holds it or choose another metrics address", addr, port)
		case errors.Is(err, syscall.EACCES):
			return nil, tend.Errorf(tend.EINVALID, "cannot serve metrics on %s: binding port %d needs root or CAP_NET_BIND_SERVICE; use a port of 1024 or above", addr, port)
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			return nil, tend.Errorf(tend.EINVALID, "cannot serve metrics on %s: the address is not one of this machine's", addr)
		}
		return nil, fmt.Errorf("serving metrics on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve answers GET /metrics on ln with NewHandler(src); every other path
// is 404. It returns when ln is closed, after closing the connections it
// still holds, and then returns nil; any other error ends it too and is
// returned.
func Serve(ln net.Listener, src Source) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", NewHandler(src))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
	}
	err := srv.Serve(ln)
	srv.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
