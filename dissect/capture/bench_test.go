package capture

import (
	"io"
	"testing"
)

// BenchmarkNext reads the largest corpus pcap (sv/mime-stream-depth, 1.9
// MB, 2500 frames) and pcapng (ja4/http2-with-cookies, 2.0 MB, 1607 frames)
// from first to last packet, the pcap also through gzip and zstd. One
// operation is a whole file, Open to Close; MB/s counts the uncompressed
// file's bytes.
func BenchmarkNext(b *testing.B) {
	pcapPath := corpusPath(b, "sv/mime-stream-depth/input.pcap")
	ngPath := corpusPath(b, "ja4/http2-with-cookies.pcapng")
	raw := mustRead(b, pcapPath)
	gz, zs := gzipped(raw), zstded(raw)
	for _, c := range []struct {
		name, path string
		size       int
	}{
		{"pcap", pcapPath, len(raw)},
		{"pcapng", ngPath, len(mustRead(b, ngPath))},
		{"pcap.gz", writeTemp(b, "input.pcap.gz", gz), len(raw)},
		{"pcap.zst", writeTemp(b, "input.pcap.zst", zs), len(raw)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(c.size))
			b.ReportAllocs()
			packets := 0
			for b.Loop() {
				r, err := Open([]string{c.path}, Options{})
				if err != nil {
					b.Fatal(err)
				}
				for {
					_, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					packets++
				}
				r.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets), "ns/packet")
		})
	}
}
