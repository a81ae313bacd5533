package grpc

import (
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

var sinkCount int

func countSink() event.Sink { return event.SinkFunc(func(*event.Event) { sinkCount++ }) }

// TestDataPathAllocs checks that the DATA path allocates nothing per
// message: whole messages, several per delivery, messages split across
// deliveries, and the probing path after a gap.
func TestDataPathAllocs(t *testing.T) {
	c := NewConn(1, countSink(), Options{})
	at := ref(1)
	c.Headers(event.C2S, 1, reqH(1, 1, sayHello).h, false, at)
	one := msg(false, 200)
	many := cat(msg(false, 10), msg(true, 20), msg(false, 0), msg(false, 30))
	tests := []struct {
		name string
		f    func()
	}{
		{"one message", func() { c.Data(event.C2S, 1, one, false, at) }},
		{"four messages", func() { c.Data(event.C2S, 1, many, false, at) }},
		{"split", func() {
			c.Data(event.C2S, 1, one[:3], false, at)
			c.Data(event.C2S, 1, one[3:100], false, at)
			c.Data(event.C2S, 1, one[100:], false, at)
		}},
		{"probe after gap", func() {
			c.Gap(event.C2S, 10, at)
			c.Data(event.C2S, 1, many, false, at)
		}},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tt.name, n)
		}
	}
}

// BenchmarkMessages measures the DATA path: 16 messages of 100 bytes per
// delivery, on one known gRPC stream.
func BenchmarkMessages(b *testing.B) {
	c := NewConn(1, countSink(), Options{})
	at := ref(1)
	c.Headers(event.C2S, 1, reqH(1, 1, sayHello).h, false, at)
	var buf []byte
	for range 16 {
		buf = append(buf, msg(false, 100)...)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		c.Data(event.C2S, 1, buf, false, at)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(16*b.N), "ns/msg")
}

// BenchmarkMessagesSplit delivers one 16 KiB message in 1 KiB pieces.
func BenchmarkMessagesSplit(b *testing.B) {
	c := NewConn(1, countSink(), Options{})
	at := ref(1)
	c.Headers(event.C2S, 1, reqH(1, 1, sayHello).h, false, at)
	m := msg(false, 16<<10-5)
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(m); i += 1 << 10 {
			c.Data(event.C2S, 1, m[i:min(i+1<<10, len(m))], false, at)
		}
	}
}
