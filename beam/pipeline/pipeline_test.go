package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/batch"
	"github.com/h2scope/h2scope/dissect"
)

// pcaps is the project's testdata captures, seen from here.
const pcaps = "../../testdata/pcaps"

func TestMain(m *testing.M) {
	beam.Init()
	os.Exit(m.Run())
}

// runPrism runs the pipeline in-process on Prism and returns the output.
func runPrism(t *testing.T, patterns []string, set Settings) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "beam.ndjson")
	p, err := Build(Job{Patterns: patterns, Out: out, Settings: set})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prism.Execute(context.Background(), p); err != nil {
		t.Fatalf("prism: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(PartsDir(out)); err != nil {
		t.Errorf("no part files: %v", err)
	}
	if err := RemoveParts(context.Background(), out); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(PartsDir(out)); err == nil {
		t.Errorf("%s left after RemoveParts", PartsDir(out))
	}
	return b
}

// runBatch runs h2scope batch's engine over the same patterns.
func runBatch(t *testing.T, patterns []string, version string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "batch.ndjson")
	cfg := analyze.DefaultConfig()
	opts := batch.Options{Workers: 2, Version: version, Config: &cfg, Dissect: dissect.Options{Dissect: true}}
	if _, err := batch.Run(context.Background(), patterns, out, io.Discard, opts); err != nil {
		t.Fatalf("batch: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rotated writes the packets of a testdata capture as a tcpdump -C
// rotation of two pcap files, dir/stream.pcap and dir/stream.pcap1, cut
// in the middle of its connections, and returns dir.
func rotated(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rot")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(pcaps, "grpc-streaming-h2c.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var all [][]byte
	var infos []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data)
		infos = append(infos, ci)
	}
	half := len(all) / 2
	for i, name := range []string{"stream.pcap", "stream.pcap1"} {
		w, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		pw := pcapgo.NewWriterNanos(w)
		if err := pw.WriteFileHeader(65535, r.LinkType()); err != nil {
			t.Fatal(err)
		}
		lo, hi := 0, half
		if i == 1 {
			lo, hi = half, len(all)
		}
		for j := lo; j < hi; j++ {
			if err := pw.WritePacket(infos[j], all[j]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPrismEqualsBatch runs the pipeline in-process on Prism over the
// testdata captures (key logs beside some), a rotation of two files and a
// missing path, and checks that its output is h2scope batch's, byte for
// byte.
func TestPrismEqualsBatch(t *testing.T) {
	patterns := []string{pcaps, rotated(t), filepath.Join(t.TempDir(), "missing.pcap")}
	want := runBatch(t, patterns, "test")
	got := runPrism(t, patterns, Settings{Version: "test"})
	if !bytes.Equal(got, want) {
		t.Fatalf("Prism's output differs from batch's:\n%s", firstDiff(got, want))
	}
	n := bytes.Count(got, []byte("\n"))
	if n < 30 {
		t.Errorf("%d lines, want a line per testdata capture", n)
	}
	if !bytes.Contains(got, []byte(`stream.pcap","`)) || !bytes.Contains(got, []byte(`stream.pcap1"]`)) {
		t.Errorf("the two rotated files are not one capture")
	}
	if !bytes.Contains(got, []byte(`missing.pcap: no such file or directory"}`)) {
		t.Errorf("no error record for the missing path")
	}
	if n := bytes.Count(got, []byte(`"]}],"error":"`)); n != 1 {
		t.Errorf("%d error records, want 1 (the missing path)", n)
	}
}

// TestShardedEqualsUnsharded checks that each capture split across 3
// workers (each reading the whole capture and analysing a third of its
// connections, the partials combined per capture) gives h2scope batch's
// lines, byte for byte, with every connection in the reports and with
// none, and that splitting within a worker does too.
func TestShardedEqualsUnsharded(t *testing.T) {
	patterns := []string{pcaps, filepath.Join(pcaps, "attacks"), rotated(t), filepath.Join(t.TempDir(), "missing.pcap")}
	for _, sel := range []string{"all", "none"} {
		want := runBatchWith(t, patterns, batch.Options{Connections: sel})
		got := runPrism(t, patterns, Settings{Version: "test", Shards: 3, Connections: sel})
		if !bytes.Equal(got, want) {
			t.Fatalf("connections %s: --shards 3 differs from batch:\n%s", sel, firstDiff(got, want))
		}
		if n := bytes.Count(got, []byte(`{"id":`)); sel == "all" && n < 100 {
			t.Errorf("%d connections in all: the shards were hardly split", n)
		}
	}
	// Split by size alone: every capture of 64 KiB or more.
	want := runBatchWith(t, []string{pcaps}, batch.Options{})
	got := runPrism(t, []string{pcaps}, Settings{Version: "test", SplitBytes: 64 << 10, WorkerShards: 4})
	if !bytes.Equal(got, want) {
		t.Fatalf("split by size: differs from batch:\n%s", firstDiff(got, want))
	}
}

// runBatchWith runs h2scope batch's engine with opts (version "test").
func runBatchWith(t *testing.T, patterns []string, opts batch.Options) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "batch.ndjson")
	cfg := analyze.DefaultConfig()
	opts.Workers, opts.Version, opts.Config, opts.Dissect = 2, "test", &cfg, dissect.Options{Dissect: true}
	if _, err := batch.Run(context.Background(), patterns, out, io.Discard, opts); err != nil {
		t.Fatalf("batch: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSettingsConfig checks that the thresholds reach the workers whole.
func TestSettingsConfig(t *testing.T) {
	cfg := analyze.DefaultConfig()
	s, err := EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set := Settings{Config: s}
	o, err := set.options()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := EncodeConfig(*o.Config)
	if a != s {
		t.Errorf("config after a round trip:\n%s\nwant\n%s", a, s)
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, clip(a), clip(b))
		}
	}
	return "(same lines)"
}

func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + "..."
	}
	return s
}
