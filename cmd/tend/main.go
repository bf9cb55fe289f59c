// Command tend is a process manager with a cluster mode. See the README.
package main

import (
	"os"
	"runtime"

	"github.com/tendhq/tend/internal/cli"
	"github.com/tendhq/tend/internal/daemon"
)

func main() {
	// No allocation sampling unless the daemon's profiles are served: the
	// sampled stacks stay in memory for the life of the process.
	if os.Getenv(daemon.PprofEnv) == "" {
		runtime.MemProfileRate = 0
	}
	os.Exit(cli.Main(os.Args[1:]))
}
