package layer

import (
	"encoding/binary"
	"net/netip"
)

// TCP option kinds Decode reads.
const (
	optEOL           = 0
	optNOP           = 1
	optMSS           = 2
	optWScale        = 3
	optSACKPermitted = 4
)

// maxWScale is the largest window-scale shift RFC 7323 section 2.3 allows;
// larger values are used as 14.
const maxWScale = 14

// tcp decodes a TCP header into d.seg. b is the IP payload (captured part)
// and rep its length as IP declares it.
//
// It does not use layers.TCP, which allocates for every MPTCP option (one
// per segment on an MPTCP connection) and builds an option slice this
// package does not need; the fixed header is read in place and the three
// options we keep are read by a bounds-checked walk.
func (d *Decoder) tcp(b []byte, rep int, src, dst netip.Addr) (Result, error) {
	if len(b) < 20 {
		return d.short(LayerTCP, b, rep, 20)
	}
	hl := int(b[12]>>4) * 4
	if hl < 20 {
		return d.fail(LayerTCP, b, errTCPOffset)
	}
	if rep < hl {
		return d.fail(LayerTCP, b, shortFrame[LayerTCP])
	}
	if len(b) < hl {
		return d.fail(LayerTCP, b, truncated[LayerTCP])
	}
	s := d.seg
	s.Src = netip.AddrPortFrom(src, be16(b[0:]))
	s.Dst = netip.AddrPortFrom(dst, be16(b[2:]))
	s.Seq = binary.BigEndian.Uint32(b[4:])
	s.Ack = binary.BigEndian.Uint32(b[8:])
	s.Flags = Flags(be16(b[12:]) & 0x01FF)
	s.Win = be16(b[14:])
	s.WScale, s.MSS, s.SACKPermitted = -1, 0, false
	s.parseOptions(b[20:hl])
	s.PayloadLen = rep - hl
	s.Payload = b[hl:]
	s.Sum, s.Summed = 0, false
	return Result{Kind: KindTCP, Layer: LayerTCP, Offset: d.offset(b), Tunnels: d.tunnels}, nil
}

// parseOptions reads the MSS, window scale and SACK-permitted options. It
// stops at the end-of-list option and at the first option whose length is
// below 2 or runs past the header, as receivers do; an option of the wrong
// length for its kind is ignored. When an option repeats, the last one
// counts, as in Linux.
func (s *Segment) parseOptions(o []byte) {
	for len(o) > 0 {
		kind := o[0]
		if kind == optEOL {
			return
		}
		if kind == optNOP {
			o = o[1:]
			continue
		}
		if len(o) < 2 {
			return
		}
		n := int(o[1])
		if n < 2 || n > len(o) {
			return
		}
		switch {
		case kind == optMSS && n == 4:
			s.MSS = be16(o[2:])
		case kind == optWScale && n == 3:
			s.WScale = int8(min(o[2], maxWScale))
		case kind == optSACKPermitted && n == 2:
			s.SACKPermitted = true
		}
		o = o[n:]
	}
}
