package daemon

import (
	"fmt"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// PprofEnv, when set in the daemon's environment to an address, serves
// Go's profiles there (loopback unless a host is named), in the paths of
// net/http/pprof so that `go tool pprof http://ADDR/debug/pprof/profile`
// and `.../debug/pprof/heap` work: how the daemon's own performance is
// investigated. Off by default.
//
// The handlers are written on runtime/pprof rather than imported from
// net/http/pprof, whose HTML index links html/template into the binary:
// a quarter of a megabyte more of it mapped by the daemon.
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
	go http.Serve(ln, pprofHandler())
	return nil
}

// pprofHandler serves the profiles under /debug/pprof/.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/profile", cpuProfile)
	mux.HandleFunc("GET /debug/pprof/{name}", namedProfile)
	mux.HandleFunc("GET /debug/pprof/{$}", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range pprof.Profiles() {
			fmt.Fprintf(w, "/debug/pprof/%s (%d)\n", p.Name(), p.Count())
		}
		fmt.Fprintln(w, "/debug/pprof/profile?seconds=N (CPU)")
	})
	return mux
}

// cpuProfile answers /debug/pprof/profile?seconds=N (default 30) with a
// CPU profile in pprof's format.
func cpuProfile(w http.ResponseWriter, r *http.Request) {
	sec, err := strconv.Atoi(r.FormValue("seconds"))
	if err != nil || sec <= 0 {
		sec = 30
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := pprof.StartCPUProfile(w); err != nil {
		http.Error(w, err.Error(), http.StatusConflict) // another profile runs
		return
	}
	select {
	case <-time.After(time.Duration(sec) * time.Second):
	case <-r.Context().Done():
	}
	pprof.StopCPUProfile()
}

// namedProfile answers /debug/pprof/heap, goroutine, allocs… (?debug=1 or
// 2 for text).
func namedProfile(w http.ResponseWriter, r *http.Request) {
	p := pprof.Lookup(strings.TrimSpace(r.PathValue("name")))
	if p == nil {
		http.NotFound(w, r)
		return
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	if debug == 0 {
		w.Header().Set("Content-Type", "application/octet-stream")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	p.WriteTo(w, debug)
}
