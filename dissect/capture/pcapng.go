package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/h2scope/h2scope/dissect/event"
)

// pcapng block types.
const (
	ngBlockIDB = 0x00000001 // Interface Description Block
	ngBlockOPB = 0x00000002 // Packet Block (obsolete)
	ngBlockSPB = 0x00000003 // Simple Packet Block
	ngBlockEPB = 0x00000006 // Enhanced Packet Block
	ngBlockDSB = 0x0000000a // Decryption Secrets Block
	ngBlockSHB = 0x0a0d0d0a // Section Header Block, a palindrome

	ngByteOrderMagic = 0x1a2b3c4d
)

// Limits on lengths read from a pcapng file.
const (
	// maxBlockLen is the longest block taken: Wireshark's limit is about
	// the same (its largest packet, 128 MiB, plus headers).
	maxBlockLen = 128 << 20
	// maxSecretLen caps one Decryption Secrets Block's payload, and
	// maxSecretsTotal the payloads kept from all files together.
	maxSecretLen    = 16 << 20
	maxSecretsTotal = 64 << 20
	// maxInterfaces caps the interfaces of one section.
	maxInterfaces = 1 << 16
)

// ngMinLen is the smallest total length of a block of type typ: header,
// fixed fields and trailer.
func ngMinLen(typ uint32) uint32 {
	switch typ {
	case ngBlockSHB:
		return 28
	case ngBlockOPB, ngBlockEPB:
		return 32
	case ngBlockIDB, ngBlockDSB:
		return 20
	case ngBlockSPB:
		return 16
	}
	return 12
}

// pcapng interface description option codes.
const (
	ngOptEnd      = 0
	ngOptTSResol  = 9
	ngOptTSOffset = 14
)

// iface is what a packet needs from its Interface Description Block.
type iface struct {
	linkType layers.LinkType
	snapLen  uint32
	binary   bool  // if_tsresol is a power of two, not of ten
	exp      uint8 // if_tsresol exponent: units are 2^-exp or 10^-exp s
	offset   int64 // if_tsoffset, seconds
}

// ts converts a timestamp in the interface's units to a time, truncated to
// the nanosecond, then adds if_tsoffset, as Wireshark does. The arithmetic
// is exact for every resolution (Wireshark 4.0's overflows for resolutions
// finer than about 10^-10 s).
func (i *iface) ts(units uint64) time.Time {
	var sec, nsec uint64
	e := uint(i.exp)
	switch {
	case i.binary && e < 64:
		sec = units >> e
		frac := units & (1<<e - 1)
		hi, lo := bits.Mul64(frac, 1e9)
		nsec = hi<<(64-e) | lo>>e // (hi:lo) >> e; for e == 0, frac is 0
	case i.binary:
		hi, _ := bits.Mul64(units, 1e9)
		nsec = hi >> (e - 64)
	case e <= 9:
		d := pow10[e]
		sec, nsec = units/d, units%d*pow10[9-e]
	case e <= 19:
		d := pow10[e]
		sec, nsec = units/d, units%d/pow10[e-9]
	case e-9 <= 19:
		nsec = units / pow10[e-9]
	}
	return time.Unix(int64(sec)+i.offset, int64(nsec)).UTC()
}

// writableTS reports whether t falls in the years 0 to 9999, which every
// date format writes (RFC 3339 stops at 9999). It compares seconds rather
// than computing the year, except where time.Time's internal seconds could
// have wrapped (there the year says what the time is).
func writableTS(t time.Time) bool {
	const (
		first = -62167219200 // 0000-01-01T00:00:00Z
		last  = 253402300799 // 9999-12-31T23:59:59Z
	)
	if u := t.Unix(); u > -1<<62 && u < 1<<62 {
		return u >= first && u <= last
	}
	y := t.Year()
	return y >= 0 && y <= 9999
}

var pow10 = [20]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// pad4 rounds n up to a multiple of 4, in 64 bits so it cannot wrap.
func pad4(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }

