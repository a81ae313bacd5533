package slice

import (
	"encoding/binary"
	"testing"
)

// h2frame encodes one HTTP/2 frame with a payload of n zero bytes.
func h2frame(typ byte, stream uint32, n int) []byte {
	b := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, 0}
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, make([]byte, n)...)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestFramer(t *testing.T) {
	keep := func(id uint32) bool { return id == 5 }
	data3 := h2frame(frameData, 3, 100)
	for _, tt := range []struct {
		name string
		c2s  bool
		segs [][]byte // consecutive segments
		want []bool   // droppable
	}{
		{"preface kept, other stream's data dropped", true,
			[][]byte{cat(preface, h2frame(frameSettings, 0, 6)), data3, h2frame(frameData, 5, 10)},
			[]bool{false, true, false}},
		{"headers of other streams kept", true,
			[][]byte{preface, h2frame(0x1, 3, 20), h2frame(frameWindowUpdate, 3, 4)},
			[]bool{false, false, true}},
		{"stream 0 frames kept", false,
			[][]byte{h2frame(frameSettings, 0, 0), h2frame(frameWindowUpdate, 0, 4), data3},
			[]bool{false, false, true}},
		{"frame split over segments kept", false,
			[][]byte{h2frame(frameSettings, 0, 0), data3[:50], data3[50:], data3},
			[]bool{false, false, false, true}},
		{"header split over segments kept", false,
			[][]byte{h2frame(frameSettings, 0, 0), data3[:4], data3[4:], data3},
			[]bool{false, false, false, true}},
		{"not HTTP/2: nothing dropped", true,
			[][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), data3},
			[]bool{false, false}},
		{"TLS: nothing dropped", false,
			[][]byte{{0x16, 3, 3, 0, 4, 2, 0, 0, 0}, data3},
			[]bool{false, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var f framer
			seq := uint32(1000)
			for i, s := range tt.segs {
				if got := f.segment(seq, s, len(s), tt.c2s, keep); got != tt.want[i] {
					t.Errorf("segment %d: droppable %v, want %v", i, got, tt.want[i])
				}
				seq += uint32(len(s))
			}
		})
	}
	// A gap loses the frames: nothing after it is dropped; a
	// retransmission is kept and changes nothing.
	var f framer
	s0 := h2frame(frameSettings, 0, 0)
	f.segment(1, s0, len(s0), false, keep)
	if f.segment(1, s0, len(s0), false, keep) || f.state != framerSynced {
		t.Error("retransmission: dropped or lost the frames")
	}
	if f.segment(1+uint32(len(s0))+7, data3, len(data3), false, keep) || f.state != framerLost {
		t.Error("gap: frames still followed")
	}
	// A segment cut by the snap length loses them too.
	f = framer{}
	f.segment(1, s0, len(s0), false, keep)
	if f.segment(1+uint32(len(s0)), data3[:20], len(data3), false, keep) || f.state != framerLost {
		t.Error("snap length: frames still followed")
	}
}

// FuzzFramer follows arbitrary bytes cut into two segments: it never
// panics, and a segment it would leave out starts and ends on a frame
// boundary and holds only frames of streams the slice does not keep.
func FuzzFramer(f *testing.F) {
	f.Add(cat(preface, h2frame(frameSettings, 0, 6), h2frame(frameData, 3, 10)), uint8(30), true)
	f.Add(cat(h2frame(frameSettings, 0, 0), h2frame(frameData, 3, 10), h2frame(frameData, 5, 3)), uint8(9), false)
	f.Fuzz(func(t *testing.T, b []byte, cut uint8, c2s bool) {
		var fr framer
		keep := func(id uint32) bool { return id == 5 }
		k := min(int(cut), len(b))
		fr.segment(1, b[:k], k, c2s, keep)
		before := fr
		if fr.segment(1+uint32(k), b[k:], len(b)-k, c2s, keep) {
			if before.skip != 0 || before.need != 0 || before.nhdr != 0 {
				t.Error("dropped a segment that starts inside a frame")
			}
			if fr.need != 0 || fr.nhdr != 0 {
				t.Error("dropped a segment that ends inside a frame")
			}
		}
	})
}
