package dissect

import (
	"context"
	"os"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// benchFile is the capture BenchmarkRun reads: H2SCOPE_BENCH_FILE, or the
// largest committed test capture.
func benchFile() string {
	if f := os.Getenv("H2SCOPE_BENCH_FILE"); f != "" {
		return f
	}
	return "../testdata/pcaps/http1-keepalive.pcapng"
}

// BenchmarkRun measures read+decode+TCP tracking and reassembly over a
// whole capture; b.SetBytes makes it report MB/s of capture file.
func BenchmarkRun(b *testing.B) {
	f := benchFile()
	st, err := os.Stat(f)
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var pkts uint64
	for b.Loop() {
		s, err := Run(context.Background(), []string{f}, Options{TCP: tcp.Options{OnFinish: func(*tcp.Conn) {}}})
		if err != nil {
			b.Fatal(err)
		}
		pkts = s.Packets
	}
	b.ReportMetric(float64(pkts)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkRunDissect is BenchmarkRun with the application dissectors
// (HTTP/1, HTTP/2 with HPACK, gRPC) and an event sink that counts units.
func BenchmarkRunDissect(b *testing.B) {
	f := benchFile()
	st, err := os.Stat(f)
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var units uint64
	sink := event.SinkFunc(func(*event.Event) { units++ })
	for b.Loop() {
		if _, err := Run(context.Background(), []string{f}, Options{Dissect: true, Sink: sink}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(units)/b.Elapsed().Seconds(), "units/s")
}

// BenchmarkRunDissectQuiet is BenchmarkRunDissect with no event sink, as
// `conns` runs: the dissectors skip building units.
func BenchmarkRunDissectQuiet(b *testing.B) {
	f := benchFile()
	st, err := os.Stat(f)
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(context.Background(), []string{f}, Options{Dissect: true, OnConn: func(*tcp.Conn, *App) {}}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRunCountsTestdata(t *testing.T) {
	var conns int
	st, err := Run(context.Background(), []string{"../testdata/pcaps/http1-nokeepalive.pcapng"},
		Options{TCP: tcp.Options{OnFinish: func(*tcp.Conn) { conns++ }}})
	if err != nil {
		t.Fatal(err)
	}
	// 15 requests, one connection each (truth file); 158 frames (tshark).
	if conns != 15 || st.Packets != 158 || st.Layer.TCP != 158 || len(st.Faults) != 0 {
		t.Errorf("got %d connections, %d packets, %d TCP, faults %v; want 15, 158, 158, none", conns, st.Packets, st.Layer.TCP, st.Faults)
	}
}