// readSHB reads a Section Header Block at off, which starts a new section
// with its own byte order and interfaces.
func (f *file) readSHB(off int64) error {
	b, err := f.br.Peek(12)
	if len(b) < 12 {
		return f.short(off, err, "section header block has %d of %d bytes", len(b), 12)
	}
	switch {
	case binary.BigEndian.Uint32(b[8:12]) == ngByteOrderMagic:
		f.big = true
	case binary.LittleEndian.Uint32(b[8:12]) == ngByteOrderMagic:
		f.big = false
	default:
		if off == 0 {
			return f.errAt(off, f.proto, fmt.Errorf("%w: section header block has no byte-order magic", event.ErrFormat))
		}
		return f.corrupt(off, "section header block has no byte-order magic")
	}
	total := f.u32(b[4:8])
	if err := f.checkLen(off, ngBlockSHB, total); err != nil {
		return err
	}
	b, err = f.br.Peek(16)
	if len(b) < 16 {
		return f.short(off, err, "section header block has %d of %d bytes", len(b), total)
	}
	// Wireshark reads version 1.0, and 1.2, which some writers used by
	// mistake for the same format.
	major, minor := f.u16(b[12:14]), f.u16(b[14:16])
	if major != 1 || minor != 0 && minor != 2 {
		return f.errAt(off, f.proto, fmt.Errorf("%w: unsupported pcapng version %d.%d", event.ErrFormat, major, minor))
	}
	f.ifaces = f.ifaces[:0]
	return f.skipBlock(off, total)
}

// checkLen checks a block's total length against the limits.
func (f *file) checkLen(off int64, typ, total uint32) error {
	minLen := ngMinLen(typ)
	switch {
	case total < minLen:
		return f.corrupt(off, "block type %#x has length %d, less than %d", typ, total, minLen)
	case total%4 != 0:
		return f.corrupt(off, "block length %d is not a multiple of 4", total)
	case total > maxBlockLen:
		return f.corrupt(off, "block length %d exceeds the %d-byte limit", total, maxBlockLen)
	}
	return nil
}

// skipBlock consumes the rest of the block at off, whose total length is
// total, and checks its trailing length.
func (f *file) skipBlock(off int64, total uint32) error {
	end := off + int64(total) - 4
	if n := end - f.off; n > 0 {
		if m, err := f.discard(n); m < n {
			return f.short(off, err, "block has %d of %d bytes", f.off-off, total)
		}
	}
	t, err := f.br.Peek(4)
	if len(t) < 4 {
		return f.short(off, err, "block has %d of %d bytes", f.off-off+int64(len(t)), total)
	}
	if tt := f.u32(t); tt != total {
		return f.corrupt(off, "block length %d does not match trailing length %d", total, tt)
	}
	f.discard(4)
	return nil
}

// nextPcapng reads blocks up to and including the next packet block.
func (f *file) nextPcapng(p *Packet) error {
	for {
		off := f.off
		h, err := f.br.Peek(8)
		if len(h) < 8 {
			if len(h) == 0 && err == io.EOF {
				return io.EOF
			}
			return f.short(off, err, "block header has %d of 8 bytes", len(h))
		}
		typ := f.u32(h[0:4])
		if typ == ngBlockSHB {
			if err := f.readSHB(off); err != nil {
				return err
			}
			continue
		}
		total := f.u32(h[4:8])
		if err := f.checkLen(off, typ, total); err != nil {
			return err
		}
		switch typ {
		case ngBlockEPB, ngBlockOPB:
			return f.readEPB(p, off, typ, total)
		case ngBlockSPB:
			return f.readSPB(p, off, total)
		case ngBlockIDB:
			err = f.readIDB(off, total)
		case ngBlockDSB:
			err = f.readDSB(off, total)
		default:
			if wiresharkFrame(typ) {
				f.uncounted++
			}
			err = f.skipBlock(off, total)
		}
		if err != nil {
			return err
		}
	}
}

