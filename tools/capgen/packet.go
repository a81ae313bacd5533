package main

import (
	"encoding/binary"
	"time"
)

// A packet is one captured Ethernet frame. data is owned by the packet.
type packet struct {
	ts   time.Time
	data []byte
}

// TCP flag bits as they sit in byte 13 of the TCP header.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// tcpInfo locates the TCP segment inside an Ethernet/IPv4 frame.
type tcpInfo struct {
	tcpOff     int // offset of the TCP header in the frame
	payloadOff int // offset of the TCP payload in the frame
	payloadLen int
	src, dst   uint16
	seq, ack   uint32
	flags      uint8
}

// parseTCP decodes the Ethernet, IPv4 and TCP headers of frame b without
// allocating. It reports false for anything but an unfragmented IPv4 TCP
// segment whose headers fit in b. The payload length comes from the IPv4
// total length, not from len(b).
func parseTCP(b []byte) (tcpInfo, bool) {
	var t tcpInfo
	const eth = 14
	if len(b) < eth+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return t, false
	}
	ip := b[eth:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ihl < 20 || ip[9] != 6 || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 ||
		total < ihl+20 || len(ip) < total {
		return t, false
	}
	tcp := ip[ihl:]
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || ihl+doff > total {
		return t, false
	}
	t.tcpOff = eth + ihl
	t.payloadOff = t.tcpOff + doff
	t.payloadLen = total - ihl - doff
	t.src = binary.BigEndian.Uint16(tcp[0:])
	t.dst = binary.BigEndian.Uint16(tcp[2:])
	t.seq = binary.BigEndian.Uint32(tcp[4:])
	t.ack = binary.BigEndian.Uint32(tcp[8:])
	t.flags = tcp[13]
	return t, true
}

// isData reports whether the segment carries payload and no SYN, FIN or RST.
func (t tcpInfo) isData() bool {
	return t.payloadLen > 0 && t.flags&(flagSYN|flagFIN|flagRST) == 0
}

// connKey names a TCP connection in a capture of one server port: its
// client port and how many connections used that port before it. The
// kernel may reuse a client port as soon as a connection closes, so the
// port alone is not enough.
type connKey struct {
	port uint16
	nth  int
}

// connTracker assigns frames to connections: a SYN without ACK from a
// client port starts the port's next connection, unless it repeats the
// sequence number of the port's latest SYN (a SYN retransmission).
type connTracker struct {
	server uint16
	syns   map[uint16]int
	isn    map[uint16]uint32 // the latest SYN's sequence number, per client port
}

func newConnTracker(server uint16) *connTracker {
	return &connTracker{server: server, syns: make(map[uint16]int), isn: make(map[uint16]uint32)}
}

// track returns the connection and direction (0 c2s, 1 s2c) of segment t,
// and false if t is not to or from the server port.
func (c *connTracker) track(t tcpInfo) (k connKey, dir int, ok bool) {
	switch c.server {
	case t.dst:
		k.port = t.src
	case t.src:
		k.port, dir = t.dst, 1
	default:
		return k, 0, false
	}
	if dir == 0 && t.flags&(flagSYN|flagACK) == flagSYN {
		if isn, seen := c.isn[k.port]; !seen || isn != t.seq {
			c.syns[k.port]++
		}
		c.isn[k.port] = t.seq
	}
	k.nth = max(c.syns[k.port]-1, 0)
	return k, dir, true
}
