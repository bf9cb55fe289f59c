package cluster_test

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"

	"github.com/tendhq/tend/cluster"
)

// The seeds' program: the primary forks one worker per core and re-forks
// any that exits; workers serve HTTP on one port.
func Example() {
	if cluster.IsPrimary() {
		log.Printf("primary %d is running", os.Getpid())
		for range runtime.NumCPU() {
			if _, err := cluster.Fork(nil); err != nil {
				log.Fatal(err)
			}
		}
		for ev := range cluster.Events() {
			if ev.Kind == cluster.Exit {
				log.Printf("worker %d died, restarting...", ev.Worker.PID())
				cluster.Fork(nil)
			}
		}
		return
	}
	ln, err := cluster.Listen("tcp", ":3000")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from worker %d\n", cluster.ID())
	})}
	log.Fatal(cluster.Serve(srv, ln))
}

// Messages both ways: a worker reports to the primary, which answers.
func ExampleWorker_Send() {
	if cluster.IsWorker() {
		cluster.Send(map[string]int{"ready": cluster.ID()})
		for m := range cluster.Messages() {
			log.Printf("worker %d got %s", cluster.ID(), m)
		}
		return
	}
	cluster.Fork(nil)
	for ev := range cluster.Events() {
		if ev.Kind == cluster.Message {
			ev.Worker.Send(map[string]string{"welcome": "aboard"})
		}
	}
}

// Round robin is the default; Shared lets the kernel choose.
func ExampleSetup() {
	if err := cluster.Setup(cluster.Settings{Sched: cluster.Shared}); err != nil {
		log.Fatal(err)
	}
}

// Stop a worker without failing a request: it finishes what it has.
func ExampleWorker_Disconnect() {
	w, err := cluster.Fork(nil)
	if err != nil {
		log.Fatal(err)
	}
	w.Disconnect()
	code, sig := w.Wait()
	fmt.Println(code, sig, w.ExitedAfterDisconnect())
}
