package testport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Free returns a TCP port outside the ephemeral range that was free on
// every address a moment ago: below the range when there is room (from
// 10000), above it otherwise.
func Free(t testing.TB) int {
	t.Helper()
	low, high := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil {
				low, high = l, h
			}
		}
	}
	first, last := 10000, low-1
	if last-first < 1000 {
		first, last = high+1, 65535
	}
	if last < first {
		t.Fatalf("no ports outside the ephemeral range %d-%d", low, high)
	}
	given.Lock()
	defer given.Unlock()
	for range 1000 {
		port := first + rand.IntN(last-first+1)
		if given.ports[port] {
			continue
		}
		if l, err := net.Listen("tcp", ":"+strconv.Itoa(port)); err == nil {
			l.Close()
			given.ports[port] = true
			return port
		}
	}
	t.Fatalf("no free port between %d and %d", first, last)
	return 0
}
