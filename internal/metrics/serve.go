package metrics

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

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

// contentType is the text exposition format, the one every Prometheus
// version and the usual agents read.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// handler serves one snapshot of a Source per request.
type handler struct {
	src     Source
	scrapes chan struct{} // a token per scrape in progress, at most maxScrapes
	// dropped counts the series left out of all scrapes so far because a
	// label value was not valid UTF-8.
	dropped atomic.Uint64
}

// NewHandler returns an http.Handler that serves the Prometheus metrics of
// src, of the Go runtime and of the calling process in the text exposition
// format, gzipped when the client accepts it. A series whose label value is
// not valid UTF-8 is left out of the response and counted in
// promhttp_metric_handler_errors_total{cause="gathering"} (client_golang's
// name, which dashboards know) rather than failing the scrape.
func NewHandler(src Source) http.Handler {
	return &handler{src: src, scrapes: make(chan struct{}, maxScrapes)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.scrapes <- struct{}{}:
		defer func() { <-h.scrapes }()
	default:
		http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", maxScrapes), http.StatusServiceUnavailable)
		return
	}
	instances, apps := h.src.Snapshot()

	w.Header().Set("Content-Type", contentType)
	w.Header().Add("Vary", "Accept-Encoding")
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		// The compressor is ~0.8 MB at any level; it is garbage after the
		// scrape rather than kept in a pool, so that an idle daemon does
		// not hold it. The default level shrinks the text by ~75 %.
		gz := gzip.NewWriter(w)
		defer gz.Close()
		out = gz
	}
	tw := &textWriter{w: bufio.NewWriter(out)}
	writeTend(tw, instances, apps)
	writeGo(tw)
	writeProcess(tw)
	// Last, so that this scrape's own dropped series are in it.
	n := h.dropped.Add(uint64(tw.dropped))
	tw.family("promhttp_metric_handler_errors_total",
		"Total number of internal errors encountered by the promhttp metric handler.", counter)
	tw.sample(float64(n), "cause", "gathering")
	// A write error means the scraper went away; there is no one to tell.
	tw.w.Flush()
}

// acceptsGzip reports whether an Accept-Encoding header value lists gzip,
// as Prometheus sends it, and does not refuse it with q=0. Anything else
// (no header, "*", "identity") gets the plain text, which every client reads.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
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
