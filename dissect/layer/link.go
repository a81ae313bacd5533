package layer

import (
	"encoding/binary"
)

// EtherType values Decode follows.
const (
	etLLC     = 0 // pseudo EtherType: an IEEE 802.2 LLC header follows (802.3 length field)
	etIPv4    = 0x0800
	etIPv6    = 0x86DD
	etVLAN    = 0x8100 // IEEE 802.1Q
	etQinQ    = 0x88A8 // IEEE 802.1ad
	etQinQOld = 0x9100 // pre-standard QinQ
	etMPLS    = 0x8847
	etMPLSMC  = 0x8848
	etPPPoE   = 0x8864 // PPPoE session stage
	etTEB     = 0x6558 // transparent Ethernet bridging (GRE, Geneve)
	etPPP     = 0x880B // PPP (PPTP's enhanced GRE)
)

// be16 reads a big-endian uint16; callers check len(b) >= 2.
func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// limit bounds a payload b, whose reported length is rep, to the n bytes
// an enclosing header declares.
func limit(b []byte, rep, n int) ([]byte, int) {
	if n < len(b) {
		b = b[:n]
	}
	return b, min(rep, n)
}

// ethernet decodes an Ethernet II or IEEE 802.3 header, as layers.Ethernet
// does but in place: that layer's decoding stores four slices per frame.
func (d *Decoder) ethernet(b []byte, rep int) (Result, error) {
	if len(b) < 14 {
		return d.short(LayerEthernet, b, rep, 14)
	}
	et, p, prep := be16(b[12:]), b[14:], rep-14
	if et < 0x600 {
		// An 802.3 length field: the payload ends there.
		p, prep = limit(p, prep, int(et))
		return d.ethertype(etLLC, p, prep, LayerEthernet)
	}
	return d.ethertype(et, p, prep, LayerEthernet)
}

// ethertype follows an EtherType through VLAN tags and LLC/SNAP headers to
// IP, MPLS or PPPoE. from is the layer b is the payload of.
func (d *Decoder) ethertype(et uint16, b []byte, rep int, from Layer) (Result, error) {
	for range maxTags {
		switch et {
		case etIPv4, etIPv6:
			return d.ip(b, rep)
		case etMPLS, etMPLSMC:
			return d.mpls(b, rep)
		case etPPPoE:
			return d.pppoe(b, rep)
		case etVLAN, etQinQ, etQinQOld:
			if len(b) < 4 {
				return d.short(LayerVLAN, b, rep, 4)
			}
			// As layers.Dot1Q decodes it, in place.
			et, b, rep, from = be16(b[2:]), b[4:], rep-4, LayerVLAN
			if et < 0x600 {
				// An 802.3 length: the payload ends there.
				b, rep = limit(b, rep, int(et))
				et = etLLC
			}
		case etLLC:
			// IEEE 802.2 LLC: only SNAP with an EtherType (RFC 1042 or
			// 802.1H bridge tunnel OUI) leads anywhere we go.
			if len(b) < 3 {
				return d.short(LayerLLC, b, rep, 3)
			}
			if b[0] != 0xAA || b[1] != 0xAA || b[2] != 0x03 {
				return d.done(KindNonIP, LayerLLC, b)
			}
			if len(b) < 8 {
				return d.short(LayerLLC, b, rep, 8)
			}
			if b[3] != 0 || b[4] != 0 || (b[5] != 0 && b[5] != 0xF8) {
				return d.done(KindNonIP, LayerLLC, b)
			}
			et, b, rep, from = be16(b[6:]), b[8:], rep-8, LayerLLC
			if et < 0x600 {
				return d.done(KindNonIP, LayerLLC, b)
			}
		default:
			return d.done(KindNonIP, from, b)
		}
	}
	return d.fail(from, b, errTooDeep)
}

// mpls skips an MPLS label stack and guesses the payload from its first
// nibble, as Wireshark does when no pseudowire is configured.
func (d *Decoder) mpls(b []byte, rep int) (Result, error) {
	for range maxLabels {
		if len(b) < 4 {
			return d.short(LayerMPLS, b, rep, 4)
		}
		bottom := b[2]&1 != 0
		b, rep = b[4:], rep-4
		if !bottom {
			continue
		}
		if len(b) == 0 {
			if rep > 0 {
				return d.fail(LayerMPLS, b, truncated[LayerMPLS])
			}
			return d.done(KindNonIP, LayerMPLS, b)
		}
		if v := b[0] >> 4; v == 4 || v == 6 {
			return d.ip(b, rep)
		}
		return d.done(KindNonIP, LayerMPLS, b)
	}
	return d.fail(LayerMPLS, b, errTooDeep)
}

