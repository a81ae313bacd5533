package tcp

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
)

// checker is a StreamHandler that verifies the contract: nothing after
// Close, no empty data, no non-positive gap.
type checker struct {
	t      *testing.T
	closed [2]bool
	total  [2]int
}

func (c *checker) Data(d event.Dir, b []byte, at event.Ref) {
	if c.closed[d] || len(b) == 0 {
		c.t.Fatalf("data %d bytes on %s after close=%v", len(b), d, c.closed[d])
	}
	c.total[d] += len(b)
}
func (c *checker) Gap(d event.Dir, n int, at event.Ref) {
	if c.closed[d] || n <= 0 {
		c.t.Fatalf("gap %d on %s after close=%v", n, d, c.closed[d])
	}
	c.total[d] += n
}
func (c *checker) Close(d event.Dir, reset bool, at event.Ref) {
	if c.closed[d] {
		c.t.Fatalf("second close on %s", d)
	}
	c.closed[d] = true
}

// FuzzTracker feeds random segment sequences between a few endpoints and
// checks the handler contract and that every connection is closed at the end.
func FuzzTracker(f *testing.F) {
	f.Add([]byte("\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x12\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00\x01\x00\x05"))
	f.Add(make([]byte, 120))
	f.Fuzz(func(t *testing.T, in []byte) {
		var checkers []*checker
		tr := NewTracker(Options{
			MaxBufferPerConn: 64, MaxBufferTotal: 128, MaxConns: 3,
			ReuseConns: len(in)%2 == 0, // finished Conns reused, or not
			NewHandler: func(c *Conn) StreamHandler {
				ch := &checker{t: t}
				checkers = append(checkers, ch)
				return ch
			},
		})
		ports := []uint16{80, 1000, 1001}
		payload := make([]byte, 256)
		for i := range payload {
			payload[i] = byte(i)
		}
		ts := time.Unix(1e9, 0)
		for frame := uint64(1); len(in) >= 12; frame++ {
			b := in[:12]
			in = in[12:]
			s := layer.Segment{
				Ref:    event.Ref{Frame: frame, TS: ts.Add(time.Duration(b[11]) * time.Second)},
				Src:    netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), ports[int(b[0])%3]),
				Dst:    netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), ports[int(b[0]>>2)%3]),
				Flags:  layer.Flags(b[1]) & 0x1ff,
				Seq:    binary.BigEndian.Uint32(b[2:]),
				Ack:    binary.BigEndian.Uint32(b[6:]),
				Win:    uint16(b[10]) << 4,
				WScale: int8(b[11]%20) - 5,
			}
			n := int(b[10])
			s.PayloadLen = n
			s.Payload = payload[:n-int(b[11]%2)*n/2]
			ts = s.Ref.TS
			tr.Add(&s)
		}
		tr.Flush()
		for i, ch := range checkers {
			if !ch.closed[0] || !ch.closed[1] {
				t.Fatalf("connection %d not closed at the end: %v", i, ch.closed)
			}
		}
		if tr.Active() != 0 || tr.r.used != 0 {
			t.Fatalf("after flush: %d active, %d bytes buffered", tr.Active(), tr.r.used)
		}
	})
}

// BenchmarkTrackerInOrder measures the common path: an established
// connection carrying full-size data segments in order.
func BenchmarkTrackerInOrder(b *testing.B) {
	tr := NewTracker(Options{})
	payload := make([]byte, 1448)
	segs := []layer.Segment{toSegment(handshake[0], 1), toSegment(handshake[1], 2), toSegment(handshake[2], 3)}
	for i := range segs {
		tr.Add(&segs[i])
	}
	data := toSegment(seg{dir: c2s, flags: psh, seq: 1, ack: 1}, 4)
	data.Payload, data.PayloadLen = payload, len(payload)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		data.Ref.Frame++
		data.Ref.TS = data.Ref.TS.Add(time.Microsecond)
		tr.Add(&data)
		data.Seq += uint32(len(payload))
	}
}

func TestInOrderPathAllocatesNothing(t *testing.T) {
	tr := NewTracker(Options{})
	segs := []layer.Segment{toSegment(handshake[0], 1), toSegment(handshake[1], 2), toSegment(handshake[2], 3)}
	for i := range segs {
		tr.Add(&segs[i])
	}
	data := toSegment(seg{dir: c2s, flags: psh, seq: 1, ack: 1}, 4)
	data.Payload = make([]byte, 1000)
	data.PayloadLen = 1000
	ackSeg := toSegment(seg{dir: s2c, flags: ack, seq: 1, ack: 1}, 5)
	allocs := testing.AllocsPerRun(1000, func() {
		data.Ref.Frame += 2
		tr.Add(&data)
		data.Seq += 1000
		ackSeg.Ack = data.Seq
		ackSeg.Ref.Frame = data.Ref.Frame + 1
		tr.Add(&ackSeg)
	})
	if allocs != 0 {
		t.Errorf("in-order data and ACK: %.1f allocations per pair, want 0", allocs)
	}
}
