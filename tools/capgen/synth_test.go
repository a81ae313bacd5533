package main

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// synthConn builds a tiny capture of one TCP connection between
// 127.0.0.1:client and 127.0.0.1:server: handshake, data segments of n
// bytes each way (c2s, then s2c), FIN from the client, FIN from the server.
// Frames have correct checksums and a TCP timestamp option.
type synthConn struct {
	t              *testing.T
	client, server uint16
	cseq, sseq     uint32
	ts             time.Time
	pkts           []packet
}

// synthStart is when the tests' synthetic captures start.
var synthStart = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newSynthConn(t *testing.T, client, server uint16, start time.Time) *synthConn {
	return &synthConn{t: t, client: client, server: server, cseq: 1000, sseq: 5000000, ts: start}
}

// frame appends one segment; fromClient says the direction.
func (s *synthConn) frame(fromClient bool, syn, ack, fin bool, payload []byte) {
	s.t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: []byte{127, 0, 0, 1}, DstIP: []byte{127, 0, 0, 1}, Id: uint16(len(s.pkts))}
	tcp := &layers.TCP{SYN: syn, ACK: ack, FIN: fin, PSH: len(payload) > 0, Window: 512,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
		}}
	seq, peer := &s.cseq, &s.sseq
	tcp.SrcPort, tcp.DstPort = layers.TCPPort(s.client), layers.TCPPort(s.server)
	if !fromClient {
		seq, peer = &s.sseq, &s.cseq
		tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
	}
	tcp.Seq = *seq
	if ack {
		tcp.Ack = *peer
	}
	*seq += uint32(len(payload))
	if syn || fin {
		*seq++
	}
	tcp.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		s.t.Fatal(err)
	}
	s.ts = s.ts.Add(10 * time.Microsecond)
	s.pkts = append(s.pkts, packet{ts: s.ts, data: append([]byte(nil), buf.Bytes()...)})
}

// exchange appends a whole connection with segs data segments of n bytes
// each way, and returns the capture.
func (s *synthConn) exchange(segs, n int) []packet {
	s.frame(true, true, false, false, nil)
	s.frame(false, true, true, false, nil)
	s.frame(true, false, true, false, nil)
	for _, fromClient := range []bool{true, false} {
		for i := range segs {
			s.frame(fromClient, false, true, false, synthPayload(n, i))
		}
		s.frame(!fromClient, false, true, false, nil) // ACK
	}
	s.frame(true, false, true, true, nil)
	s.frame(false, false, true, true, nil)
	s.frame(true, false, true, false, nil)
	return s.pkts
}

// synthPayload is n bytes that differ from segment to segment.
func synthPayload(n, i int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte('a' + (i+j)%26)
	}
	return b
}
