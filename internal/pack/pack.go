// Package pack stores finished records compactly: a record that will not
// change again (an HTTP/2 stream or gRPC call that ended) is encoded into
// varints, and decoded again when it is read (at the end of the
// connection).
//
// A connection can carry hundreds of thousands of streams, and a
// connection's records live as long as the connection does; in their Go
// form (strings, time.Time, pointers) each takes several hundred bytes.
// Encoded, integers take the bytes their magnitude needs, timestamps
// their distance from the first one stored, and the short strings records
// repeat (method, path, authority, content-type, status names) an index
// into a small per-store table.
//
// The encoding is private to a Store and never leaves the process.
package pack

import (
	"encoding/binary"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// Bounds on a Store.
const (
	// maxStrings bounds the strings a Store's table shares; strings past
	// it are stored inline in each record.
	maxStrings = 256
	// maxTableString bounds the length of a string put in the table.
	maxTableString = 256
	// firstBlock and maxBlock are the sizes of a Store's first and
	// largest blocks; blocks double in between, so a connection with few
	// records wastes little. A larger record gets a block of its own.
	firstBlock = 512
	maxBlock   = 64 << 10
	// maxBlocks bounds the blocks of a Store, so that a Loc (block<<16 |
	// offset) plus one fits in 32 bits.
	maxBlocks = 1<<16 - 1
)

// Loc is where a record is in its Store.
type Loc uint32

// Store holds encoded records in blocks that never move.
type Store struct {
	blocks [][]byte
	strs   []string
	index  map[string]uint32
	// recent caches table entries by length, which tells apart most of
	// the few strings records repeat, so that most lookups compare one
	// string (usually by pointer: records share their copies) instead
	// of hashing it.
	recent [16]struct {
		s string
		i uint32
	}
	// base is the time timestamps are stored relative to: the first
	// non-zero one put.
	base    int64
	hasBase bool
}

// Put stores the record e encoded and returns where it is; ok is false
// when it cannot be stored exactly (see Encoder.Time) or the Store is
// full.
func (s *Store) Put(e *Encoder) (loc Loc, ok bool) {
	b := e.buf
	if e.bad {
		return 0, false
	}
	n := len(s.blocks)
	if n == 0 || len(s.blocks[n-1])+len(b) > cap(s.blocks[n-1]) || len(s.blocks[n-1]) > 0xffff {
		if n >= maxBlocks {
			return 0, false
		}
		size := firstBlock
		if n > 0 {
			size = min(2*cap(s.blocks[n-1]), maxBlock)
		}
		s.blocks = append(s.blocks, make([]byte, 0, max(size, len(b))))
		n++
	}
	blk := &s.blocks[n-1]
	loc = Loc(uint32(n-1)<<16 | uint32(len(*blk)))
	*blk = append(*blk, b...)
	return loc, true
}

// Replace stores e in place of the record at loc, which took n bytes
// (Decoder.Len after reading it), when it fits there; ok is false when it
// does not (the old record is then left as it was).
func (s *Store) Replace(loc Loc, n int, e *Encoder) (ok bool) {
	if len(e.buf) > n || e.bad {
		return false
	}
	b := s.blocks[loc>>16]
	copy(b[loc&0xffff:], e.buf)
	return true
}

// Size returns the bytes the Store holds (its blocks' capacity).
func (s *Store) Size() int {
	n := 0
	for _, b := range s.blocks {
		n += cap(b)
	}
	return n
}

// Get returns a Decoder reading the record at loc.
func (s *Store) Get(loc Loc) Decoder {
	b := s.blocks[loc>>16]
	b = b[loc&0xffff:]
	return Decoder{s: s, b: b, n: len(b)}
}

// Encoder builds one record. Reuse it across records (Reset) so that its
// buffer is allocated once.
type Encoder struct {
	s   *Store
	buf []byte
	// bad is set when a value cannot be stored exactly.
	bad bool
}

// Reset starts a record for s.
func (e *Encoder) Reset(s *Store) {
	e.s, e.buf, e.bad = s, e.buf[:0], false
}

// Uint appends v.
func (e *Encoder) Uint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }

