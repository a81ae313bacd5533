package layer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// fuzzLinks are the link types FuzzDecode exercises, indexed by the
// fuzzer's selector byte; the last one is unsupported.
var fuzzLinks = []layers.LinkType{
	layers.LinkTypeEthernet, layers.LinkTypeNull, layers.LinkTypeLoop, layers.LinkTypeRaw,
	layers.LinkTypeIPv4, layers.LinkTypeIPv6, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
	layers.LinkTypePPP, layers.LinkTypePPP_HDLC, layers.LinkTypeC_HDLC, layers.LinkTypePPPEthernet,
	LinkTypeNFLog, LinkTypeIPoIB, layers.LinkTypeIEEE80211Radio, layers.LinkTypeIEEE802_11,
	layers.LinkType(147),
}

func fuzzLinkIndex(link layers.LinkType) uint8 {
	for i, l := range fuzzLinks {
		if l == link {
			return uint8(i)
		}
	}
	return uint8(len(fuzzLinks) - 1)
}

// FuzzDecode feeds arbitrary frames of every link type to Decode and
// checks the invariants of its results. The seeds are the hand-built test
// frames and, when the shared corpus is present, the first frames of each
// of its captures.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases() {
		f.Add(fuzzLinkIndex(tc.link), tc.frame, uint16(max(tc.origLen-len(tc.frame), 0)))
	}
	for _, lf := range linkFrames() {
		f.Add(fuzzLinkIndex(lf.link), lf.frame, uint16(0))
	}
	if _, err := os.Stat(corpusDir); err == nil {
		for _, tc := range corpusCases {
			n := 0
			readCapture(f, filepath.Join(corpusDir, tc.path), func(link layers.LinkType, data []byte, origLen int) {
				if n++; n <= 4 {
					f.Add(fuzzLinkIndex(link), append([]byte(nil), data...), uint16(min(max(origLen-len(data), 0), 0xFFFF)))
				}
			})
		}
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, sel uint8, data []byte, extra uint16) {
		link := fuzzLinks[int(sel)%len(fuzzLinks)]
		checkDecode(t, d, link, data, len(data)+int(extra))
	})
}

// checkDecode decodes one frame and checks what must hold for any input.
func checkDecode(t *testing.T, d *Decoder, link layers.LinkType, data []byte, origLen int) {
	t.Helper()
	before := d.Stats.Packets
	s := Segment{PayloadLen: -7}
	r, err := d.Decode(link, data, origLen, &s)
	if d.Stats.Packets != before+1 {
		t.Fatalf("Stats.Packets %d after %d", d.Stats.Packets, before)
	}
	if r.Kind >= numKinds {
		t.Fatalf("Kind %d", r.Kind)
	}
	if r.Offset < 0 || r.Offset > len(data) {
		t.Fatalf("Offset %d outside a %d-byte frame", r.Offset, len(data))
	}
	if r.Tunnels < 0 || r.Tunnels > maxTunnels {
		t.Fatalf("Tunnels %d", r.Tunnels)
	}
	isErr := r.Kind == KindTruncated || r.Kind == KindMalformed || r.Kind == KindUnsupportedLink
	if isErr != (err != nil) {
		t.Fatalf("Kind %v with error %v", r.Kind, err)
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || !(errors.Is(err, ErrTruncated) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupportedLink)) {
			t.Fatalf("error %v is not a layer error", err)
		}
		_ = err.Error()
	}
	if r.Kind != KindTCP {
		if s.PayloadLen != -7 {
			t.Fatalf("Kind %v changed the segment", r.Kind)
		}
		return
	}
	if s.PayloadLen < 0 || len(s.Payload) > s.PayloadLen {
		t.Fatalf("PayloadLen %d with %d payload bytes", s.PayloadLen, len(s.Payload))
	}
	if s.PayloadLen > max(origLen, len(data)) {
		t.Fatalf("PayloadLen %d beyond a %d-byte frame", s.PayloadLen, origLen)
	}
	if len(s.Payload) > 0 {
		off := cap(data) - cap(s.Payload)
		if off < r.Offset+20 || off+len(s.Payload) > len(data) || &data[off] != &s.Payload[0] {
			t.Fatalf("Payload is not the end of the frame's TCP segment")
		}
	}
	if r.Offset+20 > len(data) {
		t.Fatalf("TCP header at %d does not fit in %d bytes", r.Offset, len(data))
	}
	if s.WScale > maxWScale || s.WScale < -1 {
		t.Fatalf("WScale %d", s.WScale)
	}
	if !s.Src.IsValid() || !s.Dst.IsValid() {
		t.Fatalf("invalid endpoints %v %v", s.Src, s.Dst)
	}
}

