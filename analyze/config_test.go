package analyze

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/dissect"
)

// TestZeroConfig runs the detectors with every threshold zero (a Config
// built by hand without DefaultConfig): degenerate verdicts are allowed,
// a panic is not.
func TestZeroConfig(t *testing.T) {
	for _, name := range []string{"http1-small-pool", "grpc-cancel-storm", "h2-slow-reader"} {
		path := filepath.Join(pcaps, name+".pcapng")
		if _, _, err := Run(context.Background(), []string{path}, dissect.Options{}, Config{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
