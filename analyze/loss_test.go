package analyze

import (
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
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
	c.TCP.FastRetransmissions = fast
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
