package http2

import (
	"math/rand"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// BenchmarkDATA measures the DATA path: frames of 1000 bytes, whole and
// split across 1448-byte segments as TCP delivers them.
func BenchmarkDATA(b *testing.B) {
	for _, seg := range []int{0, 1448} {
		name := "whole"
		if seg > 0 {
			name = "segments"
		}
		b.Run(name, func(b *testing.B) {
			const frames = 256
			c, run, _ := dataConn(b, frames, 1000)
			at := ref(3)
			b.SetBytes(int64(len(run)))
			b.ReportAllocs()
			for b.Loop() {
				if seg == 0 {
					c.Data(event.S2C, run, at)
					continue
				}
				for i := 0; i < len(run); i += seg {
					c.Data(event.S2C, run[i:min(i+seg, len(run))], at)
				}
			}
			b.ReportMetric(float64(frames)*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkHEADERS measures header blocks: gRPC-like requests whose
// fields mostly refer to the dynamic table, decoded and recorded.
func BenchmarkHEADERS(b *testing.B) {
	const calls = 256
	w := newWire(b, true).settings()
	start := w.buf.Len()
	for i := range calls {
		w.headers(uint32(2*i+1), true, ":method", "POST", ":scheme", "http", ":authority", "svc.local:50051",
			":path", "/pkg.Svc/Method", "content-type", "application/grpc", "te", "trailers", "grpc-timeout", "1S",
			"user-agent", "grpc-go/1.60.0")
	}
	in := w.bytes()
	b.SetBytes(int64(len(in) - start))
	b.ReportAllocs()
	for b.Loop() {
		c := NewConn(1, event.SinkFunc(func(*event.Event) {}), Options{})
		c.Data(event.C2S, in, ref(1))
	}
	b.ReportMetric(float64(calls)*float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
}

// BenchmarkResyncJunk measures the search for a frame boundary through
// bytes that hold none (random data in 1448-byte segments), the worst
// case of a capture started mid-connection.
func BenchmarkResyncJunk(b *testing.B) {
	buf := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(buf)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		c := NewConn(1, nil, Options{MidConnection: true})
		for i := 0; i < len(buf); i += 1448 {
			c.Data(event.S2C, buf[i:min(i+1448, len(buf))], ref(uint64(i)))
		}
	}
}
