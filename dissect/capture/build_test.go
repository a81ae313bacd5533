package capture

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// This file builds capture files byte by byte, for the cases pcapgo's
// writers cannot produce: big-endian files, other pcap versions and magic
// numbers, pcapng timestamp resolutions and offsets, several sections,
// Simple and obsolete Packet Blocks, and damaged files.

// order is a byte order that also appends.
type order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

var (
	le order = binary.LittleEndian
	be order = binary.BigEndian
)

// pcapFile builds a classic pcap file.
type pcapFile struct {
	bytes.Buffer
	o order
}

// newPcapFile writes a file header. magic is written in byte order o.
func newPcapFile(o order, magic uint32, major, minor uint16, snaplen, link uint32) *pcapFile {
	f := &pcapFile{o: o}
	f.u32(magic)
	f.u16(major)
	f.u16(minor)
	f.u32(0) // thiszone
	f.u32(0) // sigfigs
	f.u32(snaplen)
	f.u32(link)
	return f
}

func (f *pcapFile) u16(v uint16) { f.Write(f.o.AppendUint16(nil, v)) }
func (f *pcapFile) u32(v uint32) { f.Write(f.o.AppendUint32(nil, v)) }

// rec writes a record header with the given fields and then data, which
// need not be caplen bytes long.
func (f *pcapFile) rec(sec, frac, caplen, origlen uint32, data []byte) *pcapFile {
	f.u32(sec)
	f.u32(frac)
	f.u32(caplen)
	f.u32(origlen)
	f.Write(data)
	return f
}

// pkt writes a well-formed record.
func (f *pcapFile) pkt(sec, frac uint32, data []byte) *pcapFile {
	return f.rec(sec, frac, uint32(len(data)), uint32(len(data)), data)
}

// ngFile builds a pcapng file.
type ngFile struct {
	bytes.Buffer
	o order
}

// ngOpt is one pcapng option.
type ngOpt struct {
	code uint16
	val  []byte
}

func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// opts encodes options, with the end-of-options marker.
func (f *ngFile) opts(os []ngOpt) []byte {
	if len(os) == 0 {
		return nil
	}
	var b []byte
	for _, o := range os {
		b = f.o.AppendUint16(b, o.code)
		b = f.o.AppendUint16(b, uint16(len(o.val)))
		b = pad(append(b, o.val...))
	}
	return append(b, 0, 0, 0, 0)
}

// block writes a block of type typ around body, padded.
func (f *ngFile) block(typ uint32, body []byte) *ngFile {
	body = pad(bytes.Clone(body))
	n := uint32(12 + len(body))
	f.Write(f.o.AppendUint32(nil, typ))
	f.Write(f.o.AppendUint32(nil, n))
	f.Write(body)
	f.Write(f.o.AppendUint32(nil, n))
	return f
}

// shb starts a section in byte order o, version 1.0.
func (f *ngFile) shb(o order) *ngFile { return f.shbVersion(o, 1, 0) }

func (f *ngFile) shbVersion(o order, major, minor uint16) *ngFile {
	f.o = o
	var b []byte
	b = o.AppendUint32(b, ngByteOrderMagic)
	b = o.AppendUint16(b, major)
	b = o.AppendUint16(b, minor)
	b = o.AppendUint64(b, ^uint64(0))
	return f.block(ngBlockSHB, b)
}

func newNgFile(o order) *ngFile { return new(ngFile).shb(o) }

// idb adds an interface.
func (f *ngFile) idb(link uint16, snaplen uint32, os ...ngOpt) *ngFile {
	var b []byte
	b = f.o.AppendUint16(b, link)
	b = f.o.AppendUint16(b, 0)
	b = f.o.AppendUint32(b, snaplen)
	return f.block(ngBlockIDB, append(b, f.opts(os)...))
}

func tsresol(v byte) ngOpt { return ngOpt{ngOptTSResol, []byte{v}} }

func (f *ngFile) tsoffset(v int64) ngOpt {
	return ngOpt{ngOptTSOffset, f.o.AppendUint64(nil, uint64(v))}
}

// epbBody is the body of an Enhanced Packet Block.
func (f *ngFile) epbBody(id uint32, ts uint64, caplen, origlen uint32, data []byte) []byte {
	var b []byte
	b = f.o.AppendUint32(b, id)
	b = f.o.AppendUint32(b, uint32(ts>>32))
	b = f.o.AppendUint32(b, uint32(ts))
	b = f.o.AppendUint32(b, caplen)
	b = f.o.AppendUint32(b, origlen)
	return append(b, data...)
}

// epb adds an Enhanced Packet Block.
func (f *ngFile) epb(id uint32, ts uint64, data []byte, os ...ngOpt) *ngFile {
	b := pad(f.epbBody(id, ts, uint32(len(data)), uint32(len(data)), data))
	return f.block(ngBlockEPB, append(b, f.opts(os)...))
}

// opb adds an obsolete Packet Block.
func (f *ngFile) opb(id uint16, ts uint64, data []byte) *ngFile {
	var b []byte
	b = f.o.AppendUint16(b, id)
	b = f.o.AppendUint16(b, 0) // drops
	b = f.o.AppendUint32(b, uint32(ts>>32))
	b = f.o.AppendUint32(b, uint32(ts))
	b = f.o.AppendUint32(b, uint32(len(data)))
	b = f.o.AppendUint32(b, uint32(len(data)))
	return f.block(ngBlockOPB, append(b, data...))
}

// spb adds a Simple Packet Block.
func (f *ngFile) spb(origlen uint32, data []byte) *ngFile {
	return f.block(ngBlockSPB, append(f.o.AppendUint32(nil, origlen), data...))
}

// dsb adds a Decryption Secrets Block.
func (f *ngFile) dsb(typ uint32, data []byte) *ngFile {
	var b []byte
	b = f.o.AppendUint32(b, typ)
	b = f.o.AppendUint32(b, uint32(len(data)))
	return f.block(ngBlockDSB, append(b, data...))
}

// payload returns n recognisable bytes.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

// TestDumpSynthetic writes the synthetic captures of this package's tests
// to $H2SCOPE_DUMP_DIR, to check them against tshark by hand; the values in
// the tests came from doing so.
func TestDumpSynthetic(t *testing.T) {
	dir := os.Getenv("H2SCOPE_DUMP_DIR")
	if dir == "" {
		t.Skip("set H2SCOPE_DUMP_DIR to write the synthetic captures there")
	}
	for _, c := range synthetic() {
		if err := os.WriteFile(filepath.Join(dir, c.name), c.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
