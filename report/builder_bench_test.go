package report

import (
	"net/netip"
	"testing"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// synthSYN is connection i of a SYN flood: one SYN from a spoofed
// address, never answered.
func synthSYN(i int) *analyze.Conn {
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC).Add(time.Duration(i) * time.Microsecond)
	return &analyze.Conn{
		TCP: &tcp.Summary{ID: event.ConnID(i), Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000)),
			Server: netip.MustParseAddrPort("10.0.0.2:80"), FirstFrame: uint64(i + 1), LastFrame: uint64(i + 1),
			FirstTS: t0, LastTS: t0, Packets: event.Pair{C2S: 1}, Bytes: event.Pair{C2S: 60}, SYNs: 1,
			ConnState: "S0", History: "S", Close: tcp.CloseOpen},
		SYNs: []event.Ref{{Frame: uint64(i + 1), TS: t0}},
	}
}

// benchmarkBuilder measures a Builder's Add and Done per connection.
func benchmarkBuilder(b *testing.B, mk func(int) *analyze.Conn) {
	const pool = 4096
	conns := make([]*analyze.Conn, pool)
	for i := range conns {
		conns[i] = mk(i)
	}
	bl := NewBuilder(Redaction{})
	bl.SpillDir = b.TempDir()
	defer bl.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := conns[i%pool]
		c.TCP.ID = event.ConnID(i)
		bl.Add(c)
		bl.Done(c)
	}
}

func BenchmarkBuilderSYN(b *testing.B)   { benchmarkBuilder(b, synthSYN) }
func BenchmarkBuilderHTTP1(b *testing.B) { benchmarkBuilder(b, synthConn) }
