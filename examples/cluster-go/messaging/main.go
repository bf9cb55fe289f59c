// Command messaging is the seeds' messaging.js in Go: each worker sends
// the primary a message, which the primary logs with the worker's pid.
//
//	go run ./examples/cluster-go/messaging
package main

import (
	"fmt"
	"log"
	"os"
	"runtime"

	"github.com/tendhq/tend/cluster"
)

func main() {
	numCPUs := runtime.NumCPU()

	if cluster.IsPrimary() {
		log.Printf("Primary %d is running.", os.Getpid())
		for range numCPUs {
			cluster.Fork(nil)
		}
		// Receive messages from workers and handle them in the primary.
		received := 0
		for ev := range cluster.Events() {
			if ev.Kind != cluster.Message {
				continue
			}
			log.Printf("Primary %d received a message from worker %d: %s", os.Getpid(), ev.Worker.PID(), ev.Msg)
			// Unlike Node, a Go primary does not end by itself: once every
			// worker has spoken, let them go and end.
			if received++; received == numCPUs {
				for _, w := range cluster.Workers() {
					w.Disconnect()
					w.Wait()
				}
				return
			}
		}
	} else if cluster.IsWorker() {
		log.Printf("Worker %d is active.", os.Getpid())
		// Send a message to the primary.
		err := cluster.Send(map[string]string{
			"msgFromWorker": fmt.Sprintf("Message sent from worker %d.", os.Getpid()),
		})
		if err != nil {
			log.Fatal(err)
		}
		// Wait for the primary to let go (Disconnect closes the channel).
		for range cluster.Messages() {
		}
	}
}
