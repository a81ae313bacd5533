package dissect

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// TestRunProgress checks Options.Progress: called every ProgressInterval
// packets with growing counts, and once at the end with every byte of the
// files read, over several files.
func TestRunProgress(t *testing.T) {
	big := writePcap(t, 2*ProgressInterval+100)
	small := "../testdata/pcaps/http1-nokeepalive.pcapng"
	var total int64
	for _, f := range []string{big, small} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	type call struct{ read, total int64 }
	var calls []call
	st, err := Run(context.Background(), []string{big, small}, Options{Progress: func(read, total int64) {
		calls = append(calls, call{read, total})
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := int(st.Packets/ProgressInterval) + 1; len(calls) != want {
		t.Fatalf("%d calls for %d packets, want %d: %v", len(calls), st.Packets, want, calls)
	}
	for i, c := range calls {
		if c.total != total || c.read <= 0 || c.read > total || i > 0 && c.read < calls[i-1].read {
			t.Errorf("call %d: read %d of %d (previous %v), want growing counts of %d", i, c.read, c.total, calls[:i], total)
		}
	}
	if last := calls[len(calls)-1]; last.read != total {
		t.Errorf("last call read %d, want all %d bytes", last.read, total)
	}
}

// writePcap writes a pcap file of n 60-byte Ethernet frames (not TCP: they
// are read and counted, then skipped).
func writePcap(t *testing.T, n int) string {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 1) // Ethernet
	frame := make([]byte, 60)
	frame[12], frame[13] = 0x88, 0xb5 // local experimental ethertype
	for i := range n {
		b = binary.LittleEndian.AppendUint32(b, uint32(1_700_000_000+i/1000))
		b = binary.LittleEndian.AppendUint32(b, uint32(i%1000))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = append(b, frame...)
	}
	p := filepath.Join(t.TempDir(), "many.pcap")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
