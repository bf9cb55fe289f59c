package sockets

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// given are the ports FreePort handed out lately, which their instances
// may not have bound yet.
var given = struct {
	sync.Mutex
	at map[int]time.Time
}{at: map[int]time.Time{}}

// givenFor is how long a port handed out is not handed out again: longer
// than any instance takes to bind its PORT.
const givenFor = 5 * time.Minute

// FreePort returns a TCP port for a program to listen on (a proxied
// instance's PORT): free on every address now, and outside the kernel's
// ephemeral range, from which every connect() on the host draws its
// source port. A port from listening on :0, closed and handed on, lies in
// that range: the proxy's own connections to the other instances, or any
// client on the host, could take it before the instance binds it. Below
// the range only a program that binds that very port can; a port handed
// out is not handed out again for a while.
func FreePort() (int, error) {
	first, last := portRange()
	given.Lock()
	defer given.Unlock()
	now := time.Now()
	for p, at := range given.at {
		if now.Sub(at) > givenFor {
			delete(given.at, p)
		}
	}
	for range 1000 {
		port := first + rand.IntN(last-first+1)
		if _, taken := given.at[port]; taken {
			continue
		}
		if l, err := net.Listen("tcp", ":"+strconv.Itoa(port)); err == nil { // every address, both families
			l.Close()
			given.at[port] = now
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port between %d and %d", first, last)
}

// portRange is where FreePort looks: below the ephemeral range when there
// is room (from 10000), above it otherwise.
func portRange() (first, last int) {
	low, high := 32768, 60999 // Linux's default range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil {
				low, high = l, h
			}
		}
	}
	if low-1-10000 >= 1000 {
		return 10000, low - 1
	}
	return high + 1, 65535
}
