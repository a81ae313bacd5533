package analyze

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/h2scope/h2scope/dissect"
)

// BenchmarkAnalyze measures what `h2scope analyze` does before rendering:
// reading, dissection, the Collector and every detector, over
// H2SCOPE_BENCH_FILE (default: the largest committed gRPC capture). It
// reports packets per second and allocations per packet.
func BenchmarkAnalyze(b *testing.B) {
	f := os.Getenv("H2SCOPE_BENCH_FILE")
	if f == "" {
		f = pcaps + "/grpc-streaming-h2c.pcapng"
	}
	st, err := os.Stat(f)
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var packets uint64
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	for b.Loop() {
		_, in, err := Stream(context.Background(), []string{f}, dissect.Options{}, DefaultConfig(), nil)
		if err != nil {
			b.Fatal(err)
		}
		packets = in.Stats.Packets
	}
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Mallocs-mallocs)/float64(b.N)/float64(max(packets, 1)), "allocs/packet")
	b.ReportMetric(float64(packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(packets), "packets/op")
}
