package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkProfile runs `analyze --json` on each capture listed in
// $H2SCOPE_PGO (absolute paths separated by colons; whatever each exits
// with: some of testdata's are truncated on purpose), and is skipped when
// it is unset: `make pgo` records its CPU profile as default.pgo, the
// profile `go build` optimises the h2scope binary with.
func BenchmarkProfile(b *testing.B) {
	list := os.Getenv("H2SCOPE_PGO")
	if list == "" {
		b.Skip("H2SCOPE_PGO lists no captures")
	}
	files := strings.Split(list, ":")
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(b.TempDir(), "report.json")
	for b.Loop() {
		for _, f := range files {
			run(context.Background(), []string{"analyze", "--json", out, f}, io.Discard, io.Discard)
		}
	}
}
