package slice

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// pcapng block types and option codes this package reads or writes.
const (
	blockSHB = 0x0a0d0d0a
	blockIDB = 0x00000001
	blockOPB = 0x00000002
	blockSPB = 0x00000003
	blockEPB = 0x00000006
	blockDSB = 0x0000000a

	byteOrderMagic = 0x1a2b3c4d

	optEnd     = 0
	optComment = 1
	// optTSResol is if_tsresol, the interface's timestamp resolution.
	optTSResol = 9

	// maxBlock bounds a block's length, as dissect/capture does.
	maxBlock = 128 << 20
)

// iface is one interface as the slice writes it: an Interface Description
// Block's fields and options, options already in little-endian order.
type iface struct {
	linkType uint16
	snapLen  uint32
	options  []byte // encoded options, without the end marker
}

// rawPacket is what the source file holds about one packet beyond what
// capture.Reader returns: the interface it came from and its raw
// timestamp and options.
type rawPacket struct {
	// key names the interface: file, section and interface index.
	key ifaceKey
	// ts is the timestamp in the interface's units, as stored.
	ts uint64
	// options are the packet block's options, little-endian, without the
	// end marker.
	options []byte
}

// ifaceKey names an interface of a source file.
type ifaceKey struct {
	file, section, index int
}

// source walks one capture file's records in order, to find the block a
// capture.Packet's Offset names. It reads the file a second time,
// decompressing it as dissect/capture does.
type source struct {
	name    string
	index   int
	closer  io.Closer
	zr      *zstd.Decoder
	br      *bufio.Reader
	off     int64 // decompressed bytes consumed
	pcapng  bool
	big     bool // byte order of the current section (pcap: of the file)
	section int  // sections seen, from 0
	ifaces  []iface
	// pcap only: link type, snap length and timestamp resolution.
	pcapNanos bool
}

// openSource opens file name, index index of the inputs, and reads its
// header.
func openSource(name string, index int) (*source, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	s := &source{name: name, index: index, closer: f}
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	var in io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		in = zr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// The window bound dissect/capture takes: a file it read is read.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: zstd: %w", name, err)
		}
		s.zr, in = zr, zr
	}
	s.br = bufio.NewReaderSize(in, 1<<16)
	if err := s.header(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *source) close() {
	if s.zr != nil {
		s.zr.Close()
	}
	s.closer.Close()
}

func (s *source) errorf(off int64, format string, args ...any) error {
	return fmt.Errorf("%s: offset %d: %s", s.name, off, fmt.Sprintf(format, args...))
}

