// Command restart is the seeds' cluster.js in Go: the primary runs a
// separate worker executable (here, this program in worker mode, as
// setupPrimary({exec}) would), one per core, and replaces any worker that
// terminates. Kill a worker to watch it come back:
//
//	go run ./examples/cluster-go/restart
//	curl localhost:3000/read-content; kill -9 <a worker pid>
package main

import (
	"cmp"
	"log"
	"net/http"
	"os"
	"runtime"

	"github.com/tendhq/tend/cluster"
)

func main() {
	if cluster.IsPrimary() {
		primary()
		return
	}
	worker()
}

func primary() {
	cpuCount := runtime.NumCPU()
	log.Printf("Primary pid=%d", os.Getpid())
	// setupPrimary({exec: __dirname + '/index.js'}): the default is this
	// program; Exec and Args name any other.
	if err := cluster.Setup(cluster.Settings{Sched: cluster.RoundRobin}); err != nil {
		log.Fatal(err)
	}
	for range cpuCount {
		if _, err := cluster.Fork(nil); err != nil {
			log.Fatal(err)
		}
	}
	for ev := range cluster.Events() {
		switch ev.Kind {
		case cluster.Exit:
			log.Printf("Worker %d has terminated (%v).", ev.Worker.PID(), ev)
			log.Printf("Initiating replacement worker.")
			cluster.Fork(nil)
		case cluster.Error:
			log.Print(ev)
		}
	}
}

// worker is the seeds' index.js: /read-content answers with a file.
func worker() {
	port := cmp.Or(os.Getenv("PORT"), "3000")
	file := cmp.Or(os.Getenv("CONTENT"), "content.txt")
	http.HandleFunc("/read-content", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(file)
		if err != nil {
			log.Printf("Error reading file: %v", err)
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		w.Write(data)
	})
	ln, err := cluster.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("App (PID: %d) is listening on port %s", os.Getpid(), port)
	if err := cluster.Serve(&http.Server{}, ln); err != nil {
		log.Fatal(err)
	}
}
