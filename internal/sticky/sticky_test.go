package sticky

import (
	"fmt"
	"net/netip"
	"testing"
)

// best is the slot that serves key among slots.
func best(key uint64, slots []int) int {
	b := Candidate{Slot: slots[0]}
	for _, s := range slots[1:] {
		if c := (Candidate{Slot: s}); Better(key, c, b) {
			b = c
		}
	}
	return b.Slot
}

func addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// TestSpread checks that clients spread evenly over the slots: within 10%
// of a fair share over 20,000 addresses.
func TestSpread(t *testing.T) {
	for _, n := range []int{2, 3, 4, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			slots := make([]int, n)
			for i := range slots {
				slots[i] = i
			}
			count := make([]int, n)
			const clients = 20000
			for i := range clients {
				count[best(Key(addr(i)), slots)]++
			}
			fair := clients / n
			for s, c := range count {
				if c < fair*9/10 || c > fair*11/10 {
					t.Errorf("slot %d serves %d clients of %d; a fair share is %d", s, c, clients, fair)
				}
			}
		})
	}
}

// TestMinimalMove checks the rendezvous property: when a slot goes away,
// only its clients move, and when it comes back they return to it.
func TestMinimalMove(t *testing.T) {
	all := []int{0, 1, 2, 3}
	without2 := []int{0, 1, 3}
	moved := 0
	for i := range 5000 {
		k := Key(addr(i))
		before, during := best(k, all), best(k, without2)
		if before != 2 && during != before {
			t.Fatalf("client %v moved from slot %d to %d when slot 2 left", addr(i), before, during)
		}
		if before == 2 {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no client was on slot 2")
	}
}

func TestSameSlotNewerWins(t *testing.T) {
	k := Key(netip.MustParseAddr("127.0.0.2"))
	if !Better(k, Candidate{Slot: 1, ID: 9}, Candidate{Slot: 1, ID: 4}) || Better(k, Candidate{Slot: 1, ID: 4}, Candidate{Slot: 1, ID: 9}) {
		t.Fatal("of two processes of one slot, the newer must take its clients")
	}
}

func TestMappedAddressesHashAlike(t *testing.T) {
	if Key(netip.MustParseAddr("127.0.0.2")) != Key(netip.MustParseAddr("::ffff:127.0.0.2")) {
		t.Fatal("127.0.0.2 and ::ffff:127.0.0.2 hash differently")
	}
	if Key(netip.Addr{}) != 0 {
		t.Fatal("an invalid address must hash to 0")
	}
}
