package analyze

import (
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
)

func detectPacketLoss(in *Input) []Finding {
	return detectOver(&packetLoss{cfg: defaultPacketLoss()}, in)
}

// lossyConn returns a connection of packets packets, retx of its data
// segments retransmitted (fast of them fast).
func lossyConn(id event.ConnID, packets uint64, retx, fast, spurious int) *Conn {
	c := conn(id, "10.0.0.1:40000", "10.0.0.2:443", uint64(id)*1000+1, 0, 5*time.Second)
	c.TCP.Packets = event.Pair{C2S: packets / 2, S2C: packets - packets/2}
	c.DataRetransmissions, c.SpuriousData = retx+spurious, spurious
	c.TCP.FastRetransmissions, c.FastData, c.RecoveryRetransmissions = fast, fast, fast
	return c
}

func TestPacketLossSynthetic(t *testing.T) {
	tests := []struct {
		name  string
		conns []*Conn
		want  *findingWant
	}{
		{
			name:  "timeouts",
			conns: []*Conn{lossyConn(1, 400, 30, 5, 0)},
			want: &findingWant{sev: Warning, cause: CauseTimeouts,
				summary: "30 of 400 packets between 10.0.0.1 and 10.0.0.2:443 were retransmitted (7.5%) on 1 of 1 connections: 25 after a retransmission timeout, 5 fast",
				frames:  []uint64{1001}, metrics: map[string]float64{"retransmissions": 30, "timeout_retransmissions": 25}},
		},
		{
			name:  "fast retransmits, critical share",
			conns: []*Conn{lossyConn(1, 100, 30, 25, 0)},
			want:  &findingWant{sev: Critical, cause: CauseFastRetransmit},
		},
		{
			name:  "spurious ones are not loss",
			conns: []*Conn{lossyConn(1, 400, 5, 0, 40)},
		},
		{
			name: "the capture's loss is info",
			conns: []*Conn{func() *Conn {
				c := lossyConn(1, 400, 0, 0, 0)
				c.TCP.MissedBytes, c.TCP.AckLostSegments = 3808, 3
				return c
			}()},
			want: &findingWant{sev: Info, cause: CauseCaptureLoss, summary: "The capture missed 3808 bytes (3 segments acknowledged but never captured)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detectPacketLoss, tt.conns...), KindPacketLoss, tt.want)
		})
	}
}

// TestRecoveryRetransmissions checks how the Collector tells loss
// recovery from the retransmission timer on the wire: a data
// retransmission that follows a duplicate ACK from the peer within
// recoveryWindow was driven by the receiver's feedback (fast retransmit,
// SACK recovery), whatever Wireshark's narrower fast_retransmission flag
// says; one with no duplicate ACK before it, or only older ones, waited
// for the timer. nginx-curl-loss: a bottleneck queue drops 14 segments
// of a burst, the server retransmits all 14 within a millisecond of the
// client's duplicate ACKs (tshark flags none as fast).
func TestRecoveryRetransmissions(t *testing.T) {
	const id = event.ConnID(7)
	type seg struct {
		at   time.Duration
		dir  event.Dir
		bits tcp.Analysis
		len  int
	}
	tests := []struct {
		name                 string
		segs                 []seg
		retx, recovery, spur int
	}{
		{"after duplicate ACKs, not flagged fast", []seg{
			{0, event.S2C, 0, 1448}, {time.Millisecond, event.C2S, tcp.DuplicateACK, 0},
			{1100 * time.Microsecond, event.S2C, tcp.Retransmission, 1448}, {1200 * time.Microsecond, event.S2C, tcp.Retransmission, 1448},
		}, 2, 2, 0},
		{"flagged fast", []seg{
			{0, event.C2S, tcp.DuplicateACK, 0}, {time.Millisecond, event.S2C, tcp.FastRetransmission, 1448},
		}, 1, 1, 0},
		{"tail loss: no duplicate ACK, the timer fired", []seg{
			{0, event.S2C, 0, 1448}, {210 * time.Millisecond, event.S2C, tcp.Retransmission, 1448},
		}, 1, 0, 0},
		{"duplicate ACKs long before: the retransmission of a retransmission waited for the timer", []seg{
			{0, event.C2S, tcp.DuplicateACK, 0}, {time.Millisecond, event.S2C, tcp.FastRetransmission, 1448},
			{400 * time.Millisecond, event.S2C, tcp.Retransmission, 1448},
		}, 2, 1, 0},
		{"after a window update that did not advance the ACK (SACK blocks)", []seg{
			{0, event.C2S, tcp.WindowUpdate, 0}, {5 * time.Microsecond, event.S2C, tcp.Retransmission, 1448},
		}, 1, 1, 0},
		{"a duplicate ACK 100 ms before, a round trip of microseconds: the timer", []seg{
			{0, event.C2S, tcp.DuplicateACK, 0}, {100 * time.Millisecond, event.S2C, tcp.Retransmission, 1448},
		}, 1, 0, 0},
		{"after a timer retransmission, the resends of its loss episode (nginx-curl-link-flap)", []seg{
			{0, event.S2C, tcp.Retransmission, 1448}, {time.Millisecond, event.C2S, tcp.WindowUpdate, 0},
			{2 * time.Millisecond, event.S2C, tcp.Retransmission, 1448}, {3 * time.Millisecond, event.C2S, tcp.DuplicateACK, 0},
			{4 * time.Millisecond, event.S2C, tcp.Retransmission, 1448},
		}, 3, 0, 0},
		{"a new loss episode after the timer's", []seg{
			{0, event.S2C, tcp.Retransmission, 1448},
			{500 * time.Millisecond, event.C2S, tcp.DuplicateACK, 0}, {501 * time.Millisecond, event.S2C, tcp.Retransmission, 1448},
		}, 2, 1, 0},
		{"a window update that reopens a zero window is flow control, not loss feedback (206_example_b)", []seg{
			{0, event.C2S, tcp.ZeroWindow, 0}, {60 * time.Millisecond, event.C2S, tcp.WindowUpdate, 0},
			{70 * time.Millisecond, event.S2C, tcp.Retransmission, 1400}, {71 * time.Millisecond, event.S2C, tcp.Retransmission, 1400},
		}, 2, 0, 0},
		{"duplicate ACKs of the other direction do not count", []seg{
			{0, event.S2C, tcp.DuplicateACK, 0}, {time.Millisecond, event.S2C, tcp.Retransmission, 1448},
		}, 1, 0, 0},
		{"spurious", []seg{
			{0, event.C2S, tcp.DuplicateACK, 0}, {time.Millisecond, event.S2C, tcp.SpuriousRetransmission, 1448},
		}, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := NewCollector(DefaultConfig())
			for i, s := range tt.segs {
				k.Event(&event.Event{Ref: ref(uint64(i+1), s.at), Conn: id, Dir: s.dir, Proto: event.ProtoTCP, Type: "segment",
					Kind: uint16(layer.ACK), Len: s.len, Bits: uint32(s.bits)})
			}
			c := k.openConn(id)
			if c == nil {
				t.Fatal("no connection")
			}
			if c.DataRetransmissions != tt.retx || c.RecoveryRetransmissions != tt.recovery || c.SpuriousData != tt.spur {
				t.Errorf("retransmissions %d, recovery %d, spurious %d; want %d, %d, %d",
					c.DataRetransmissions, c.RecoveryRetransmissions, c.SpuriousData, tt.retx, tt.recovery, tt.spur)
			}
		})
	}
}

