package capture

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// mergeFiles are three small captures with equal timestamps across files
// and a timestamp going backwards within one file. The first byte of each
// packet names it: file letter, then time in seconds after t0.
func mergeFiles() map[string][]byte {
	p := func(name string, sec int) []byte { return append([]byte(name), make([]byte, 20)...) }
	a := newPcapFile(le, 0xa1b2c3d4, 2, 4, 65535, 1)
	for _, s := range []int{10, 20, 15, 30} {
		a.pkt(t0+uint32(s), 0, p("A"+string(rune('0'+s/5)), s))
	}
	b := newPcapFile(be, 0xa1b2c3d4, 2, 4, 65535, 1)
	for _, s := range []int{10, 15, 25} {
		b.pkt(t0+uint32(s), 0, p("B"+string(rune('0'+s/5)), s))
	}
	c := newNgFile(le).idb(1, 0)
	c.dsb(SecretsTLSKeyLog, []byte("c secrets"))
	for _, s := range []int{5, 20} {
		c.epb(0, uint64(t0+s)*1e6, p("C"+string(rune('0'+s/5)), s))
	}
	return map[string][]byte{"a.pcap": a.Bytes(), "b.pcap": b.Bytes(), "c.pcapng": c.Bytes()}
}

// TestMergeOrder merges the three files. The expected order is what
// mergecap 4.0.17 gives (mergecap -w m.pcapng a.pcap b.pcap c.pcapng, then
// tshark -r m.pcapng -T fields -e eth.dst): on equal timestamps the later
// file goes first (B2 before A2, C4 before A4), and a file's packets are
// never reordered even when its time goes backwards (A4 before A3).
func TestMergeOrder(t *testing.T) {
	files := mergeFiles()
	var paths []string
	for _, n := range []string{"a.pcap", "b.pcap", "c.pcapng"} {
		paths = append(paths, writeTemp(t, n, files[n]))
	}
	r, err := Open(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps, errs := drain(t, r)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for i, p := range ps {
		got = append(got, string(p.Data[:2]))
		if p.Frame != uint64(i+1) {
			t.Errorf("packet %d has frame %d", i, p.Frame)
		}
		if want := int(p.Data[0] - 'A'); p.File != want {
			t.Errorf("packet %s has File %d", p.Data[:2], p.File)
		}
	}
	want := []string{"C1", "B2", "A2", "B3", "C4", "A4", "A3", "B5", "A6"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v\n want %v", got, want)
	}
	if s := r.Secrets(); len(s) != 1 || s[0].File != 2 || string(s[0].Data) != "c secrets" {
		t.Errorf("secrets %+v", s)
	}
	// After the end, io.EOF again; after Close, an error.
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after the end: %v", err)
	}
	r.Close()
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Errorf("Next after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestMergeFaultContinues truncates one file of a merge: its packets before
// the fault come out in their place, then the error once, then the other
// files to their end.
func TestMergeFaultContinues(t *testing.T) {
	files := mergeFiles()
	a := files["a.pcap"]
	cut := a[:len(a)-20] // A6, at 138, keeps its header and 2 of its 22 bytes
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcap"), filepath.Join(dir, "c.pcapng")}
	for i, data := range [][]byte{cut, files["b.pcap"], files["c.pcapng"]} {
		if err := os.WriteFile(paths[i], data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	var faults []error
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			faults = append(faults, err)
			got = append(got, "error")
			continue
		}
		got = append(got, string(p.Data[:2]))
	}
	// A3 is A's last good packet: when the merge moves past it, A's fault
	// is found and returned, numbered as the next frame.
	want := []string{"C1", "B2", "A2", "B3", "C4", "A4", "A3", "error", "B5"}
	if !slices.Equal(got, want) {
		t.Errorf("sequence %v\n want %v", got, want)
	}
	if len(faults) != 1 {
		t.Fatalf("faults %v", faults)
	}
	wantErr := paths[0] + ": frame 8 (offset 138): pcap: file truncated: packet data has 2 of 22 bytes"
	if faults[0].Error() != wantErr {
		t.Errorf("fault %q\n want %q", faults[0], wantErr)
	}
	if e, ok := asError[*event.Error](faults[0]); !ok || e.File != paths[0] || !errors.Is(e, event.ErrTruncated) {
		t.Errorf("fault %v", faults[0])
	}
}
