package layer

import (
	"encoding/binary"
)

// Frame builders for tests. Every builder returns a new slice.

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func le16(v uint16) []byte {
	return binary.LittleEndian.AppendUint16(nil, v)
}
func le32(v uint32) []byte {
	return binary.LittleEndian.AppendUint32(nil, v)
}

func zeros(n int) []byte { return make([]byte, n) }

// payload10 is the 10-byte TCP payload most test frames carry.
var payload10 = []byte("0123456789")

// Standard test addresses.
var (
	v4a = []byte{10, 0, 0, 1}
	v4b = []byte{10, 0, 0, 2}
	v6a = []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	v6b = []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
)

// tcpSeg returns a TCP header from port 40000 to 80, seq 1000, ack 2000,
// window 65535, with the given flags and options (padded to 4 bytes), then
// the payload.
func tcpSeg(flags Flags, opts []byte, payload []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	h := cat(u16(40000), u16(80), u32(1000), u32(2000),
		u16(uint16((20+len(opts))/4)<<12|uint16(flags)), u16(65535), u16(0), u16(0), opts)
	return cat(h, payload)
}

// synOpts are the options of a typical SYN: MSS 1460, SACK permitted,
// timestamps, NOP, window scale 7.
var synOpts = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}

// tcpData is a PSH/ACK segment with payload10.
func tcpData() []byte { return tcpSeg(PSH|ACK, nil, payload10) }

// ipv4 returns an IPv4 header (DF, TTL 64, 10.0.0.1 > 10.0.0.2) carrying
// payload with the given protocol, with a correct total length.
func ipv4(proto byte, payload []byte) []byte {
	return ipv4Opts(proto, nil, payload)
}

// ipv4Opts is ipv4 with header options (a multiple of 4 bytes).
func ipv4Opts(proto byte, opts, payload []byte) []byte {
	hl := 20 + len(opts)
	h := cat([]byte{0x40 | byte(hl/4), 0}, u16(uint16(hl+len(payload))), u16(1), u16(0x4000),
		[]byte{64, proto}, u16(0), v4a, v4b, opts)
	return cat(h, payload)
}

// withTotal overwrites an IPv4 packet's total length.
func withTotal(p []byte, total uint16) []byte {
	binary.BigEndian.PutUint16(p[2:], total)
	return p
}

// withFrag overwrites an IPv4 packet's flags and fragment offset field.
func withFrag(p []byte, v uint16) []byte {
	binary.BigEndian.PutUint16(p[6:], v)
	return p
}

// ipv6 returns an IPv6 header (2001:db8::1 > 2001:db8::2) carrying payload
// with the given next header.
func ipv6(next byte, payload []byte) []byte {
	h := cat(u32(0x60000000), u16(uint16(len(payload))), []byte{next, 64}, v6a, v6b)
	return cat(h, payload)
}

// ext6 returns a generic IPv6 extension header (hop-by-hop, routing,
// destination options) of 8 bytes.
func ext6(next byte) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} }

// frag6 returns an IPv6 fragment header with the given offset field
// (offset<<3 | M).
func frag6(next byte, offM uint16) []byte {
	return cat([]byte{next, 0}, u16(offM), u32(0x1234))
}

// ah returns an authentication header of 24 bytes (payload length 4).
func ah(next byte) []byte { return cat([]byte{next, 4, 0, 0}, u32(0x100), u32(1), zeros(12)) }

var (
	macA = []byte{0x02, 0, 0, 0, 0, 1}
	macB = []byte{0x02, 0, 0, 0, 0, 2}
)

// ether returns an Ethernet II frame.
func ether(et uint16, payload []byte) []byte { return cat(macB, macA, u16(et), payload) }

// tag returns an 802.1Q-style tag: TPID, TCI.
func tag(tpid, vid uint16) []byte { return cat(u16(tpid), u16(vid)) }

// snap returns an LLC/SNAP header (RFC 1042) for an EtherType.
func snap(et uint16) []byte { return cat([]byte{0xAA, 0xAA, 0x03, 0, 0, 0}, u16(et)) }

// udp returns a UDP header with a correct length.
func udp(sport, dport uint16, payload []byte) []byte {
	return cat(u16(sport), u16(dport), u16(uint16(8+len(payload))), u16(0), payload)
}

// dot11Data returns an 802.11 data frame header of the given subtype and
// flags (byte 1 of frame control), with addresses and sequence control,
// then extra (Address 4, QoS control, HT control, as the caller wants).
func dot11Data(subtype, flags byte, extra []byte) []byte {
	return cat([]byte{0x08 | subtype<<4, flags}, u16(0), macA, macB, macA, le16(0x1230), extra)
}
