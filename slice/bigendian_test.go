package slice

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// bigEndian rewrites a little-endian pcapng in big-endian byte order:
// section headers, interface descriptions (with their numeric options)
// and enhanced packet blocks; other blocks are left out.
func bigEndian(t *testing.T, le []byte) []byte {
	t.Helper()
	LE, BE := binary.LittleEndian, binary.BigEndian
	var out []byte
	// options rewrites an option list; fixed lists the codes whose values
	// are numbers in the section's byte order.
	options := func(b []byte, fixed map[uint16]bool) []byte {
		var o []byte
		for len(b) >= 4 {
			code, n := LE.Uint16(b), int(LE.Uint16(b[2:]))
			o = BE.AppendUint16(o, code)
			o = BE.AppendUint16(o, uint16(n))
			if code == optEnd {
				break
			}
			v := bytes.Clone(b[4 : 4+n])
			if fixed[code] {
				for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
					v[i], v[j] = v[j], v[i]
				}
			}
			o = append(o, v...)
			o = append(o, make([]byte, pad(n))...)
			b = b[4+n+pad(n):]
		}
		return o
	}
	for len(le) >= 12 {
		typ, total := LE.Uint32(le), LE.Uint32(le[4:])
		body := le[8 : total-4]
		le = le[total:]
		var nb []byte
		switch typ {
		case blockSHB:
			nb = BE.AppendUint32(nb, byteOrderMagic)
			nb = BE.AppendUint16(nb, LE.Uint16(body[4:]))
			nb = BE.AppendUint16(nb, LE.Uint16(body[6:]))
			nb = BE.AppendUint64(nb, LE.Uint64(body[8:]))
			nb = append(nb, options(body[16:], nil)...)
		case blockIDB:
			nb = BE.AppendUint16(nb, LE.Uint16(body))
			nb = BE.AppendUint16(nb, 0)
			nb = BE.AppendUint32(nb, LE.Uint32(body[4:]))
			nb = append(nb, options(body[8:], idbFixed)...)
		case blockEPB:
			for i := 0; i < 20; i += 4 {
				nb = BE.AppendUint32(nb, LE.Uint32(body[i:]))
			}
			n := int(LE.Uint32(body[12:]))
			nb = append(nb, body[20:20+n+pad(n)]...)
			nb = append(nb, options(body[20+n+pad(n):], epbFixed)...)
		default:
			continue
		}
		out = BE.AppendUint32(out, typ)
		out = BE.AppendUint32(out, uint32(12+len(nb)))
		out = append(out, nb...)
		out = BE.AppendUint32(out, uint32(12+len(nb)))
	}
	return out
}

// TestSliceBigEndianSource slices a big-endian pcapng: the slice is the
// one of the same capture in little-endian order, byte for byte.
func TestSliceBigEndianSource(t *testing.T) {
	le, err := os.ReadFile(pcaps + "h2-max-streams.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lePath, bePath := filepath.Join(dir, "le.pcapng"), filepath.Join(dir, "be.pcapng")
	if err := os.WriteFile(bePath, bigEndian(t, le), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lePath, le, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Conns: []event.ConnID{0}, Stream: 101}
	a, ra := write(t, []string{lePath}, "", opts)
	b, rb := write(t, []string{bePath}, "", opts)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	// The section comments name the sources, which differ.
	ab = bytes.ReplaceAll(ab, []byte(lePath), []byte(bePath))
	if ra.Packets == 0 || ra.Packets != rb.Packets || !bytes.Equal(ab, bb) {
		t.Errorf("big-endian source: %d packets, little-endian %d; slices equal: %v", rb.Packets, ra.Packets, bytes.Equal(ab, bb))
	}
}
