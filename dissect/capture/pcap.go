package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/h2scope/h2scope/dissect/event"
)

// How the captured and original length fields of a pcap record are ordered.
// They were interchanged at version 2.3, and some 2.3 files were written
// with the old order; libpcap and Wireshark guess, and so does this reader.
const (
	swapNever  = iota // version 2.4 and later
	swapAlways        // versions before 2.3, and DG/UX's 543.0
	swapMaybe         // version 2.3: swap when caplen > len
)

const pcapFileHeaderLen = 24

// readPcapHeader reads the 24-byte pcap file header.
func (f *file) readPcapHeader() error {
	b, err := f.br.Peek(pcapFileHeaderLen)
	if len(b) < pcapFileHeaderLen {
		return f.short(0, err, "file header has %d of %d bytes", len(b), pcapFileHeaderLen)
	}
	switch binary.BigEndian.Uint32(b) {
	case 0xa1b2c3d4:
		f.big = true
	case 0xa1b23c4d:
		f.big, f.nanos = true, true
	case 0xa1b2cd34:
		f.big = true
		f.recHdrLen = 24
	case 0xd4c3b2a1:
	case 0x4d3cb2a1:
		f.nanos = true
	case 0x34cdb2a1:
		f.recHdrLen = 24
	}
	if f.recHdrLen == 0 {
		f.recHdrLen = 16
	}
	major, minor := f.u16(b[4:6]), f.u16(b[6:8])
	// As Wireshark: versions before 2 are refused, later ones read as 2.4.
	switch {
	case major < 2:
		return f.errAt(0, f.proto, fmt.Errorf("%w: unsupported pcap version %d.%d", event.ErrFormat, major, minor))
	case major == 2 && minor < 3, major == 543:
		f.lenSwap = swapAlways
	case major == 2 && minor == 3:
		f.lenSwap = swapMaybe
	default:
		f.lenSwap = swapNever
	}
	// thiszone and sigfigs (8:16) are always zero in practice and ignored
	// by Wireshark; the snap length (16:20) is not a limit either, since
	// writers exceed it and readers accept that. The upper bits of the link
	// type field carry the FCS length (LT_FCS_LENGTH), not the link type.
	f.linkType = layers.LinkType(f.u32(b[20:24]) & 0x03ffffff)
	f.discard(pcapFileHeaderLen)
	return nil
}

// nextPcap reads one pcap record.
func (f *file) nextPcap(p *Packet) error {
	start := f.off
	hl := f.recHdrLen
	h, err := f.br.Peek(hl)
	if len(h) < hl {
		if len(h) == 0 && err == io.EOF {
			return io.EOF
		}
		return f.short(start, err, "record header has %d of %d bytes", len(h), hl)
	}
	sec, frac := f.u32(h[0:4]), f.u32(h[4:8])
	caplen, origlen := f.u32(h[8:12]), f.u32(h[12:16])
	if f.lenSwap == swapAlways || f.lenSwap == swapMaybe && caplen > origlen {
		caplen, origlen = origlen, caplen
	}
	if uint64(caplen) > uint64(f.maxCap) {
		return f.corrupt(start, "captured length %d exceeds the %d-byte limit", caplen, f.maxCap)
	}
	n := hl + int(caplen)
	b, err := f.br.Peek(n)
	if len(b) < n {
		return f.short(start, err, "packet data has %d of %d bytes", len(b)-hl, caplen)
	}
	f.br.Discard(n)
	f.off += int64(n)

	nsec := int64(frac)
	if !f.nanos {
		nsec *= 1000
	}
	p.File = f.index
	p.TS = time.Unix(int64(sec), nsec).UTC()
	p.LinkType = f.linkType
	p.Data = b[hl:n:n]
	p.OrigLen = int(origlen)
	p.Offset = start
	return nil
}
