package podhealth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tendhq/tend"
	"github.com/tendhq/tend/internal/sockets"
)

// Listen binds the probes' listener on addr, "host:port". An empty host
// (":8080") binds loopback, as every TCP listener of tend does unless told
// otherwise; a kubelet probes the pod's own IP, so in Kubernetes the address
// names one that it reaches, such as "0.0.0.0:8080". Errors name the
// address and what to change.
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, tend.Errorf(tend.EINVALID, "health address %q is not host:port, such as 0.0.0.0:8080", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	// [::] is every address, IPv4 too; on a host without IPv6, Go's
	// listen binds every IPv4 address for it.
	ln, err := sockets.ListenFor(sockets.HostNetwork(host), net.JoinHostPort(host, port), "choose another --health-addr")
	if err != nil {
		return nil, fmt.Errorf("serving health endpoints on %s: %w", addr, err)
	}
	return ln, nil
}

// readHeaderTimeout bounds how long a prober may take to send its
// headers: a kubelet sends them at once, and slow clients must not pile
// up connections.
const readHeaderTimeout = 5 * time.Second

// Serve answers the probes on ln until ln is closed, then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: time.Minute}
	err := srv.Serve(ln)
	srv.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
