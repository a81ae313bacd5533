package main

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// TestImpair rewrites a synthetic connection and checks each edit against
// the frames: reordered pairs swapped, retransmissions repeated with the
// same bytes, drops gone, handshake and FINs untouched, time never going
// back, and the same result for the same seed.
func TestImpair(t *testing.T) {
	base := newSynthConn(t, 40000, 8080, synthStart).exchange(30, 200)
	plan := impairPlan{seed: 7, reorder: 2, retransmit: 2, drop: 2}
	out, edits, err := impair(base, 8080, plan)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(base) - plan.drop + plan.retransmit; len(out) != want {
		t.Fatalf("%d frames, want %d", len(out), want)
	}
	count := map[string]int{}
	for _, e := range edits {
		count[e.Op]++
		for _, f := range e.Frames {
			if ti, _ := parseTCP(base[f-1].data); !ti.isData() {
				t.Errorf("%s touches frame %d, which is not a data segment", e.Op, f)
			}
		}
		same := func(newFrame, origFrame int) bool {
			return bytes.Equal(out[newFrame-1].data, base[origFrame-1].data)
		}
		switch e.Op {
		case truth.OpReorder:
			if e.Frames[1] != e.Frames[0]+1 || e.NewFrames[0] != e.NewFrames[1]+1 ||
				!same(e.NewFrames[0], e.Frames[0]) || !same(e.NewFrames[1], e.Frames[1]) {
				t.Errorf("reorder %+v", e)
			}
		case truth.OpRetransmit:
			if d := e.NewFrames[1] - e.NewFrames[0]; d < 4 || d > 7 ||
				!same(e.NewFrames[0], e.Frames[0]) || !same(e.NewFrames[1], e.Frames[0]) {
				t.Errorf("retransmit %+v", e)
			}
			if d := out[e.NewFrames[1]-1].ts.Sub(out[e.NewFrames[1]-2].ts); d < retransmitDelay {
				t.Errorf("retransmit %+v: %v after the frame before, want %v", e, d, retransmitDelay)
			}
		case truth.OpDrop:
			for _, p := range out {
				if bytes.Equal(p.data, base[e.Frames[0]-1].data) {
					t.Errorf("drop %+v: frame still there", e)
				}
			}
		}
	}
	if count[truth.OpReorder] != 2 || count[truth.OpRetransmit] != 2 || count[truth.OpDrop] != 2 {
		t.Errorf("edits %v, want 2 of each", count)
	}
	if !slices.IsSortedFunc(edits, func(a, b impairEdit) int { return a.Frames[0] - b.Frames[0] }) {
		t.Errorf("edits not in frame order")
	}
	for i := range 3 { // handshake
		if !bytes.Equal(out[i].data, base[i].data) {
			t.Errorf("handshake frame %d changed", i+1)
		}
	}
	for i := 1; i <= 3; i++ { // FINs and the last ACK
		if !bytes.Equal(out[len(out)-i].data, base[len(base)-i].data) {
			t.Errorf("frame %d from the end changed", i)
		}
	}
	for i := 1; i < len(out); i++ {
		if out[i].ts.Before(out[i-1].ts) {
			t.Errorf("frame %d goes back in time", i+1)
		}
	}
	out2, edits2, err := impair(base, 8080, plan)
	if err != nil || !reflect.DeepEqual(out, out2) || !reflect.DeepEqual(edits, edits2) {
		t.Errorf("same seed, different result")
	}
}

// TestImpairTooFew fails cleanly when the capture has too few data
// segments for the plan.
func TestImpairTooFew(t *testing.T) {
	base := newSynthConn(t, 40000, 8080, time.Unix(0, 0)).exchange(2, 10)
	if _, _, err := impair(base, 8080, impairPlan{seed: 1, drop: 5}); err == nil {
		t.Error("no error")
	}
}

// TestSegment splits a super-segment like a NIC's TSO and checks the
// pieces against gopacket's own serialisation, checksums included.
func TestSegment(t *testing.T) {
	s := newSynthConn(t, 40000, 8080, time.Unix(0, 0))
	payload := synthPayload(5000, 0)
	s.frame(true, false, true, true, payload) // data + FIN
	big := s.pkts[0]
	// Build the expected pieces one by one.
	want := newSynthConn(t, 40000, 8080, time.Unix(0, 0))
	for off := 0; off < len(payload); off += 1448 {
		end := min(off+1448, len(payload))
		want.frame(true, false, true, end == len(payload), payload[off:end])
	}
	got := segment([]packet{big}, 1460)
	if len(got) != 4 {
		t.Fatalf("%d pieces, want 4", len(got))
	}
	for i := range got {
		w := want.pkts[i].data
		// PSH goes on the last piece only. The last piece is gopacket's
		// frame untouched, checksums included (IPv4 IDs count up from 0 in
		// both).
		if i < len(got)-1 {
			ti, _ := parseTCP(w)
			w[ti.tcpOff+13] &^= 0x08
			setChecksums(w, ti.tcpOff)
		}
		if j := firstDiff(got[i].data, w); j >= 0 {
			t.Errorf("piece %d differs from byte %d: got % x, want % x", i, j,
				got[i].data[j:min(j+8, len(got[i].data))], w[j:min(j+8, len(w))])
		}
		if !got[i].ts.Equal(big.ts) {
			t.Errorf("piece %d: time %v", i, got[i].ts)
		}
	}
}

// firstDiff returns the first offset where a and b differ, -1 if none.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
