// Command tend is a process manager with a cluster mode. See the README.
package main

import (
	"os"

	"github.com/tendhq/tend/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
