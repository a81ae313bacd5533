package analyze

import (
	"fmt"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

func detectProtocolAbuse(in *Input) []Finding {
	return detectOver(&protocolAbuse{cfg: defaultProtocolAbuse()}, in)
}

// h2Frames returns an HTTP/2 connection whose client opened streams
// streams and sent the frames counted.
func h2Frames(streams int, frames map[string]uint64) *Conn {
	c := conn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 2*time.Second)
	c.App = &dissect.App{HTTP2: &http2.Summary{Streams: streams, Frames: http2.FrameCounts{C2S: frames, S2C: map[string]uint64{}}}}
	for i := range streams {
		c.Records.Streams = append(c.Records.Streams, http2.Stream{ID: uint32(2*i + 1), Initiator: "client"})
	}
	return c
}

// s0 returns count lone unanswered SYNs to 10.0.0.2:80 from sources
// sources (round robin).
func s0(count, sources int) []*Conn {
	var cs []*Conn
	for i := range count {
		src := fmt.Sprintf("23.%d.%d.%d:%d", i%sources/65536, i%sources/256%256, i%sources%256, 1024+i%60000)
		c := conn(event.ConnID(i), src, "10.0.0.2:80", uint64(i+1), time.Duration(i)*time.Millisecond, time.Duration(i)*time.Millisecond)
		c.TCP.SYNACKs, c.TCP.Packets = 0, event.Pair{C2S: 1}
		c.SYNACKs = nil
		cs = append(cs, c)
	}
	return cs
}

func TestProtocolAbuseSynthetic(t *testing.T) {
	tests := []struct {
		name  string
		conns []*Conn
		want  *findingWant
	}{
		{
			name:  "PING flood",
			conns: []*Conn{h2Frames(2, map[string]uint64{"PING": 5000, "HEADERS": 2})},
			want: &findingWant{sev: Critical, cause: CausePingFlood, summary: "Client 10.0.0.1 sent 5000 PING frames on connection 1 to 10.0.0.2:443",
				metrics: map[string]float64{"frames": 5000, "per_stream": 2500}, remedyHas: "CVE-2019-9512"},
		},
		{
			name:  "CONTINUATION flood",
			conns: []*Conn{h2Frames(1, map[string]uint64{"CONTINUATION": 20000})},
			want:  &findingWant{sev: Critical, cause: CauseContinuationFlood},
		},
		{
			name:  "many WINDOW_UPDATEs for many streams",
			conns: []*Conn{h2Frames(500, map[string]uint64{"WINDOW_UPDATE": 5000})},
		},
		{
			name: "HPACK bomb",
			conns: []*Conn{func() *Conn {
				c := h2Frames(3, map[string]uint64{"HEADERS": 3})
				c.App.HTTP2.Anomalies = map[string]int{"header_list_too_large": 3}
				return c
			}()},
			want: &findingWant{sev: Critical, cause: CauseHPACKBomb},
		},
		{
			name:  "SYN flood",
			conns: s0(1500, 1500),
			want: &findingWant{sev: Critical, cause: CauseSYNFlood, summary: "1500 SYNs to 10.0.0.2:80 from about 15",
				frames: []uint64{1}, metrics: map[string]float64{"syns": 1500}},
		},
		{
			name:  "one client's unanswered SYNs",
			conns: s0(1500, 3),
		},
		{
			// Captured at a server that answers every SYN (SYN cookies):
			// half-open handshakes from spoofed sources.
			name: "SYN flood answered by SYN-ACKs",
			conns: func() []*Conn {
				cs := s0(1500, 1500)
				for _, c := range cs[:1200] {
					c.TCP.SYNACKs, c.TCP.Packets.S2C = 1, 1
				}
				return cs
			}(),
			want: &findingWant{sev: Critical, cause: CauseSYNFlood,
				summary: "1500 SYNs to 10.0.0.2:80 from about 15", metrics: map[string]float64{"syns": 1500, "half_open": 1200}},
		},
		{
			// Completed handshakes are no flood, however many.
			name: "SYNs answered and acknowledged",
			conns: func() []*Conn {
				cs := s0(1500, 1500)
				for _, c := range cs {
					c.TCP.SYNACKs, c.TCP.Packets = 1, event.Pair{C2S: 2, S2C: 1}
				}
				return cs
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detectProtocolAbuse, tt.conns...), KindProtocolAbuse, tt.want)
		})
	}
}