// Int appends v.
func (e *Encoder) Int(v int64) { e.buf = binary.AppendVarint(e.buf, v) }

// Bools appends up to 64 flags as one value: bit i is b[i].
func (e *Encoder) Bools(b ...bool) {
	var v uint64
	for i, x := range b {
		if x {
			v |= 1 << i
		}
	}
	e.Uint(v)
}

// String appends v: an index into the Store's table when v is (or can
// go) there, else v itself.
func (e *Encoder) String(v string) {
	s := e.s
	r := &s.recent[len(v)%len(s.recent)]
	if r.i > 0 && r.s == v {
		e.Uint(uint64(r.i))
		return
	}
	if i, ok := s.index[v]; ok {
		r.s, r.i = v, i+1
		e.Uint(uint64(i) + 1)
		return
	}
	if len(s.strs) < maxStrings && len(v) <= maxTableString {
		if s.index == nil {
			s.index = make(map[string]uint32)
		}
		s.index[v] = uint32(len(s.strs))
		s.strs = append(s.strs, v)
		e.Uint(uint64(len(s.strs)))
		return
	}
	e.Uint(0)
	e.Uint(uint64(len(v)))
	e.buf = append(e.buf, v...)
}

// Time appends t. Only UTC times without a monotonic reading (as the
// capture readers make them) and the zero Time are stored; any other
// marks the record as not storable.
func (e *Encoder) Time(t time.Time) {
	if t.IsZero() {
		e.Uint(0)
		return
	}
	// A UTC time without a monotonic reading has one representation,
	// the one time.Unix(sec, nsec).UTC() gives Decoder.Time.
	if t.Location() != time.UTC || t != t.Round(0) {
		e.bad = true
		return
	}
	s := e.s
	if !s.hasBase {
		s.base, s.hasBase = t.Unix(), true
	}
	e.Uint(uint64(t.Nanosecond()) + 1)
	e.Int(t.Unix() - s.base)
}

// Ref appends r.
func (e *Encoder) Ref(r event.Ref) {
	if r.File < 0 {
		e.bad = true
		return
	}
	e.Uint(uint64(r.File))
	e.Uint(r.Frame)
	e.Time(r.TS)
}

// Decoder reads one record in the order it was encoded.
type Decoder struct {
	s *Store
	b []byte
	n int // len(b) at the start
}

// Len returns the bytes read so far.
func (d *Decoder) Len() int { return d.n - len(d.b) }

// Uint reads a value appended by Encoder.Uint.
func (d *Decoder) Uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		panic("pack: record overrun") // the Store wrote what it reads
	}
	d.b = d.b[n:]
	return v
}

// Int reads a value appended by Encoder.Int.
func (d *Decoder) Int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		panic("pack: record overrun")
	}
	d.b = d.b[n:]
	return v
}

// Bools reads flags appended by Encoder.Bools into b.
func (d *Decoder) Bools(b ...*bool) {
	v := d.Uint()
	for i, p := range b {
		*p = v&(1<<i) != 0
	}
}

// String reads a value appended by Encoder.String.
func (d *Decoder) String() string {
	i := d.Uint()
	if i > 0 {
		return d.s.strs[i-1]
	}
	n := d.Uint()
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

// Time reads a value appended by Encoder.Time.
func (d *Decoder) Time() time.Time {
	ns := d.Uint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(d.s.base+d.Int(), int64(ns-1)).UTC()
}

// Ref reads a value appended by Encoder.Ref.
func (d *Decoder) Ref() event.Ref {
	file := d.Uint()
	frame := d.Uint()
	return event.Ref{File: int(file), Frame: frame, TS: d.Time()}
}
