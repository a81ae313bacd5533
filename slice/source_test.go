package slice

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/dissect/capture"
)

// FuzzSource walks arbitrary files to every packet record the capture
// reader finds in them: the walk never panics, and finds each record
// the reader returned.
func FuzzSource(f *testing.F) {
	for _, name := range []string{"h2-max-streams.pcapng", "syn-refused.pcapng"} {
		b, err := os.ReadFile(pcaps + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "in")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := capture.Open([]string{path}, capture.Options{})
		if err != nil {
			return
		}
		defer r.Close()
		src, err := openSource(path, 0)
		if err != nil {
			t.Fatalf("the capture reader opens it, the slice's does not: %v", err)
		}
		defer src.close()
		for {
			p, err := r.Next()
			if err != nil {
				return
			}
			raw, err := src.packet(p.Offset)
			if err != nil {
				t.Fatalf("frame %d at offset %d: %v", p.Frame, p.Offset, err)
			}
			_ = src.iface(raw.key)
		}
	})
}