// TestPacketLossCause checks packet_loss's cause on pools told apart by
// the Collector's count of recovery retransmissions, not by Wireshark's
// fast_retransmission flag alone.
func TestPacketLossCause(t *testing.T) {
	tests := []struct {
		name                     string
		retx, flaggedFast, recov int
		want                     string
		timeouts                 float64
	}{
		{"SACK recovery, none flagged fast (nginx-curl-loss)", 14, 0, 14, CauseFastRetransmit, 0},
		{"timer", 14, 0, 2, CauseTimeouts, 12},
		{"flagged fast counts as recovery", 14, 10, 10, CauseFastRetransmit, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := lossyConn(1, 270, tt.retx, tt.flaggedFast, 0)
			c.RecoveryRetransmissions = tt.recov
			checkFindings(t, run(detectPacketLoss, c), KindPacketLoss, &findingWant{sev: Warning, cause: tt.want,
				metrics: map[string]float64{"retransmissions": float64(tt.retx), "timeout_retransmissions": tt.timeouts,
					"recovery_retransmissions": float64(tt.recov), "fast_retransmissions": float64(tt.flaggedFast)}})
		})
	}
}

// TestRecoveryWindowReceiverSide checks that a capture at the receiver,
// a round trip away from the sender, still counts the retransmission a
// round trip after its duplicate ACK as recovery.
func TestRecoveryWindowReceiverSide(t *testing.T) {
	k := NewCollector(DefaultConfig())
	const id = event.ConnID(3)
	evs := []event.Event{
		{Ref: ref(1, 0), Dir: event.C2S, Type: "SYN", Kind: uint16(layer.SYN)},
		{Ref: ref(2, 60*time.Millisecond), Dir: event.S2C, Type: "SYN-ACK", Kind: uint16(layer.SYN | layer.ACK)},
		{Ref: ref(3, time.Second), Dir: event.C2S, Type: "segment", Kind: uint16(layer.ACK), Bits: uint32(tcp.DuplicateACK)},
		{Ref: ref(4, time.Second+61*time.Millisecond), Dir: event.S2C, Type: "segment", Kind: uint16(layer.ACK), Len: 1448, Bits: uint32(tcp.Retransmission)},
	}
	for i := range evs {
		evs[i].Conn, evs[i].Proto = id, event.ProtoTCP
		k.Event(&evs[i])
	}
	if c := k.openConn(id); c == nil || c.RecoveryRetransmissions != 1 {
		t.Errorf("connection %+v: want 1 recovery retransmission", c)
	}
}
