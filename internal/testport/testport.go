package testport

import (
	"testing"

	"github.com/tendhq/tend/internal/sockets"
)

// Free returns a TCP port outside the ephemeral range that was free a
// moment ago and that this test binary has not been given before.
func Free(t testing.TB) int {
	t.Helper()
	port, err := sockets.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
