package http2

import (
	"errors"
	"fmt"

	"github.com/h2scope/h2scope/dissect/event"
	"golang.org/x/net/http2/hpack"
)

// HPACK decoding errors. A block that fails with one of them is marked
// undecodable and its direction's table becomes unknown.
var (
	// ErrHPACKTruncated reports a header block that ends inside a
	// representation.
	ErrHPACKTruncated = errors.New("hpack: truncated header block")
	// ErrHPACKIndex reports a reference to index 0 or past the end of a
	// fully known table.
	ErrHPACKIndex = errors.New("hpack: invalid index")
	// ErrHPACKInteger reports an integer that overflows 63 bits.
	ErrHPACKInteger = errors.New("hpack: integer overflow")
	// ErrHPACKStringLength reports a string longer than the configured
	// maximum.
	ErrHPACKStringLength = errors.New("hpack: string too long")
	// ErrHPACKSizeUpdate reports a dynamic table size update after a
	// header field, or above the peer's SETTINGS_HEADER_TABLE_SIZE.
	ErrHPACKSizeUpdate = errors.New("hpack: bad dynamic table size update")
	// ErrHPACKHuffman reports an invalid Huffman-coded string.
	ErrHPACKHuffman = errors.New("hpack: invalid huffman string")
)

// staticTable is RFC 7541 Appendix A; index i is staticTable[i-1].
var staticTable = [61]struct{ name, value string }{
	{":authority", ""}, {":method", "GET"}, {":method", "POST"}, {":path", "/"},
	{":path", "/index.html"}, {":scheme", "http"}, {":scheme", "https"},
	{":status", "200"}, {":status", "204"}, {":status", "206"}, {":status", "304"},
	{":status", "400"}, {":status", "404"}, {":status", "500"},
	{"accept-charset", ""}, {"accept-encoding", "gzip, deflate"},
	{"accept-language", ""}, {"accept-ranges", ""}, {"accept", ""},
	{"access-control-allow-origin", ""}, {"age", ""}, {"allow", ""},
	{"authorization", ""}, {"cache-control", ""}, {"content-disposition", ""},
	{"content-encoding", ""}, {"content-language", ""}, {"content-length", ""},
	{"content-location", ""}, {"content-range", ""}, {"content-type", ""},
	{"cookie", ""}, {"date", ""}, {"etag", ""}, {"expect", ""}, {"expires", ""},
	{"from", ""}, {"host", ""}, {"if-match", ""}, {"if-modified-since", ""},
	{"if-none-match", ""}, {"if-range", ""}, {"if-unmodified-since", ""},
	{"last-modified", ""}, {"link", ""}, {"location", ""}, {"max-forwards", ""},
	{"proxy-authenticate", ""}, {"proxy-authorization", ""}, {"range", ""},
	{"referer", ""}, {"refresh", ""}, {"retry-after", ""}, {"server", ""},
	{"set-cookie", ""}, {"strict-transport-security", ""},
	{"transfer-encoding", ""}, {"user-agent", ""}, {"vary", ""}, {"via", ""},
	{"www-authenticate", ""},
}

const (
	// defaultTableSize is SETTINGS_HEADER_TABLE_SIZE's initial value.
	defaultTableSize = 4096
	// entryOverhead is the per-entry size overhead of RFC 7541 §4.1.
	entryOverhead = 32
)

// hentry is one dynamic table entry. An entry inserted by a literal whose
// name referred to an unknown entry has an unknown name, and so an
// unknown size.
type hentry struct {
	name, value string
	nameKnown   bool
}

func (e *hentry) size() uint64 { return uint64(len(e.name)) + uint64(len(e.value)) + entryOverhead }

// hdecoder is one direction's HPACK decoder (RFC 7541). Its dynamic table
// may be known only in part: when the capture starts mid-connection, the
// entries inserted before it are unknown, but every entry inserted since
// sits at a computable index (62 for the newest), so references to those
// decode exactly and only references past them are unknown. Evictions only
// matter to tell when the table has become fully known again; a valid
// encoder never refers to an evicted entry, so keeping more entries than
// the peer does never yields a wrong field.
type hdecoder struct {
	// ents holds the known newest entries, oldest first: index 62 is the
	// last element. It is a window of arr: evicting reslices it, and push
	// moves it back to the start of arr when it reaches the end.
	ents []hentry
	arr  []hentry
	// size sums the sizes of ents when unsized is 0.
	size uint64
	// unsized counts entries in ents whose name, hence size, is unknown.
	unsized int
	// mem sums the bytes ents keep, for memCap.
	mem uint64
	// max is the table's maximum size, valid when maxKnown.
	max      uint64
	maxKnown bool
	// complete is set when ents is the whole table: a reference past it
	// is an error rather than an unknown entry.
	complete bool
	// allowed is the peer's SETTINGS_HEADER_TABLE_SIZE, the bound on size
	// updates, valid when allowedKnown.
	allowed      uint64
	allowedKnown bool

	maxStr int
	memCap uint64

	// leadUpdates counts the size updates at the start of the last block
	// decoded (x/net's decoder refuses a second one when the table is not
	// empty; RFC 7541 §4.2 allows two).
	leadUpdates int
}

