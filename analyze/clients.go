package analyze

import (
	"encoding/binary"
	"net/netip"
)

// clientSet holds the clients that own a key of their own (not folded
// into anyClient) in one of the per-pool maps that fold new clients past
// a bound (the pool table's, packet_loss's, syn_retransmit's pairs,
// goaway's starts). A connection whose client is in none of them (a SYN
// flood's spoofed sources, long past the bound) then skips the lookup
// of its own key in each map that is full: it could not be there. The
// set is bounded by those maps; a bitmap of the clients' hashes in
// front of it answers most "no" without touching it.
type clientSet struct {
	bits []uint64
	m    map[netip.Addr]struct{}
	// off, after a merge, makes every client known: the maps were
	// merged, not the set.
	off bool
}

// clientSetBits is the size of a clientSet's bitmap, in bits (128 KB).
const clientSetBits = 1 << 20

// clientHash returns a hash of a's address for the bitmap, every bit of
// it depending on every bit of the address (splitmix64's finalizer): the
// bitmap takes its low bits, which a bare multiplication leaves
// depending on the address's first bytes only (an IPv4 address's last
// two octets did not reach them, so that a flood's spoofed sources all
// passed the bitmap to the map).
func clientHash(a netip.Addr) uint64 {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return h ^ h>>31
}

// add records that client owns a key of its own in some map.
func (s *clientSet) add(client netip.Addr) {
	if s.bits == nil {
		s.bits = make([]uint64, clientSetBits/64)
		s.m = map[netip.Addr]struct{}{}
	}
	h := clientHash(client) % clientSetBits
	s.bits[h/64] |= 1 << (h % 64)
	s.m[client] = struct{}{}
}

// known reports whether client may own a key of its own in some map.
func (s *clientSet) known(client netip.Addr) bool {
	if s.off {
		return true
	}
	if s.bits == nil {
		return false
	}
	if h := clientHash(client) % clientSetBits; s.bits[h/64]&(1<<(h%64)) == 0 {
		return false
	}
	_, ok := s.m[client]
	return ok
}
