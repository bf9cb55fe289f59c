package proxy

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tendhq/tend"
)

// from returns a client whose connections come from source address ip
// (any 127.x.y.z is this machine's on Linux), one connection per request.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// TestStickyKeepsAddressOnSlot checks that every connection from one
// client address reaches one backend, that the addresses spread over the
// backends, that a backend replacing another in its slot gets exactly that
// slot's clients, and that a slot going away moves only its own clients.
func TestStickyKeepsAddressOnSlot(t *testing.T) {
	b1, b2, b3 := goBackend(t, 1, false), goBackend(t, 2, false), goBackend(t, 3, false)
	b1.Slot, b2.Slot, b3.Slot = 0, 1, 2
	p, url := start(t, tend.SchedSticky, []Backend{b1, b2, b3})

	const clients = 24
	ips := make([]string, clients)
	for i := range ips {
		ips[i] = net.IPv4(127, 0, 1, byte(i+2)).String()
	}
	// served returns the backend id that serves each address, checking
	// that three connections from it agree.
	served := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, ip := range ips {
			c := from(ip)
			for range 3 {
				id, err := get(c, url)
				if err != nil {
					t.Fatalf("GET from %s: %v", ip, err)
				}
				if prev, ok := out[ip]; ok && prev != id {
					t.Fatalf("client %s reached backend %s, then %s", ip, prev, id)
				}
				out[ip] = id
			}
		}
		return out
	}
	before := served()
	used := map[string]int{}
	for _, id := range before {
		used[id]++
	}
	if len(used) != 3 {
		t.Fatalf("%d addresses reached only backends %v of 3", clients, used)
	}

	// A reload's replacement of slot 1 (id 4) takes slot 1's clients.
	b4 := goBackend(t, 4, false)
	b4.Slot = 1
	p.SetBackends([]Backend{b1, b3, b4})
	after := served()
	for ip, id := range before {
		want := id
		if id == "2" {
			want = "4"
		}
		if after[ip] != want {
			t.Errorf("after slot 1 was replaced, client %s reached %s, want %s (was %s)", ip, after[ip], want, id)
		}
	}

	// Slot 1 gone: its clients move, no other does.
	p.SetBackends([]Backend{b1, b3})
	gone := served()
	for ip, id := range before {
		if id != "2" && gone[ip] != id {
			t.Errorf("with slot 1 gone, client %s of backend %s moved to %s", ip, id, gone[ip])
		}
	}
}
