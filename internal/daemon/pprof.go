package daemon

import (
	"net"
	"net/http"
	"net/http/pprof"
)

// PprofEnv, when set in the daemon's environment to an address, serves
// Go's profiler there (loopback unless a host is named): how the daemon's
// own performance is investigated. Off by default.
const PprofEnv = "TEND_PPROF_ADDR"

func servePprof(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go http.Serve(ln, mux)
	return nil
}