// pppoe decodes a PPPoE session header and the PPP frame it carries.
func (d *Decoder) pppoe(b []byte, rep int) (Result, error) {
	if len(b) < 6 {
		return d.short(LayerPPPoE, b, rep, 6)
	}
	n := int(be16(b[4:]))
	b, rep = limit(b[6:], rep-6, n)
	return d.ppp(b, rep)
}

// pppHDLC decodes LINKTYPE_PPP and LINKTYPE_PPP_HDLC frames: PPP with or
// without the HDLC-like address and control bytes (RFC 1662), or Cisco
// HDLC framing (RFC 1547 section 4.3.1), told apart by the first byte.
func (d *Decoder) pppHDLC(b []byte, rep int) (Result, error) {
	if len(b) > 0 && (b[0] == 0x0F || b[0] == 0x8F) {
		return d.chdlc(b, rep)
	}
	return d.ppp(b, rep)
}

// ppp decodes a PPP header: optional 0xFF 0x03, then a one- or two-byte
// protocol field (RFC 1661 protocol field compression).
func (d *Decoder) ppp(b []byte, rep int) (Result, error) {
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0x03 {
		b, rep = b[2:], rep-2
	}
	if len(b) < 1 {
		return d.short(LayerPPP, b, rep, 1)
	}
	proto, n := uint16(b[0]), 1
	if b[0]&1 == 0 {
		if len(b) < 2 {
			return d.short(LayerPPP, b, rep, 2)
		}
		proto, n = be16(b), 2
		if proto&1 == 0 {
			return d.fail(LayerPPP, b, errPPP)
		}
	}
	h := b
	b, rep = b[n:], rep-n
	switch proto {
	case 0x0021, 0x0057: // IPv4, IPv6
		return d.ip(b, rep)
	case 0x0281, 0x0283: // MPLS unicast, multicast
		return d.mpls(b, rep)
	}
	return d.done(KindNonIP, LayerPPP, h)
}

// chdlc decodes a Cisco HDLC header: address, control, EtherType.
func (d *Decoder) chdlc(b []byte, rep int) (Result, error) {
	if len(b) < 4 {
		return d.short(LayerCHDLC, b, rep, 4)
	}
	return d.ethertype(be16(b[2:]), b[4:], rep-4, LayerCHDLC)
}

// sllPayload dispatches on the protocol field of a Linux cooked header.
func (d *Decoder) sllPayload(hatype, proto uint16, b []byte, rep int, from Layer) (Result, error) {
	const (
		arphrdNetlink = 824    // protocol is a netlink family, not an EtherType
		sllP8022      = 0x0004 // LINUX_SLL_P_802_2: an 802.2 LLC header follows
	)
	switch {
	case hatype == arphrdNetlink:
		return d.done(KindNonIP, from, b)
	case proto >= 0x600:
		return d.ethertype(proto, b, rep, from)
	case proto == sllP8022:
		return d.ethertype(etLLC, b, rep, from)
	}
	return d.done(KindNonIP, from, b)
}

// sll decodes a Linux cooked capture v1 header (16 bytes). The address
// length field is not checked: libpcap records the real length (20 for
// InfiniBand) but only 8 address bytes, and Wireshark ignores it too.
func (d *Decoder) sll(b []byte, rep int) (Result, error) {
	if len(b) < 16 {
		return d.short(LayerSLL, b, rep, 16)
	}
	return d.sllPayload(be16(b[2:]), be16(b[14:]), b[16:], rep-16, LayerSLL)
}

// sll2 decodes a Linux cooked capture v2 header (20 bytes).
func (d *Decoder) sll2(b []byte, rep int) (Result, error) {
	if len(b) < 20 {
		return d.short(LayerSLL2, b, rep, 20)
	}
	return d.sllPayload(be16(b[8:]), be16(b[0:]), b[20:], rep-20, LayerSLL2)
}

