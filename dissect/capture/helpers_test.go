package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// corpusDir is the shared corpus of real captures (see its MANIFEST.md),
// used in place.
const corpusDir = "../../../shared/corpus"

// corpusPath returns the path of a corpus capture, skipping the test when
// the corpus is absent.
func corpusPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(corpusDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus capture %s not found (%v); the corpus lives in /work/shared/corpus", name, err)
	}
	return p
}

// pkt is a copy of a Packet that outlives the next call to Next.
type pkt struct {
	File     int
	Frame    uint64
	TS       time.Time
	LinkType layers.LinkType
	Data     []byte
	OrigLen  int
	Offset   int64
}

func (p pkt) String() string {
	return fmt.Sprintf("{file %d frame %d ts %s link %d len %d/%d off %d}",
		p.File, p.Frame, p.TS.Format(time.RFC3339Nano), p.LinkType, len(p.Data), p.OrigLen, p.Offset)
}

func copyPacket(p *Packet) pkt {
	return pkt{p.File, p.Frame, p.TS, p.LinkType, bytes.Clone(p.Data), p.OrigLen, p.Offset}
}

// drain reads r to the end and returns the packets and the errors other
// than io.EOF, in order. It fails the test if r does not end within limit
// calls.
func drain(t testing.TB, r *Reader) ([]pkt, []error) {
	t.Helper()
	var ps []pkt
	var errs []error
	for i := 0; ; i++ {
		if i > 10_000_000 {
			t.Fatal("Next did not reach io.EOF")
		}
		p, err := r.Next()
		if err == io.EOF {
			return ps, errs
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps = append(ps, copyPacket(p))
	}
}

// readFile opens one file and drains it.
func readFile(t testing.TB, path string) ([]pkt, []error) {
	t.Helper()
	r, err := Open([]string{path}, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer r.Close()
	return drain(t, r)
}

// readBytes reads data as one capture file named name; openErr is the error
// from opening it.
func readBytes(t testing.TB, name string, data []byte) (ps []pkt, errs []error, openErr error) {
	t.Helper()
	r, err := openReaders([]io.Reader{bytes.NewReader(data)}, []string{name}, Options{}, limits{})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	ps, errs = drain(t, r)
	return ps, errs, nil
}

// epoch formats a time as tshark's frame.time_epoch does.
func epoch(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// samePackets reports the first difference between two packet lists, or
// nil.
func samePackets(got, want []pkt) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d packets, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.TS.Equal(w.TS) || g.Frame != w.Frame || g.File != w.File || g.LinkType != w.LinkType ||
			g.OrigLen != w.OrigLen || g.Offset != w.Offset || !bytes.Equal(g.Data, w.Data) {
			return fmt.Errorf("packet %d: got %v, want %v (data equal: %v)", i, g, w, bytes.Equal(g.Data, w.Data))
		}
	}
	return nil
}

// writeTemp writes data to a file named name in a fresh temporary
// directory and returns its path.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustRead returns the contents of a file.
func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// asError is errors.As for a *event.Error-like target, shortened.
func asError[T error](err error) (T, bool) {
	var target T
	ok := errors.As(err, &target)
	return target, ok
}

// gzipped returns b compressed with gzip.
func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// zstded returns b compressed with zstd.
func zstded(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
