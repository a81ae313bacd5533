package analyze

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tcp"
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

// BenchmarkCollectorHeap measures the heap the analysis keeps per
// finished connection: H2SCOPE_CONNS_FILE (a capture of many short
// connections, as make bench-conns generates; skipped when unset) is
// dissected into a Collector, and once the run is over the live heap
// (after a GC) is divided by the number of connections. keep_conns is
// the Collector as the report uses it today, each connection's summary
// kept for the Input; analysis_only drops them (Collector.DropConns):
// what remains is the detectors' and tables' folded state. Run with
// -benchtime=1x.
func BenchmarkCollectorHeap(b *testing.B) {
	f := os.Getenv("H2SCOPE_CONNS_FILE")
	if f == "" {
		b.Skip("H2SCOPE_CONNS_FILE not set")
	}
	for _, drop := range []bool{false, true} {
		name := "keep_conns"
		if drop {
			name = "analysis_only"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				base := ms.HeapAlloc
				k := NewCollector(DefaultConfig())
				k.DropConns = drop
				var conns int
				opts := dissect.Options{Dissect: true, Sink: k, OnApp: k.App}
				opts.OnConn = func(c *tcp.Conn, app *dissect.App) { conns++; k.Finish(c, app) }
				if _, err := dissect.Run(context.Background(), []string{f}, opts); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&ms)
				live := int64(ms.HeapAlloc) - int64(base)
				b.ReportMetric(float64(live)/float64(max(conns, 1)), "B/conn")
				b.ReportMetric(float64(live)/(1<<20), "MB_live")
				b.ReportMetric(float64(conns), "conns")
				if p := os.Getenv("H2SCOPE_HEAP_PROFILE"); p != "" {
					// What is live: go tool pprof -sample_index=inuse_space.
					if w, err := os.Create(p + "." + name); err == nil {
						pprof.WriteHeapProfile(w)
						w.Close()
					}
				}
				runtime.KeepAlive(k)
			}
		})
	}
}
