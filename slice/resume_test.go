package slice

import (
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// FuzzResumptions feeds arbitrary segments, split at arbitrary points,
// to the handshake reader: it never panics, and what it holds stays
// within its bound.
func FuzzResumptions(f *testing.F) {
	hello := []byte{0x16, 3, 1, 0, 0x31, 1, 0, 0, 0x2d, 3, 3}
	hello = append(hello, make([]byte, 32)...)
	hello = append(hello, 0, 0, 2, 0x13, 1, 1, 0, 0, 4, 0, 35, 0, 0)
	f.Add(hello, []byte{0x16, 3, 3, 0, 4, 14, 0, 0, 0, 0x14, 3, 3, 0, 1, 1}, uint8(7))
	f.Add([]byte{0x16, 3, 1, 0, 1, 1}, []byte{0x16, 3, 3, 0xff, 0xff}, uint8(0))
	f.Fuzz(func(t *testing.T, c2s, s2c []byte, cut uint8) {
		r := newResumptions()
		seq := [2]uint32{1000, 5000}
		send := func(dir event.Dir, b []byte) {
			r.segment(0, dir, seq[dir], b, len(b))
			seq[dir] += uint32(len(b))
		}
		k := min(int(cut), len(c2s))
		send(event.C2S, c2s[:k])
		send(event.C2S, c2s[k:])
		k = min(int(cut), len(s2c))
		send(event.S2C, s2c[:k])
		send(event.S2C, s2c[k:])
		send(event.S2C, []byte{0x14, 3, 3, 0, 1, 1}) // ChangeCipherSpec ends the server's cleartext
		for _, c := range r.conns {
			for _, d := range c.dir {
				if n := len(d.buf) + len(d.hs); n > maxHandshakeBytes+len(c2s)+len(s2c)+6 {
					t.Errorf("%d bytes held", n)
				}
			}
		}
	})
}
