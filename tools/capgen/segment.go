package main

import (
	"encoding/binary"
)

// segment splits every frame whose TCP payload is longer than mss minus
// its TCP options into segments of at most that size, as a NIC doing TCP
// segmentation offload puts a super-segment on the wire.
//
// Loopback advertises GSO, so the kernel hands lo (and the capture)
// super-segments of up to 64 KB whatever TCP_MAXSEG says; splitting them
// after capture gives the segments a network would carry. Each piece
// keeps the frame's timestamp and headers, with the sequence number
// advanced, the IPv4 ID incremented per piece (as Linux GSO does), PSH and
// FIN only on the last piece, CWR only on the first, and the IPv4 and TCP
// checksums recomputed. Frames it does not split get their checksums
// recomputed too: on lo the kernel leaves the TCP checksum partial
// (offloaded), so every frame of the result has valid checksums.
// mss <= 0 returns pkts unchanged.
func segment(pkts []packet, mss int) []packet {
	if mss <= 0 {
		return pkts
	}
	out := make([]packet, 0, len(pkts))
	for _, p := range pkts {
		t, ok := parseTCP(p.data)
		size := mss - (t.payloadOff - t.tcpOff - 20) // payload per segment
		if !ok || size <= 0 {
			out = append(out, p)
			continue
		}
		if t.payloadLen <= size {
			b := append([]byte(nil), p.data...)
			setChecksums(b, t.tcpOff)
			out = append(out, packet{ts: p.ts, data: b})
			continue
		}
		hdr := p.data[:t.payloadOff]
		payload := p.data[t.payloadOff : t.payloadOff+t.payloadLen]
		id := binary.BigEndian.Uint16(hdr[14+4:])
		for off, j := 0, 0; off < len(payload); off, j = off+size, j+1 {
			n := min(size, len(payload)-off)
			b := make([]byte, len(hdr)+n)
			copy(b, hdr)
			copy(b[len(hdr):], payload[off:off+n])
			ip, tcp := b[14:t.tcpOff], b[t.tcpOff:]
			binary.BigEndian.PutUint16(ip[2:], uint16(len(b)-14))
			binary.BigEndian.PutUint16(ip[4:], id+uint16(j))
			binary.BigEndian.PutUint32(tcp[4:], t.seq+uint32(off))
			const psh, cwr = 0x08, 0x80
			if off+n < len(payload) {
				tcp[13] &^= psh | flagFIN
			}
			if off > 0 {
				tcp[13] &^= cwr
			}
			setChecksums(b, t.tcpOff)
			out = append(out, packet{ts: p.ts, data: b})
		}
	}
	return out
}

// setChecksums recomputes the IPv4 header and TCP checksums of an
// Ethernet/IPv4/TCP frame b whose TCP header starts at tcpOff.
func setChecksums(b []byte, tcpOff int) {
	ip := b[14:tcpOff]
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], fold(sum16(0, ip)))
	seg := b[tcpOff : 14+int(binary.BigEndian.Uint16(ip[2:]))]
	seg[16], seg[17] = 0, 0
	s := sum16(0, ip[12:20]) // source and destination addresses
	s += 6 + uint32(len(seg))
	binary.BigEndian.PutUint16(seg[16:], fold(sum16(s, seg)))
}

// sum16 adds b as big-endian 16-bit words to s.
func sum16(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold returns the one's complement of the one's complement sum s.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
