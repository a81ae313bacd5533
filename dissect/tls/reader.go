package tls

// reader is a minimal bounds-checked byte reader in the style of
// golang.org/x/crypto/cryptobyte.String (that module is not a dependency
// of h2scope, so the few operations needed are kept here). Every method
// returns false, consuming nothing useful, when the input is too short.
type reader []byte

func (r *reader) read(n int) ([]byte, bool) {
	if n < 0 || len(*r) < n {
		return nil, false
	}
	v := (*r)[:n]
	*r = (*r)[n:]
	return v, true
}

func (r *reader) skip(n int) bool {
	_, ok := r.read(n)
	return ok
}

func (r *reader) u8(v *uint8) bool {
	b, ok := r.read(1)
	if ok {
		*v = b[0]
	}
	return ok
}

func (r *reader) u16(v *uint16) bool {
	b, ok := r.read(2)
	if ok {
		*v = uint16(b[0])<<8 | uint16(b[1])
	}
	return ok
}

func (r *reader) u24(v *uint32) bool {
	b, ok := r.read(3)
	if ok {
		*v = uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	}
	return ok
}

func (r *reader) u32(v *uint32) bool {
	b, ok := r.read(4)
	if ok {
		*v = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return ok
}

// prefixed reads a length-prefixed field whose length is n bytes wide.
func (r *reader) prefixed(n int, out *reader) bool {
	b, ok := r.read(n)
	if !ok {
		return false
	}
	l := 0
	for _, c := range b {
		l = l<<8 | int(c)
	}
	v, ok := r.read(l)
	if ok {
		*out = v
	}
	return ok
}

func (r *reader) lp8(out *reader) bool  { return r.prefixed(1, out) }
func (r *reader) lp16(out *reader) bool { return r.prefixed(2, out) }
func (r *reader) lp24(out *reader) bool { return r.prefixed(3, out) }

func (r reader) empty() bool { return len(r) == 0 }
