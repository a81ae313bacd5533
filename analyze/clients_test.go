package analyze

import (
	"net/netip"
	"testing"
)

// TestClientHashSpreads checks that the clientSet bitmap tells apart
// addresses that differ only in their last bytes, as a flood's spoofed
// sources do: 65,536 IPv4 addresses of one /16 (and as many IPv6 of one
// /112) land in about as many bits as random positions would (63,500 of
// the bitmap's 1,048,576), not in a few.
func TestClientHashSpreads(t *testing.T) {
	for _, base := range []netip.Addr{netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("2001:db8::")} {
		b := base.As16()
		bits := map[uint64]bool{}
		for i := range 1 << 16 {
			b[14], b[15] = byte(i>>8), byte(i)
			a := netip.AddrFrom16(b)
			if base.Is4() {
				a = a.Unmap()
			}
			bits[clientHash(a)%clientSetBits] = true
		}
		if len(bits) < 60000 {
			t.Errorf("%s, its last two bytes varied: %d distinct bits for 65,536 addresses, want about 63,500", base, len(bits))
		}
	}
}
