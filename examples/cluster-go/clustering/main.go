// Command clustering is the seeds' cluster program in Go: the primary
// forks one worker per core and re-forks any that dies; every worker
// serves HTTP on port 3000 (PORT overrides it).
//
//	go run ./examples/cluster-go/clustering
//	curl localhost:3000
package main

import (
	"cmp"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"

	"github.com/tendhq/tend/cluster"
)

func main() {
	port := cmp.Or(os.Getenv("PORT"), "3000")

	if cluster.IsPrimary() {
		cpuCount := runtime.NumCPU()
		log.Printf("Master %d is running", os.Getpid())

		for range cpuCount {
			cluster.Fork(nil)
		}

		for ev := range cluster.Events() {
			if ev.Kind == cluster.Exit {
				log.Printf("Worker %d died, restarting...", ev.Worker.PID())
				cluster.Fork(nil)
			}
		}
	} else {
		ln, err := cluster.Listen("tcp", ":"+port)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("Worker %d started", os.Getpid())
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			fmt.Fprintf(w, "Hello from worker %d\n", os.Getpid())
		})}
		if err := cluster.Serve(srv, ln); err != nil {
			log.Fatal(err)
		}
	}
}
