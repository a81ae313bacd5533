package tls

import "golang.org/x/crypto/cryptobyte"

// reader is a golang.org/x/crypto/cryptobyte.String with the short method
// names the message parsers use: every read is bounds-checked by
// cryptobyte and returns false, consuming nothing useful, when the input is
// too short.
type reader cryptobyte.String

func (r *reader) s() *cryptobyte.String { return (*cryptobyte.String)(r) }

func (r *reader) read(n int) ([]byte, bool) {
	var v []byte
	if n < 0 || !r.s().ReadBytes(&v, n) {
		return nil, false
	}
	return v, true
}

func (r *reader) skip(n int) bool { return n >= 0 && r.s().Skip(n) }

func (r *reader) u8(v *uint8) bool   { return r.s().ReadUint8(v) }
func (r *reader) u16(v *uint16) bool { return r.s().ReadUint16(v) }
func (r *reader) u24(v *uint32) bool { return r.s().ReadUint24(v) }
func (r *reader) u32(v *uint32) bool { return r.s().ReadUint32(v) }

func (r *reader) lp8(out *reader) bool {
	return r.s().ReadUint8LengthPrefixed((*cryptobyte.String)(out))
}

func (r *reader) lp16(out *reader) bool {
	return r.s().ReadUint16LengthPrefixed((*cryptobyte.String)(out))
}

func (r *reader) lp24(out *reader) bool {
	return r.s().ReadUint24LengthPrefixed((*cryptobyte.String)(out))
}

func (r reader) empty() bool { return cryptobyte.String(r).Empty() }