// wiresharkFrame reports whether Wireshark (4.0) shows a block of type typ
// as a frame of its own although it holds no packet: custom blocks, systemd
// journal export blocks and Sysdig event blocks. They are skipped, but
// their frame numbers are left unused so that the numbers of the packets
// after them are Wireshark's.
func wiresharkFrame(typ uint32) bool {
	switch typ {
	case 0x00000bad, 0x40000bad, // custom blocks
		0x00000009,                         // systemd journal export
		0x00000204, 0x00000216, 0x00000221: // Sysdig events
		return true
	}
	return false
}

// readEPB reads an Enhanced Packet Block, or the obsolete Packet Block of
// the same layout with a 16-bit interface id.
// copyOut copies bytes [from, to) of the block at off, whose length is
// total, into the file's scratch buffer and skips the rest of the block:
// for packet data in a block longer than the read buffer. The result is
// valid until the next copyOut.
func (f *file) copyOut(off int64, total uint32, from, to int) ([]byte, error) {
	b, err := f.br.Peek(to)
	if len(b) < to {
		return nil, f.short(off, err, "block has %d of %d bytes", len(b), total)
	}
	if cap(f.scratch) < to-from {
		f.scratch = make([]byte, to-from)
	}
	data := f.scratch[:to-from]
	copy(data, b[from:to])
	if err := f.skipBlock(off, total); err != nil {
		return nil, err
	}
	return data, nil
}

func (f *file) readEPB(p *Packet, off int64, typ, total uint32) error {
	const fixed = 28 // header and fixed fields
	b, err := f.br.Peek(fixed)
	if len(b) < fixed {
		return f.short(off, err, "block has %d of %d bytes", len(b), total)
	}
	var id uint32
	if typ == ngBlockEPB {
		id = f.u32(b[8:12])
	} else {
		id = uint32(f.u16(b[8:10]))
	}
	units := uint64(f.u32(b[12:16]))<<32 | uint64(f.u32(b[16:20]))
	caplen, origlen := f.u32(b[20:24]), f.u32(b[24:28])
	switch {
	case uint64(caplen) > uint64(f.maxCap):
		return f.corrupt(off, "captured length %d exceeds the %d-byte limit", caplen, f.maxCap)
	case fixed+pad4(caplen)+4 > uint64(total):
		return f.corrupt(off, "captured length %d does not fit in a %d-byte block", caplen, total)
	case uint64(id) >= uint64(len(f.ifaces)):
		return f.corrupt(off, "packet on interface %d; the section defines %d", id, len(f.ifaces))
	}
	ifc := &f.ifaces[id]
	n := fixed + int(caplen)
	if int(total) <= f.br.Size() {
		// The common case: the whole block is in the buffer, and the
		// packet data is taken from it.
		b, err = f.br.Peek(int(total))
		if len(b) < int(total) {
			return f.short(off, err, "block has %d of %d bytes", len(b), total)
		}
		if tt := f.u32(b[total-4:]); tt != total {
			return f.corrupt(off, "block length %d does not match trailing length %d", total, tt)
		}
		p.Data = b[fixed:n:n]
		f.br.Discard(int(total))
		f.off += int64(total)
	} else {
		// Options too long for the buffer: copy the data out first.
		if p.Data, err = f.copyOut(off, total, fixed, n); err != nil {
			return err
		}
	}
	p.File = f.index
	p.TS = ifc.ts(units)
	if !writableTS(p.TS) {
		// A timestamp no date format can write (RFC 3339 stops at year
		// 9999): a damaged block; keep the previous packet's time.
		p.TS = f.lastTS
	}
	f.lastTS = p.TS
	p.LinkType = ifc.linkType
	p.OrigLen = int(origlen)
	p.Offset = off
	return nil
}

