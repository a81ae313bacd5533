package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden renders commands on committed captures and compares the output
// with testdata/*.golden; run with -update to accept a change.
func TestGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
		lines  int // keep only the first lines of the output; 0 keeps all
	}{
		{"timeline-grpc-unary-stream1.golden", []string{"timeline", "--conn", "0", "--stream", "1", "../../testdata/pcaps/grpc-unary-h2c.pcapng"}, 0},
		{"timeline-http1-conn2.golden", []string{"timeline", "--conn", "2", "../../testdata/pcaps/http1-nokeepalive.pcapng"}, 0},
		{"frames-grpc-streaming.golden", []string{"frames", "--json", "../../testdata/pcaps/grpc-streaming-h2c.pcapng"}, 120},
		{"conns-http1-keepalive.golden", []string{"conns", "../../testdata/pcaps/http1-keepalive.pcapng"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			out, errOut, code := runCLI(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if tt.lines > 0 {
				out = strings.Join(strings.SplitAfter(out, "\n")[:tt.lines], "")
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, path, []byte(out))
				return
			}
			want := string(readFile(t, path))
			if out != want {
				t.Errorf("output differs from %s (go test -update to accept):\n%s", path, firstDiff(out, want))
			}
		})
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n\tgot:  %s\n\twant: %s", i+1, gl, wl)
		}
	}
	return "(no line differs)"
}