// null decodes a BSD loopback header: a 4-byte address family, in the
// byte order of the capturing host for LINKTYPE_NULL (guessed as Wireshark
// does, from which half is zero), big-endian for LINKTYPE_LOOP.
func (d *Decoder) null(b []byte, rep int, bigEndian bool) (Result, error) {
	if len(b) < 4 {
		return d.short(LayerNull, b, rep, 4)
	}
	af := binary.BigEndian.Uint32(b)
	if !bigEndian {
		if le := binary.LittleEndian.Uint32(b); le&0xFFFF0000 == 0 {
			af = le
		}
	}
	switch af {
	case 2, // AF_INET
		24, // AF_INET6 on NetBSD, OpenBSD, BSD/OS
		28, // AF_INET6 on FreeBSD, DragonFly BSD
		30: // AF_INET6 on Darwin
		return d.ip(b[4:], rep-4)
	}
	return d.done(KindNonIP, LayerNull, b)
}

// nflog decodes a LINKTYPE_NFLOG frame: a 4-byte header (address family,
// version, resource id) and a list of TLVs, whose type and length are in
// the byte order of the capturing host; the packet is in TLV type 9
// (NFULA_PAYLOAD). The byte order is guessed from the first TLV's type,
// which is small in the right order. As in Wireshark, the payload is IPv4
// or IPv6 by the address family, or else goes by the EtherType in the
// NFULA_PACKET_HDR TLV (bridge family).
func (d *Decoder) nflog(b []byte, rep int) (Result, error) {
	const (
		tlvPacketHdr = 1
		tlvPayload   = 9
		afInet       = 2
		afInet6      = 10
		typeMask     = 0x3FFF // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	)
	if len(b) < 4 {
		return d.short(LayerNFLog, b, rep, 4)
	}
	h := b
	family := b[0]
	b, rep = b[4:], rep-4
	le := true
	if len(b) >= 4 && binary.LittleEndian.Uint16(b[2:])&typeMask > 0xFF && binary.BigEndian.Uint16(b[2:])&typeMask <= 0xFF {
		le = false
	}
	var (
		payload []byte
		prep    = -1 // -1: no payload TLV yet
		hwProto uint16
	)
	for len(b) > 0 {
		// Once the payload is found, a damaged TLV after it does not matter.
		if len(b) < 4 {
			if prep >= 0 {
				break
			}
			return d.short(LayerNFLog, b, rep, 4)
		}
		n, typ := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
		if !le {
			n, typ = be16(b), be16(b[2:])
		}
		if n < 4 {
			if prep >= 0 {
				break
			}
			return d.fail(LayerNFLog, b, errNFLogTLV)
		}
		switch typ & typeMask {
		case tlvPacketHdr:
			if n >= 6 && len(b) >= 6 {
				hwProto = be16(b[4:])
			}
		case tlvPayload:
			payload, prep = limit(b[4:], rep-4, int(n)-4)
		}
		step := (int(n) + 3) &^ 3
		if step > len(b) {
			if prep >= 0 {
				break
			}
			if step > rep {
				return d.fail(LayerNFLog, b, errNFLogTLV)
			}
			return d.fail(LayerNFLog, b, truncated[LayerNFLog])
		}
		b, rep = b[step:], rep-step
	}
	switch {
	case prep < 0 && rep > 0:
		return d.fail(LayerNFLog, b, truncated[LayerNFLog])
	case prep < 0:
		return d.done(KindNonIP, LayerNFLog, h) // a log message without the packet
	case family == afInet || family == afInet6:
		return d.ip(payload, prep)
	case hwProto >= 0x600:
		return d.ethertype(hwProto, payload, prep, LayerNFLog)
	}
	return d.done(KindNonIP, LayerNFLog, h)
}

// ipoib decodes a LINKTYPE_IPOIB frame. In pcap files the 4-byte IPoIB
// header (RFC 4391 section 6: EtherType, reserved) is preceded by a
// 40-byte pseudo-header holding the destination address or GRH, as
// libpcap, tcpdump and Wireshark lay it out.
func (d *Decoder) ipoib(b []byte, rep int) (Result, error) {
	const hl = 44
	if len(b) < hl {
		return d.short(LayerIPoIB, b, rep, hl)
	}
	return d.ethertype(be16(b[40:]), b[hl:], rep-hl, LayerIPoIB)
}

// Radiotap flags (field 1).
const (
	radiotapFCS     = 0x10 // the frame ends with a 4-byte FCS
	radiotapDataPad = 0x20 // the 802.11 header is padded to a multiple of 4
)

// radiotap decodes a radiotap header and the 802.11 frame after it. The
// version byte is not checked, as Wireshark does not check it.
func (d *Decoder) radiotap(b []byte, rep int) (Result, error) {
	if len(b) < 8 {
		return d.short(LayerRadiotap, b, rep, 8)
	}
	hl := int(binary.LittleEndian.Uint16(b[2:]))
	if hl < 8 {
		return d.fail(LayerRadiotap, b, errRadiotapLen)
	}
	if len(b) < hl {
		return d.short(LayerRadiotap, b, rep, hl)
	}
	flags := radiotapFlags(b[:hl])
	p, prep := b[hl:], rep-hl
	if flags&radiotapFCS != 0 && prep >= 4 {
		p, prep = limit(p, prep, prep-4)
	}
	return d.dot11(p, prep, flags&radiotapDataPad != 0)
}

// radiotapFlags returns the radiotap Flags field of header h, or 0 when it
// is absent. Fields follow the chain of 32-bit presence bitmaps (bit 31
// says another follows); Flags (bit 1) comes after TSFT (bit 0, 8 bytes
// aligned to 8 from the start of the header).
func radiotapFlags(h []byte) byte {
	off := 4
	first := binary.LittleEndian.Uint32(h[off:])
	for w := first; w&(1<<31) != 0; w = binary.LittleEndian.Uint32(h[off:]) {
		off += 4
		if off+4 > len(h) {
			return 0
		}
	}
	off += 4
	if first&(1<<1) == 0 {
		return 0
	}
	if first&(1<<0) != 0 {
		off = (off+7)&^7 + 8
	}
	if off >= len(h) {
		return 0
	}
	return h[off]
}

// dot11 decodes an IEEE 802.11 data frame header and hands its LLC payload
// on. Management, control and extension frames, data frames without data,
// protected frames and A-MSDUs are not followed. dataPad says a radiotap
// header announced padding after the 802.11 header.
func (d *Decoder) dot11(b []byte, rep int, dataPad bool) (Result, error) {
	const (
		fcToDS      = 0x01
		fcFromDS    = 0x02
		fcMoreFrag  = 0x04
		fcProtected = 0x40
		fcOrder     = 0x80 // +HTC in QoS data frames
		typeData    = 2
		subNoData   = 0x4 // Null, QoS Null, CF-Ack/Poll without data
		subQoS      = 0x8
		qosAMSDU    = 0x80 // A-MSDU present, in the QoS control's first byte
	)
	if len(b) < 2 {
		return d.short(LayerDot11, b, rep, 2)
	}
	fc0, fc1 := b[0], b[1]
	if fc0&3 != 0 {
		return d.fail(LayerDot11, b, errDot11Version)
	}
	typ, sub := (fc0>>2)&3, fc0>>4
	if typ != typeData || sub&subNoData != 0 {
		return d.done(KindNonIP, LayerDot11, b)
	}
	hl := 24
	if fc1&(fcToDS|fcFromDS) == fcToDS|fcFromDS {
		hl += 6 // Address 4
	}
	qos := hl
	if sub&subQoS != 0 {
		hl += 2
		if fc1&fcOrder != 0 {
			hl += 4 // HT/VHT/HE control
		}
	}
	if dataPad {
		hl = (hl + 3) &^ 3
	}
	if len(b) < hl {
		return d.short(LayerDot11, b, rep, hl)
	}
	switch {
	case fc1&fcProtected != 0:
		return d.done(KindNonIP, LayerDot11, b)
	case fc1&fcMoreFrag != 0 || b[22]&0x0F != 0:
		return d.done(KindFragment, LayerDot11, b)
	case sub&subQoS != 0 && b[qos]&qosAMSDU != 0:
		return d.done(KindNonIP, LayerDot11, b)
	}
	return d.ethertype(etLLC, b[hl:], rep-hl, LayerDot11)
}