// readSPB reads a Simple Packet Block. It has no timestamp: the packet gets
// the timestamp of the file's previous packet (the zero time if there is
// none), so that it keeps its place in a merge.
func (f *file) readSPB(p *Packet, off int64, total uint32) error {
	const fixed = 12
	b, err := f.br.Peek(fixed)
	if len(b) < fixed {
		return f.short(off, err, "block has %d of %d bytes", len(b), total)
	}
	if len(f.ifaces) == 0 {
		return f.corrupt(off, "simple packet block before any interface description block")
	}
	ifc := &f.ifaces[0]
	origlen := f.u32(b[8:12])
	caplen := min(origlen, total-16)
	if ifc.snapLen != 0 {
		caplen = min(caplen, ifc.snapLen)
	}
	if uint64(caplen) > uint64(f.maxCap) {
		return f.corrupt(off, "captured length %d exceeds the %d-byte limit", caplen, f.maxCap)
	}
	// The block may be longer than the buffer, so copy (this block type is
	// rare, and never in the files of today's tools).
	data, err := f.copyOut(off, total, fixed, fixed+int(caplen))
	if err != nil {
		return err
	}
	p.File = f.index
	p.TS = f.lastTS
	p.LinkType = ifc.linkType
	p.Data = data
	p.OrigLen = int(origlen)
	p.Offset = off
	return nil
}

// readIDB reads an Interface Description Block.
func (f *file) readIDB(off int64, total uint32) error {
	if len(f.ifaces) >= maxInterfaces {
		return f.corrupt(off, "more than %d interfaces in one section", maxInterfaces)
	}
	n := min(int(total), f.br.Size())
	b, err := f.br.Peek(n)
	if len(b) < n {
		return f.short(off, err, "block has %d of %d bytes", len(b), total)
	}
	ifc := iface{
		linkType: layers.LinkType(f.u16(b[8:10])),
		snapLen:  f.u32(b[12:16]),
		exp:      6,
	}
	opts := b[16:]
	if n == int(total) {
		opts = b[16 : n-4]
	}
	// A malformed option ends the options, as in Wireshark, rather than
	// the file: what was read so far is kept.
	for len(opts) >= 4 {
		code, l := f.u16(opts[0:2]), int(f.u16(opts[2:4]))
		if code == ngOptEnd || 4+l > len(opts) {
			break
		}
		v := opts[4 : 4+l]
		switch {
		case code == ngOptTSResol && l == 1:
			ifc.binary, ifc.exp = v[0]&0x80 != 0, v[0]&0x7f
		case code == ngOptTSOffset && l == 8:
			ifc.offset = int64(f.u64(v))
		}
		opts = opts[min(4+int(pad4(uint32(l))), len(opts)):]
	}
	f.ifaces = append(f.ifaces, ifc)
	return f.skipBlock(off, total)
}

// readDSB reads a Decryption Secrets Block and keeps its payload.
func (f *file) readDSB(off int64, total uint32) error {
	const fixed = 16
	b, err := f.br.Peek(fixed)
	if len(b) < fixed {
		return f.short(off, err, "block has %d of %d bytes", len(b), total)
	}
	typ, l := f.u32(b[8:12]), f.u32(b[12:16])
	switch {
	case fixed+pad4(l)+4 > uint64(total):
		return f.corrupt(off, "secrets length %d does not fit in a %d-byte block", l, total)
	case l > maxSecretLen:
		return f.corrupt(off, "secrets length %d exceeds the %d-byte limit", l, maxSecretLen)
	case f.r.secretBytes+int(l) > maxSecretsTotal:
		return f.corrupt(off, "decryption secrets exceed the %d-byte limit for all files", maxSecretsTotal)
	}
	f.discard(fixed)
	// Grow the copy as bytes arrive, not from the length field.
	data := make([]byte, 0, min(int(l), f.br.Size()))
	for len(data) < int(l) {
		want := min(int(l)-len(data), f.br.Size())
		c, err := f.br.Peek(want)
		data = append(data, c...)
		f.discard(int64(len(c)))
		if len(c) < want {
			return f.short(off, err, "block has %d of %d bytes", f.off-off, total)
		}
	}
	if err := f.skipBlock(off, total); err != nil {
		return err
	}
	f.r.secrets = append(f.r.secrets, Secret{Type: typ, Data: data, File: f.index})
	f.r.secretBytes += len(data)
	return nil
}
