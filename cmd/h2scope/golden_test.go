package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/internal/golden"
)

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
			golden.Check(t, filepath.Join("testdata", tt.golden), []byte(out))
		})
	}
}
