package sticky

import (
	"net"
	"net/netip"
)

// A Candidate is a process that can take a client: the slot it serves and
// its process id (tend's run id, which grows with each process started).
type Candidate struct {
	Slot int
	ID   int
}

// Key hashes a client's IP address (the port changes with every
// connection, so it is left out). An IPv4 address and its IPv4-mapped IPv6
// form hash alike. An invalid address (a unix socket's peer) hashes to 0:
// all such clients share one slot.
func Key(ip netip.Addr) uint64 {
	if !ip.IsValid() {
		return 0
	}
	b := ip.Unmap().As16()
	// FNV-1a over the 16 bytes, then a mix: FNV alone spreads addresses
	// that differ in their last byte poorly over a few slots.
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix(h)
}

// KeyOf is Key of a connection's remote address; any other address hashes
// to 0.
func KeyOf(a net.Addr) uint64 {
	if t, ok := a.(*net.TCPAddr); ok {
		return Key(t.AddrPort().Addr())
	}
	return 0
}

// Score is slot's weight for the client with key: the slot with the
// highest weight serves the client.
func Score(key uint64, slot int) uint64 {
	return mix(key ^ mix(uint64(slot)+0x9e3779b97f4a7c15))
}

// Better reports whether a should serve the client with key rather than
// b: a's slot scores higher, or a and b serve the same slot and a is the
// newer process (a reload's replacement, ready before the old one leaves).
func Better(key uint64, a, b Candidate) bool {
	if a.Slot == b.Slot {
		return a.ID > b.ID
	}
	sa, sb := Score(key, a.Slot), Score(key, b.Slot)
	if sa != sb {
		return sa > sb
	}
	return a.Slot < b.Slot // a collision of 64-bit scores: any fixed order
}

// mix is the finalizer of SplitMix64: every input bit affects every output
// bit, so close inputs (slot 0 and 1, addresses 127.0.0.2 and .3) score
// independently.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