// newHDecoder returns a decoder at the start of a connection (known is
// true: empty table, 4096 bytes) or with an unknown table.
func newHDecoder(known bool, maxStr, memCap int) *hdecoder {
	d := &hdecoder{maxStr: maxStr, memCap: uint64(memCap)}
	if known {
		d.max, d.maxKnown, d.complete = defaultTableSize, true, true
		d.allowed, d.allowedKnown = defaultTableSize, true
	}
	return d
}

// full reports whether the whole table is known.
func (d *hdecoder) full() bool { return d.complete && d.maxKnown && d.unsized == 0 }

// forget makes the table unknown, after a decoding error or lost bytes.
func (d *hdecoder) forget() {
	clear(d.ents)
	d.ents = d.ents[:0]
	d.size, d.unsized, d.mem = 0, 0, 0
	d.complete, d.maxKnown = false, false
}

// setAllowed records the peer's SETTINGS_HEADER_TABLE_SIZE.
func (d *hdecoder) setAllowed(v uint32) {
	d.allowed, d.allowedKnown = uint64(v), true
}

// evictOldest drops the n oldest entries.
func (d *hdecoder) evictOldest(n int) {
	for i := range n {
		e := &d.ents[i]
		if e.nameKnown {
			d.size -= e.size()
		} else {
			d.unsized--
		}
		d.mem -= e.size()
	}
	d.dropOldest(n)
}

// dropOldest removes the n oldest entries from ents, leaving the sizes to
// the caller. Reslicing keeps eviction O(n) rather than O(len(ents)).
func (d *hdecoder) dropOldest(n int) {
	clear(d.ents[:n])
	d.ents = d.ents[n:]
}

// push appends e to ents. When ents reaches the end of arr, its entries
// move back to the start of arr, into a new one twice their number when
// they fill more than half of it, so that each push costs O(1) amortised.
func (d *hdecoder) push(e hentry) {
	if n := len(d.ents); n == cap(d.ents) {
		if cap(d.arr) < 2*n+1 {
			d.arr = make([]hentry, 2*n+8)
		}
		copy(d.arr, d.ents)
		clear(d.arr[n:])
		d.ents = d.arr[:n]
	}
	d.ents = append(d.ents, e)
}

// setMax applies a dynamic table size update.
func (d *hdecoder) setMax(v uint64) {
	d.max, d.maxKnown = v, true
	if v < entryOverhead {
		// No entry fits: the table is empty.
		d.evictOldest(len(d.ents))
		d.complete = true
		return
	}
	if d.unsized > 0 {
		return
	}
	n := 0
	for d.size > v {
		d.size -= d.ents[n].size()
		d.mem -= d.ents[n].size()
		n++
	}
	d.dropOldest(n)
	if n > 0 || d.size+entryOverhead > v {
		d.complete = true
	}
}

// add inserts e as the newest entry.
func (d *hdecoder) add(e hentry) {
	if e.nameKnown && d.maxKnown && d.unsized == 0 {
		s := e.size()
		if s > d.max {
			d.evictOldest(len(d.ents))
			d.complete = true
			return
		}
		if d.size+s > d.max {
			// Every older unknown entry is gone, and some known ones.
			n := 0
			for d.size+s > d.max {
				d.size -= d.ents[n].size()
				d.mem -= d.ents[n].size()
				n++
			}
			d.dropOldest(n)
			d.complete = true
		}
		d.push(e)
		d.size += s
		d.mem += s
		if d.size+entryOverhead > d.max {
			d.complete = true
		}
	} else {
		if !e.nameKnown {
			d.unsized++
		} else {
			d.size += e.size()
		}
		d.push(e)
		d.mem += e.size()
	}
	if d.mem > d.memCap {
		n := 0
		for m := d.mem; m > d.memCap && n < len(d.ents); n++ {
			m -= d.ents[n].size()
		}
		d.evictOldest(n)
		d.complete = false
	}
}

// lookup resolves index i. It reports ok false for an error (index 0, or
// past a fully known table) and known false for an entry the capture did
// not show.
func (d *hdecoder) lookup(i uint64) (name, value string, known, ok bool) {
	switch {
	case i == 0:
		return "", "", false, false
	case i <= uint64(len(staticTable)):
		e := staticTable[i-1]
		return e.name, e.value, true, true
	}
	k := i - uint64(len(staticTable)) - 1
	if k < uint64(len(d.ents)) {
		e := &d.ents[uint64(len(d.ents))-1-k]
		return e.name, e.value, e.nameKnown, true
	}
	if d.complete {
		return "", "", false, false
	}
	return "", "", false, true
}

