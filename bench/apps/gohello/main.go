// Command gohello is the gocluster suite's server: a Go hello world that
// answers "pid N" on every path, run four ways from one binary.
//
//	SCHED=single PORT=3000 gohello   one process, net.Listen
//	SCHED=rr     PORT=3000 gohello   cluster package primary + runtime.NumCPU() workers, round robin
//	SCHED=shared PORT=3000 gohello   the same, workers accept on the shared socket
//	tend start gohello -i 2 --port 3000   under tend (socket mode): every instance
//	                                      is a worker, cluster.Listen takes fd 3
package main

import (
	"cmp"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"

	"github.com/tendhq/tend/cluster"
)

func main() {
	port := cmp.Or(os.Getenv("PORT"), "3000")
	reply := []byte("pid " + strconv.Itoa(os.Getpid()) + "\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(reply)
	})}

	sched := os.Getenv("SCHED")
	if sched == "single" {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(srv.Serve(ln))
	}

	if cluster.IsPrimary() {
		if err := cluster.Setup(cluster.Settings{Sched: cluster.Sched(cmp.Or(sched, "rr"))}); err != nil {
			log.Fatal(err)
		}
		for range runtime.NumCPU() {
			if _, err := cluster.Fork(nil); err != nil {
				log.Fatal(err)
			}
		}
		for ev := range cluster.Events() {
			if ev.Kind == cluster.Exit {
				log.Fatalf("worker %d exited: %v", ev.Worker.PID(), ev)
			}
		}
		return
	}
	ln, err := cluster.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "worker %d listening on %s\n", os.Getpid(), ln.Addr())
	log.Fatal(cluster.Serve(srv, ln))
}
