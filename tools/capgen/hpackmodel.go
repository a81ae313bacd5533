package main

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2/hpack"
)

// hpackStaticLen is the number of entries in HPACK's static table: index
// hpackStaticLen+1 is the newest dynamic-table entry.
const hpackStaticLen = 61

// hpackModel follows one direction's HPACK dynamic table by entry, not by
// content: each insertion gets a serial number, so that a header block's
// references can be named by the insertions they depend on. capgen uses
// it to tell which header blocks of a capture cut mid-connection refer to
// entries inserted before the cut (see truth.CutDir.TableInserts).
type hpackModel struct {
	maxSize uint64       // the table's current maximum size
	size    uint64       // sum of the entries' sizes
	entries []hpackEntry // newest first
	serials int          // insertions so far
}

// hpackEntry is one dynamic-table entry.
type hpackEntry struct {
	serial int
	size   uint64 // RFC 7541 section 4.1: name and value lengths plus 32
}

// hpackInsert is one insertion made by a header block: the entry's
// serial and, when its name was an index into the dynamic table, the
// serial of that entry (-1 otherwise).
type hpackInsert struct {
	serial int
	nameOf int
}

// hpackRefs is what one header block did to the dynamic table.
type hpackRefs struct {
	refs    []int // serials of the dynamic entries referred to
	inserts []hpackInsert
}

func newHPACKModel() *hpackModel { return &hpackModel{maxSize: 4096} }

// errHPACKModel reports a header block the model cannot follow.
var errHPACKModel = errors.New("hpack model")

// block follows a header block already decoded into fields (one field per
// field representation, in order) and returns its references and
// insertions.
func (m *hpackModel) block(b []byte, fields []hpack.HeaderField) (hpackRefs, error) {
	var r hpackRefs
	fail := func(format string, args ...any) (hpackRefs, error) {
		return r, fmt.Errorf("%w: %s", errHPACKModel, fmt.Sprintf(format, args...))
	}
	ref := func(idx uint64) (int, bool) {
		if idx <= hpackStaticLen {
			return -1, true
		}
		i := int(idx - hpackStaticLen - 1)
		if i >= len(m.entries) {
			return 0, false
		}
		s := m.entries[i].serial
		r.refs = append(r.refs, s)
		return s, true
	}
	field := 0
	next := func() (hpack.HeaderField, bool) {
		if field >= len(fields) {
			return hpack.HeaderField{}, false
		}
		field++
		return fields[field-1], true
	}
	for len(b) > 0 {
		c := b[0]
		switch {
		case c&0x80 != 0: // indexed field
			idx, rest, err := hpackInt(b, 7)
			if err != nil || idx == 0 {
				return fail("bad indexed field")
			}
			if _, ok := ref(idx); !ok {
				return fail("index %d beyond the table", idx)
			}
			if _, ok := next(); !ok {
				return fail("more representations than fields")
			}
			b = rest
		case c&0xe0 == 0x20: // dynamic table size update
			v, rest, err := hpackInt(b, 5)
			if err != nil {
				return fail("bad size update")
			}
			m.maxSize = v
			m.evict(0)
			b = rest
		default: // literal: with (01), without (0000) or never (0001) indexing
			prefix := uint8(4)
			insert := c&0xc0 == 0x40
			if insert {
				prefix = 6
			}
			idx, rest, err := hpackInt(b, prefix)
			if err != nil {
				return fail("bad literal")
			}
			nameOf := -1
			if idx == 0 {
				if rest, err = hpackSkipString(rest); err != nil {
					return fail("bad literal name")
				}
			} else {
				s, ok := ref(idx)
				if !ok {
					return fail("name index %d beyond the table", idx)
				}
				nameOf = s
			}
			if rest, err = hpackSkipString(rest); err != nil {
				return fail("bad literal value")
			}
			f, ok := next()
			if !ok {
				return fail("more representations than fields")
			}
			if insert {
				size := uint64(len(f.Name)+len(f.Value)) + 32
				ins := hpackInsert{serial: m.serials, nameOf: nameOf}
				m.serials++
				r.inserts = append(r.inserts, ins)
				if size > m.maxSize {
					m.entries, m.size = m.entries[:0], 0
				} else {
					m.evict(size)
					m.entries = append([]hpackEntry{{serial: ins.serial, size: size}}, m.entries...)
					m.size += size
				}
			}
			b = rest
		}
	}
	if field != len(fields) {
		return fail("%d fields decoded, %d representations", len(fields), field)
	}
	return r, nil
}

// evict drops the oldest entries until room more bytes fit.
func (m *hpackModel) evict(room uint64) {
	for len(m.entries) > 0 && m.size+room > m.maxSize {
		last := len(m.entries) - 1
		m.size -= m.entries[last].size
		m.entries = m.entries[:last]
	}
}

// hpackInt decodes an RFC 7541 integer with an n-bit prefix.
func hpackInt(b []byte, n uint8) (uint64, []byte, error) {
	if len(b) == 0 {
		return 0, nil, errHPACKModel
	}
	mask := uint64(1)<<n - 1
	v := uint64(b[0]) & mask
	b = b[1:]
	if v < mask {
		return v, b, nil
	}
	for shift := uint(0); len(b) > 0 && shift < 63; shift += 7 {
		c := b[0]
		b = b[1:]
		v += uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, b, nil
		}
	}
	return 0, nil, errHPACKModel
}

// hpackSkipString skips a string literal (Huffman-coded or not).
func hpackSkipString(b []byte) ([]byte, error) {
	n, rest, err := hpackInt(b, 7)
	if err != nil || uint64(len(rest)) < n {
		return nil, errHPACKModel
	}
	return rest[n:], nil
}

// undecodable walks the header blocks of one direction in order and
// reports, for each block, whether it refers to an entry that a decoder
// starting at the first block with kept[i] true cannot know: one inserted
// by a block not kept, or by a kept block whose name referred to such an
// entry. It also returns the number of insertions made by blocks not kept.
func undecodable(blocks []hpackRefs, kept []bool) (bad []bool, lostInserts int) {
	tainted := make(map[int]bool)
	bad = make([]bool, len(blocks))
	for i, b := range blocks {
		if !kept[i] {
			for _, ins := range b.inserts {
				tainted[ins.serial] = true
				lostInserts++
			}
			continue
		}
		for _, s := range b.refs {
			if tainted[s] {
				bad[i] = true
			}
		}
		for _, ins := range b.inserts {
			if ins.nameOf >= 0 && tainted[ins.nameOf] {
				tainted[ins.serial] = true
			}
		}
	}
	return bad, lostInserts
}