func (s *source) u16(b []byte) uint16 {
	if s.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (s *source) u32(b []byte) uint32 {
	if s.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// header reads a pcap file header (the file's one interface) or notes a
// pcapng file, whose section header is read as a block.
func (s *source) header() error {
	b, _ := s.br.Peek(24)
	if len(b) < 4 {
		return s.errorf(0, "not a capture")
	}
	switch binary.BigEndian.Uint32(b) {
	case blockSHB:
		s.pcapng = true
		s.section = -1
		return nil
	case 0xa1b2c3d4, 0xa1b2cd34:
		s.big = true
	case 0xa1b23c4d:
		s.big, s.pcapNanos = true, true
	case 0xd4c3b2a1, 0x34cdb2a1:
	case 0x4d3cb2a1:
		s.pcapNanos = true
	default:
		return s.errorf(0, "not a pcap or pcapng capture")
	}
	if len(b) < 24 {
		return s.errorf(0, "pcap file header has %d of 24 bytes", len(b))
	}
	resol := byte(6)
	if s.pcapNanos {
		resol = 9
	}
	s.ifaces = []iface{{
		linkType: uint16(s.u32(b[20:24]) & 0x03ffffff),
		snapLen:  s.u32(b[16:20]),
		options:  appendOption(nil, optTSResol, []byte{resol}),
	}}
	return nil
}

// packet returns what the source holds about the packet record at
// decompressed offset off, reading forward to it. Offsets must be asked
// in increasing order (capture.Reader returns a file's packets in file
// order).
func (s *source) packet(off int64) (rawPacket, error) {
	if !s.pcapng {
		// One interface; the record itself is not needed: capture.Packet
		// holds its bytes and time.
		return rawPacket{key: ifaceKey{s.index, 0, 0}}, nil
	}
	for {
		if s.off > off {
			return rawPacket{}, s.errorf(off, "record asked for behind the reader (at %d)", s.off)
		}
		h, _ := s.br.Peek(12)
		if len(h) < 12 {
			return rawPacket{}, s.errorf(s.off, "file ends before the packet record at %d", off)
		}
		typ := binary.LittleEndian.Uint32(h[0:4]) // the SHB type is a palindrome
		if typ == blockSHB {
			switch {
			case binary.BigEndian.Uint32(h[8:12]) == byteOrderMagic:
				s.big = true
			case binary.LittleEndian.Uint32(h[8:12]) == byteOrderMagic:
				s.big = false
			default:
				return rawPacket{}, s.errorf(s.off, "section header block has no byte-order magic")
			}
			s.section++
			s.ifaces = s.ifaces[:0]
		} else {
			typ = s.u32(h[0:4])
		}
		total := s.u32(h[4:8])
		if total < 12 || total%4 != 0 || total > maxBlock {
			return rawPacket{}, s.errorf(s.off, "block length %d", total)
		}
		start := s.off
		body := make([]byte, total)
		if n, err := io.ReadFull(s.br, body); err != nil {
			return rawPacket{}, s.errorf(start, "block has %d of %d bytes: %v", n, total, err)
		}
		s.off += int64(total)
		body = body[8 : total-4]
		switch typ {
		case blockIDB:
			if len(body) < 8 {
				return rawPacket{}, s.errorf(start, "interface description block too short")
			}
			s.ifaces = append(s.ifaces, iface{
				linkType: s.u16(body[0:2]),
				snapLen:  s.u32(body[4:8]),
				options:  s.options(body[8:], idbFixed),
			})
		case blockEPB, blockOPB, blockSPB:
			if start != off {
				continue // a packet capture.Reader returned and the slice does not keep
			}
			return s.packetBlock(start, typ, body)
		}
	}
}

// packetBlock reads a packet block's interface, timestamp and options.
func (s *source) packetBlock(off int64, typ uint32, b []byte) (rawPacket, error) {
	p := rawPacket{key: ifaceKey{s.index, s.section, 0}}
	if typ == blockSPB {
		return p, nil // interface 0, no timestamp, no options
	}
	if len(b) < 20 {
		return p, s.errorf(off, "packet block too short")
	}
	if typ == blockEPB {
		p.key.index = int(s.u32(b[0:4]))
	} else {
		p.key.index = int(s.u16(b[0:2]))
	}
	p.ts = uint64(s.u32(b[4:8]))<<32 | uint64(s.u32(b[8:12]))
	caplen := int(s.u32(b[12:16]))
	if caplen < 0 || 20+caplen > len(b) {
		return p, s.errorf(off, "captured length %d beyond the block", caplen)
	}
	if p.key.index >= len(s.ifaces) {
		return p, s.errorf(off, "packet on undefined interface %d", p.key.index)
	}
	opts := b[min(len(b), 20+(caplen+3)&^3):]
	p.options = s.options(opts, epbFixed)
	return p, nil
}

// Fixed-size numeric options, by code, whose bytes follow the section's
// byte order: they are swapped when a big-endian section is rewritten as
// little-endian. Every other option (strings, addresses, byte strings) is
// copied as it is.
var (
	idbFixed = map[uint16]bool{8: true, 10: true, 14: true} // if_speed, if_tzone, if_tsoffset
	epbFixed = map[uint16]bool{2: true, 4: true, 5: true, 6: true}
)

// options re-encodes a block's options little-endian, without the end
// marker; a malformed tail is dropped.
func (s *source) options(b []byte, fixed map[uint16]bool) []byte {
	var out []byte
	for len(b) >= 4 {
		code, n := s.u16(b[0:2]), int(s.u16(b[2:4]))
		if code == optEnd || 4+n > len(b) {
			break
		}
		v := b[4 : 4+n]
		if s.big && fixed[code] && (n == 2 || n == 4 || n == 8) {
			v = bytes.Clone(v)
			for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
				v[i], v[j] = v[j], v[i]
			}
		}
		out = appendOption(out, code, v)
		b = b[min(len(b), 4+(n+3)&^3):]
	}
	return out
}

// iface returns the interface a packet came from.
func (s *source) iface(k ifaceKey) iface {
	if k.index < len(s.ifaces) {
		return s.ifaces[k.index]
	}
	return iface{}
}

// appendOption appends one little-endian option, padded to 4 bytes.
func appendOption(b []byte, code uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, pad(len(v)))...)
}

// pad returns the bytes that pad n to a multiple of 4.
func pad(n int) int { return (4 - n%4) % 4 }
