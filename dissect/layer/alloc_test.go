package layer

import (
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// linkFrame is one frame of a given link type.
type linkFrame struct {
	name  string
	link  layers.LinkType
	frame []byte
}

// bulk is a full-sized data segment: 1448 payload bytes with a timestamp
// option, as a Linux sender writes them.
func bulk() []byte {
	return tcpSeg(ACK, []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, zeros(1448))
}

// linkFrames are realistic frames of each link kind, used by the
// allocation tests and the benchmarks.
func linkFrames() []linkFrame {
	ip4 := ipv4(6, bulk())
	ip6 := ipv6(6, bulk())
	ip4syn := ipv4(6, tcpSeg(SYN, synOpts, nil))
	return []linkFrame{
		{"ethernet/ipv4/tcp", layers.LinkTypeEthernet, ether(0x0800, ip4)},
		{"ethernet/ipv4/tcp syn", layers.LinkTypeEthernet, ether(0x0800, ip4syn)},
		{"ethernet/ipv4 options/tcp", layers.LinkTypeEthernet, ether(0x0800, ipv4Opts(6, []byte{0x94, 4, 0, 0}, bulk()))},
		{"ethernet/ipv6/tcp", layers.LinkTypeEthernet, ether(0x86DD, ip6)},
		{"ethernet/ipv6 hop-by-hop/tcp", layers.LinkTypeEthernet, ether(0x86DD, ipv6(0, cat(ext6(6), bulk())))},
		{"ethernet/vlan/vlan/ipv4/tcp", layers.LinkTypeEthernet, ether(0x88A8, cat(u16(1), u16(0x8100), u16(2), u16(0x0800), ip4))},
		{"ethernet/mpls/ipv4/tcp", layers.LinkTypeEthernet, ether(0x8847, cat(u32(100<<12|0x100|64), ip4))},
		{"ethernet/pppoe/ipv6/tcp", layers.LinkTypeEthernet, ether(0x8864, pppoe(cat(u16(0x57), ip6)))},
		{"sll/ipv4/tcp", layers.LinkTypeLinuxSLL, sll(1, 0x0800, 6, ip4)},
		{"sll2/ipv6/tcp", layers.LinkTypeLinuxSLL2, cat(u16(0x86DD), u16(0), u32(2), u16(1), []byte{0, 6}, macA, u16(0), ip6)},
		{"null/ipv4/tcp", layers.LinkTypeNull, cat(le32(2), ip4)},
		{"null/ipv6/tcp", layers.LinkTypeNull, cat(le32(30), ip6)},
		{"loop/ipv4/tcp", layers.LinkTypeLoop, cat(u32(2), ip4)},
		{"raw/ipv4/tcp", layers.LinkTypeRaw, ip4},
		{"ipv6/tcp", layers.LinkTypeIPv6, ip6},
		{"ppp/ipv4/tcp", layers.LinkTypePPP, cat([]byte{0xFF, 0x03}, u16(0x21), ip4)},
		{"chdlc/ipv4/tcp", layers.LinkTypeC_HDLC, cat([]byte{0x0F, 0}, u16(0x0800), ip4)},
		{"nflog/ipv4/tcp", LinkTypeNFLog, nflog(false, 2, ip4)},
		{"ipoib/ipv4/tcp", LinkTypeIPoIB, cat(zeros(40), u16(0x0800), u16(0), ip4)},
		{"radiotap/802.11 qos/ipv4/tcp", layers.LinkTypeIEEE80211Radio,
			cat([]byte{0, 0}, le16(17), le32(3), zeros(8), []byte{0x10}, dot11Data(8, 0x01, le16(0)), snap(0x0800), ip4, u32(0))},
		{"802.11/ipv6/tcp", layers.LinkTypeIEEE802_11, cat(dot11Data(0, 0x02, nil), snap(0x86DD), ip6)},
		{"ipv4/gre/ipv4/tcp", layers.LinkTypeEthernet, ether(0x0800, ipv4(47, cat(u16(0x2000), u16(0x0800), u32(5), ip4)))},
		{"ipv4/udp/vxlan/ethernet/ipv4/tcp", layers.LinkTypeEthernet, ether(0x0800, ipv4(17, udp(1, 4789, vxlan(ether(0x0800, ip4)))))},
		{"ipv4/udp/geneve/ethernet/ipv6/tcp", layers.LinkTypeEthernet,
			ether(0x0800, ipv4(17, udp(1, 6081, cat([]byte{0, 0}, u16(0x6558), u32(0), ether(0x86DD, ip6)))))},
		{"ipv6/ipip/ipv4/tcp", layers.LinkTypeEthernet, ether(0x86DD, ipv6(4, ip4))},
		{"ethernet/ipv4/udp", layers.LinkTypeEthernet, ether(0x0800, ipv4(17, udp(1, 53, zeros(100))))},
		{"ethernet/arp", layers.LinkTypeEthernet, ether(0x0806, zeros(28))},
	}
}

// TestDecodeAllocs proves the common path allocates nothing: Ethernet
// with IPv4 and IPv6, Linux cooked, BSD loopback, and every other link
// kind and tunnel.
func TestDecodeAllocs(t *testing.T) {
	d := NewDecoder()
	var s Segment
	for _, lf := range linkFrames() {
		t.Run(lf.name, func(t *testing.T) {
			n := testing.AllocsPerRun(100, func() {
				_, _ = d.Decode(lf.link, lf.frame, 0, &s)
			})
			if n != 0 {
				t.Errorf("%v allocations per Decode, want 0", n)
			}
		})
	}
}

// TestDecodeAllocsEveryCase checks the odd frames of TestDecode too:
// truncated, malformed, fragments and errors are returned without
// allocating. The one exception is an IPv4 header with bad options, which
// layers.IPv4 reports with a formatted error.
func TestDecodeAllocsEveryCase(t *testing.T) {
	d := NewDecoder()
	var s Segment
	for _, tc := range decodeCases() {
		if tc.name == "ethernet/ipv4 bad option length" {
			continue
		}
		n := testing.AllocsPerRun(10, func() {
			_, _ = d.Decode(tc.link, tc.frame, tc.origLen, &s)
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per Decode, want 0", tc.name, n)
		}
	}
}

// TestCorpusAllocs decodes every frame of the corpus without allocating.
func TestCorpusAllocs(t *testing.T) {
	skipWithoutCorpus(t)
	type frame struct {
		link layers.LinkType
		data []byte
		orig int
	}
	for _, tc := range corpusCases {
		var frames []frame
		readCapture(t, filepath.Join(corpusDir, tc.path), func(link layers.LinkType, data []byte, origLen int) {
			frames = append(frames, frame{link, append([]byte(nil), data...), origLen})
		})
		d := NewDecoder()
		var s Segment
		n := testing.AllocsPerRun(1, func() {
			for _, f := range frames {
				_, _ = d.Decode(f.link, f.data, f.orig, &s)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations decoding %d frames, want 0", tc.path, n, len(frames))
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, lf := range linkFrames() {
		b.Run(lf.name, func(b *testing.B) {
			d := NewDecoder()
			var s Segment
			b.ReportAllocs()
			b.SetBytes(int64(len(lf.frame)))
			for b.Loop() {
				_, _ = d.Decode(lf.link, lf.frame, 0, &s)
			}
		})
	}
}