// blockStats counts the fields of one block.
type blockStats struct {
	// fields counts header fields represented; decoded those known.
	fields, decoded int
	// truncated is set when fields past maxList were not recorded.
	truncated bool
	// size is the header list's size (RFC 9113 §6.5.2: names, values
	// and 32 bytes a field), recorded or not.
	size int
}

// decode decodes one complete header block, appending its fields to out.
// Fields referring to entries the capture did not show are Unknown with
// their Index. At most maxList bytes of fields (RFC 9113 §6.5.2 sizes)
// are recorded; the rest are decoded for the table's sake and counted.
// On error the table is left as far as decoding got: the caller forgets it.
func (d *hdecoder) decode(p []byte, out []event.Header, maxList int) ([]event.Header, blockStats, error) {
	var st blockStats
	sawField := false
	d.leadUpdates = 0
	emit := func(h event.Header) {
		st.fields++
		if !h.Unknown {
			st.decoded++
		}
		st.size += len(h.Name) + len(h.Value) + entryOverhead
		if st.size > maxList {
			st.truncated = true
			return
		}
		out = append(out, h)
	}
	for len(p) > 0 {
		b := p[0]
		switch {
		case b&0x80 != 0: // indexed field, §6.1
			idx, rest, err := readVarInt(7, p)
			if err != nil {
				return out, st, err
			}
			p = rest
			name, value, known, ok := d.lookup(idx)
			if !ok {
				return out, st, fmt.Errorf("%w %d", ErrHPACKIndex, idx)
			}
			if known {
				emit(event.Header{Name: name, Value: value})
			} else {
				emit(event.Header{Unknown: true, Index: idx})
			}
			sawField = true
		case b&0xe0 == 0x20: // dynamic table size update, §6.3
			if sawField && d.full() && d.size > 0 {
				// As x/net: an update after a field is refused unless the
				// table is empty. A partly known table is given the benefit
				// of the doubt.
				return out, st, fmt.Errorf("%w: after a header field", ErrHPACKSizeUpdate)
			}
			v, rest, err := readVarInt(5, p)
			if err != nil {
				return out, st, err
			}
			p = rest
			if d.allowedKnown && v > d.allowed {
				return out, st, fmt.Errorf("%w: %d above the limit %d", ErrHPACKSizeUpdate, v, d.allowed)
			}
			if !sawField {
				d.leadUpdates++
			}
			d.setMax(v)
		default: // literal field, §6.2
			n, indexed := byte(4), false
			if b&0xc0 == 0x40 {
				n, indexed = 6, true
			}
			idx, rest, err := readVarInt(n, p)
			if err != nil {
				return out, st, err
			}
			p = rest
			var name string
			nameKnown := true
			if idx > 0 {
				var ok bool
				name, _, nameKnown, ok = d.lookup(idx)
				if !ok {
					return out, st, fmt.Errorf("%w %d", ErrHPACKIndex, idx)
				}
			} else if name, p, err = d.readString(p); err != nil {
				return out, st, err
			}
			value, rest, err := d.readString(p)
			if err != nil {
				return out, st, err
			}
			p = rest
			if indexed {
				d.add(hentry{name: name, value: value, nameKnown: nameKnown})
			}
			if nameKnown {
				emit(event.Header{Name: name, Value: value})
			} else {
				emit(event.Header{Unknown: true, Index: idx})
			}
			sawField = true
		}
	}
	return out, st, nil
}

// readVarInt reads an RFC 7541 §5.1 integer with an n-bit prefix.
func readVarInt(n byte, p []byte) (uint64, []byte, error) {
	if len(p) == 0 {
		return 0, p, ErrHPACKTruncated
	}
	i := uint64(p[0]) & (1<<n - 1)
	if i < 1<<n-1 {
		return i, p[1:], nil
	}
	p = p[1:]
	var m uint
	for len(p) > 0 {
		b := p[0]
		p = p[1:]
		i += uint64(b&0x7f) << m
		if b&0x80 == 0 {
			return i, p, nil
		}
		m += 7
		if m >= 63 {
			return 0, p, ErrHPACKInteger
		}
	}
	return 0, p, ErrHPACKTruncated
}

// readString reads an RFC 7541 §5.2 string literal, copying it.
func (d *hdecoder) readString(p []byte) (string, []byte, error) {
	if len(p) == 0 {
		return "", p, ErrHPACKTruncated
	}
	huff := p[0]&0x80 != 0
	n, p, err := readVarInt(7, p)
	if err != nil {
		return "", p, err
	}
	if n > uint64(d.maxStr) {
		return "", p, ErrHPACKStringLength
	}
	if n > uint64(len(p)) {
		return "", p, ErrHPACKTruncated
	}
	raw := p[:n]
	p = p[n:]
	if !huff {
		return string(raw), p, nil
	}
	s, err := hpack.HuffmanDecodeToString(raw)
	if err != nil {
		return "", p, ErrHPACKHuffman
	}
	if len(s) > d.maxStr {
		return "", p, ErrHPACKStringLength
	}
	return s, p, nil
}
