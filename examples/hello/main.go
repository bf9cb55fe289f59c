// Command hello is the bundled example: an HTTP server that runs as one
// instance of a tend cluster. Under tend (socket mode) it serves the shared
// port handed to it as fd 3; alone it listens on $PORT (default 3000).
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

	"github.com/tendhq/tend/internal/activation"
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
	log.Fatal(http.Serve(ln, nil))
}

// listener takes the socket tend hands over (LISTEN_FDS), or binds $PORT.
func listener() (net.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, err
	}
	if len(lns) > 0 {
		return lns[0], nil
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	return net.Listen("tcp", "127.0.0.1:"+port)
}