// TestDecodeHostile runs frames built to stress the bounds checks through
// the invariants FuzzDecode checks, each named for what it attacks.
func TestDecodeHostile(t *testing.T) {
	manyExt := cat(ext6(6), tcpData())
	for range 20 {
		manyExt = cat(ext6(60), manyExt)
	}
	manyLabels := ip4TCP
	for range 20 {
		manyLabels = cat(u32(1<<12|64), manyLabels)
	}
	manyTLVs := []byte{2, 0, 0, 0}
	for range 1000 {
		manyTLVs = cat(manyTLVs, le16(4), le16(1))
	}
	greRoutes := cat(u16(0x4000), u16(0x0800), u32(0))
	for range 40 {
		greRoutes = cat(greRoutes, u16(0x0800), []byte{0, 4}, u32(0))
	}
	tests := []struct {
		name  string
		link  layers.LinkType
		frame []byte
		kind  Kind
	}{
		{"radiotap bitmap chain past header", layers.LinkTypeIEEE80211Radio, cat([]byte{0, 0}, le16(8), le32(0x80000002)), KindMalformed},
		{"radiotap tsft past header", layers.LinkTypeIEEE80211Radio,
			cat([]byte{0, 0}, le16(12), le32(3), zeros(4), dot11Data(0, 1, nil), snap(0x0800), ip4TCP), KindTCP},
		{"radiotap fcs longer than frame", layers.LinkTypeIEEE80211Radio, cat([]byte{0, 0}, le16(9), le32(2), []byte{0x10}, zeros(2)), KindNonIP},
		{"802.11 datapad past frame", layers.LinkTypeIEEE80211Radio, cat([]byte{0, 0}, le16(9), le32(2), []byte{0x20}, dot11Data(8, 1, le16(0))), KindMalformed},
		{"ipv6 extension headers beyond limit", layers.LinkTypeEthernet, ether(0x86DD, ipv6(60, manyExt)), KindMalformed},
		{"mpls labels beyond limit", layers.LinkTypeEthernet, ether(0x8847, manyLabels), KindMalformed},
		{"nflog thousand empty tlvs", LinkTypeNFLog, manyTLVs, KindNonIP},
		{"gre routing entries beyond limit", layers.LinkTypeEthernet, ether(0x0800, ipv4(47, cat(greRoutes, ip4TCP))), KindMalformed},
		{"udp length 7", layers.LinkTypeEthernet, ether(0x0800, ipv4(17, cat(u16(1), u16(4789), u16(7), u16(0), zeros(20)))), KindMalformed},
		{"vxlan header cut", layers.LinkTypeEthernet, ether(0x0800, ipv4(17, udp(1, 4789, zeros(4)))), KindMalformed},
		{"geneve options past datagram", layers.LinkTypeEthernet, ether(0x0800, ipv4(17, udp(1, 6081, cat([]byte{0x3F, 0}, u16(0x6558), zeros(8))))), KindMalformed},
		{"ppp even protocol", layers.LinkTypePPP, cat(u16(0x0020), ip4TCP), KindMalformed},
		{"snap with 802.3 length inside", layers.LinkTypeEthernet, ether(20, cat(snap(0x0010), zeros(12))), KindNonIP},
		{"ipv4 ihl 15 on 20 bytes", layers.LinkTypeRaw, cat([]byte{0x4F}, ip4TCP[1:20]), KindMalformed},
		{"empty frame on every link", layers.LinkTypeEthernet, nil, KindMalformed},
	}
	d := NewDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecode(t, d, tt.link, tt.frame, len(tt.frame))
			var s Segment
			if r, _ := d.Decode(tt.link, tt.frame, 0, &s); r.Kind != tt.kind {
				t.Errorf("Kind = %v at %v, want %v", r.Kind, r.Layer, tt.kind)
			}
		})
	}
	for _, link := range fuzzLinks {
		for n := range 64 {
			checkDecode(t, d, link, zeros(n), n)
			checkDecode(t, d, link, zeros(n), n+1500)
		}
	}
}
