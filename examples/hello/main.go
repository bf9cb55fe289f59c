// Command hello is the bundled example: an HTTP server that runs as one
// instance of a tend cluster. It listens with the cluster package: under
// tend (socket mode) that is the shared port handed over as fd 3, and
// readiness is reported with sd_notify; alone it listens on $PORT
// (default 3000).
//
//	go build -o bin/ ./cmd/tend ./examples/hello
//	bin/tend start bin/hello -i max --port 3000
//	curl localhost:3000
package main

import (
	"crypto/sha256"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/tendhq/tend/cluster"
)

func main() {
	ln, err := listener()
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from pid %d (instance %s)\n", os.Getpid(), os.Getenv("TEND_INSTANCE"))
	})
	// /cpu does about a millisecond of hashing, to show the cores at work.
	http.HandleFunc("/cpu", func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.Sum256([]byte(r.URL.Path))
		for range 2000 {
			sum = sha256.Sum256(sum[:])
		}
		fmt.Fprintf(w, "%x\n", sum[:8])
	})
	log.Printf("pid %d serving on %s", os.Getpid(), ln.Addr())
	// cluster.Serve stops gracefully when tend stops the instance (SIGINT,
	// or --kill-signal): requests in flight finish, and keep-alive clients
	// get "Connection: close" and move to the other instances.
	if err := cluster.Serve(&http.Server{}, ln); err != nil {
		log.Fatal(err)
	}
}

// listener takes the socket tend hands over, or binds $PORT.
func listener() (net.Listener, error) {
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	return cluster.Listen("tcp", "127.0.0.1:"+port)
}
