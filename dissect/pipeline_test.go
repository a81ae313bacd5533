package dissect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// pipelineCaptures returns the committed captures and those of the shared
// corpus (when present).
func pipelineCaptures(t *testing.T) []string {
	files, _ := filepath.Glob("../testdata/pcaps/*.pcapng")
	filepath.WalkDir("../../shared/corpus", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".pcap") || strings.HasSuffix(path, ".pcapng")) {
			files = append(files, path)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no captures")
	}
	return files
}

// record runs file with every callback recording what it receives, as
// JSON lines: events, segments, finished connections with their
// application summaries, progress, and the Stats.
func record(t *testing.T, file string, sequential bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	put := func(kind string, v ...any) {
		if err := enc.Encode(append([]any{kind}, v...)); err != nil {
			t.Fatal(err)
		}
	}
	keys := tls.NewKeyLog()
	if b, err := os.ReadFile(strings.TrimSuffix(file, ".pcapng") + ".keys"); err == nil {
		keys.Add(b, "keys")
	}
	opts := Options{
		Dissect:    true,
		Keys:       keys,
		Sequential: sequential,
		Sink:       event.SinkFunc(func(e *event.Event) { put("event", e) }),
		OnConn:     func(c *tcp.Conn, app *App) { put("conn", c, app) },
		OnSegment: func(c *tcp.Conn, dir event.Dir, s *layer.Segment, a tcp.Analysis) {
			put("segment", c.ID, dir, s, a)
		},
		Progress: func(read, total int64) { put("progress", read, total) },
	}
	st, err := Run(context.Background(), []string{file}, opts)
	put("stats", st, fmt.Sprint(err))
	return buf.Bytes()
}

// TestPipelineSameAsSequential checks that the pipelined run gives
// byte-identical callbacks to the sequential one on every capture, with
// the default batches and with tiny ones (many batch boundaries, payloads
// larger than a batch buffer).
func TestPipelineSameAsSequential(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	sizes := []struct{ depth, items, buf int }{{pipeDepth, batchItems, batchBufBytes}, {2, 3, 1000}}
	for _, file := range pipelineCaptures(t) {
		want := record(t, file, true)
		for _, sz := range sizes {
			d, i, b := pipeDepth, batchItems, batchBufBytes
			pipeDepth, batchItems, batchBufBytes = sz.depth, sz.items, sz.buf
			got := record(t, file, false)
			pipeDepth, batchItems, batchBufBytes = d, i, b
			if !bytes.Equal(got, want) {
				gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
				for n := range min(len(gl), len(wl)) {
					if !bytes.Equal(gl[n], wl[n]) {
						t.Fatalf("%s, batches %+v: line %d differs:\npipelined:  %.300s\nsequential: %.300s", file, sz, n+1, gl[n], wl[n])
					}
				}
				t.Fatalf("%s, batches %+v: %d lines pipelined, %d sequential", file, sz, len(gl), len(wl))
			}
		}
	}
}

// TestPipelineCancel checks that a cancelled context stops a pipelined run.
func TestPipelineCancel(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, []string{"../testdata/pcaps/http1-keepalive.pcapng"}, Options{Dissect: true})
	if err != context.Canceled {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}
