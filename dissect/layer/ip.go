package layer

import (
	"net/netip"

	"github.com/gopacket/gopacket"
)

// IP protocol numbers Decode follows.
const (
	protoHopByHop = 0
	protoICMP     = 1
	protoIPIP     = 4
	protoTCP      = 6
	protoUDP      = 17
	protoIPv6     = 41
	protoRouting  = 43
	protoFragment = 44
	protoGRE      = 47
	protoAH       = 51
	protoICMPv6   = 58
	protoDstOpts  = 60
)

// UDP ports of the tunnels Decode opens, as Wireshark does by default.
const (
	portVXLAN  = 4789
	portGeneve = 6081
)

// ip decodes an IPv4 or IPv6 header, told apart by the version nibble as
// Wireshark's "ip" dissector does for EtherType 0x0800 and raw IP links.
func (d *Decoder) ip(b []byte, rep int) (Result, error) {
	if len(b) < 1 {
		return d.short(LayerIPv4, b, rep, 1)
	}
	switch b[0] >> 4 {
	case 4:
		return d.ipv4(b, rep)
	case 6:
		return d.ipv6(b, rep)
	}
	return d.fail(LayerIPv4, b, errIPVersion)
}

// ipv4 decodes an IPv4 header, checking the lengths itself and its
// options with layers.IPv4, which then only fails (and allocates its
// error) on bad options. The payload ends where the total length says, or where the
// frame ends if that comes first, as in Wireshark; a total length of 0 (a
// segmentation-offload capture) means "up to the end of the frame".
func (d *Decoder) ipv4(b []byte, rep int) (Result, error) {
	if len(b) < 20 {
		return d.short(LayerIPv4, b, rep, 20)
	}
	ihl := int(b[0]&0x0F) * 4
	if ihl < 20 {
		return d.fail(LayerIPv4, b, errIPv4IHL)
	}
	total := int(be16(b[2:]))
	if total == 0 {
		total = rep
	} else if total < ihl {
		return d.fail(LayerIPv4, b, errIPv4Len)
	}
	total = min(total, rep)
	if total < ihl {
		return d.fail(LayerIPv4, b, shortFrame[LayerIPv4])
	}
	if len(b) < ihl {
		return d.fail(LayerIPv4, b, truncated[LayerIPv4])
	}
	// Without options (the common case) layers.IPv4 cannot fail once the
	// lengths are checked: it is only needed to check the options.
	if ihl > 20 {
		if err := d.ip4.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			return d.fail(LayerIPv4, b, errIPv4Options)
		}
	}
	if ff := be16(b[6:]); ff&0x2000 != 0 || ff&0x1FFF != 0 {
		// More fragments, or a fragment offset.
		return d.done(KindFragment, LayerIPv4, b)
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	p, prep := limit(b[ihl:], total-ihl, total-ihl)
	return d.upper(b[9], p, prep, src, dst, LayerIPv4, b)
}

// ipv6 decodes an IPv6 header; ip has checked the version. A payload
// length of 0 (jumbogram, or segmentation offload) is malformed, as
// Wireshark has it by default.
func (d *Decoder) ipv6(b []byte, rep int) (Result, error) {
	if len(b) < 40 {
		return d.short(LayerIPv6, b, rep, 40)
	}
	plen := int(be16(b[4:]))
	if plen == 0 {
		return d.fail(LayerIPv6, b, errIPv6ZeroLen)
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	p, prep := limit(b[40:], rep-40, plen)
	return d.upper(b[6], p, prep, src, dst, LayerIPv6, b)
}

// upper walks IPv6 extension headers (and AH, which IPv4 uses too) and
// decodes the transport header after them. b is the IP payload and rep its
// reported length; ipl and iph are the IP layer and header, for results.
func (d *Decoder) upper(proto uint8, b []byte, rep int, src, dst netip.Addr, ipl Layer, iph []byte) (Result, error) {
	for range maxIPv6Exts {
		var hl int
		switch proto {
		case protoTCP:
			return d.tcp(b, rep, src, dst)
		case protoUDP:
			return d.udpTunnel(b, rep)
		case protoICMP, protoICMPv6:
			return d.done(KindICMP, ipl, iph)
		case protoIPIP, protoIPv6:
			return d.tunnel(b, rep)
		case protoGRE:
			return d.greTunnel(b, rep)
		case protoHopByHop, protoRouting, protoDstOpts, protoAH, protoFragment:
			if len(b) < 2 {
				return d.short(LayerIPv6Ext, b, rep, 2)
			}
			switch proto {
			case protoAH:
				hl = (int(b[1]) + 2) * 4 // RFC 4302: in 4-octet units, minus 2
			case protoFragment:
				hl = 8
			default:
				hl = (int(b[1]) + 1) * 8 // RFC 8200: in 8-octet units, minus 1
			}
		default:
			return d.done(KindOtherIP, ipl, iph)
		}
		if len(b) < hl {
			return d.short(LayerIPv6Ext, b, rep, hl)
		}
		if proto == protoFragment && (be16(b[2:])&0xFFF9 != 0) {
			// Offset or M flag set: a real fragment. An atomic fragment
			// (RFC 6946) carries the whole packet and goes on.
			return d.done(KindFragment, LayerIPv6Ext, b)
		}
		proto, b, rep = b[0], b[hl:], rep-hl
	}
	return d.fail(LayerIPv6Ext, b, errTooDeep)
}

// tunnel opens an IP-in-IP encapsulation (protocols 4 and 41).
func (d *Decoder) tunnel(b []byte, rep int) (Result, error) {
	if d.tunnels >= maxTunnels {
		return d.fail(LayerNone, b, errTooDeep)
	}
	d.tunnels++
	return d.ip(b, rep)
}

// udpTunnel decodes a UDP header with layers.UDP and opens VXLAN and
// Geneve, which Wireshark decodes by default on their IANA ports.
func (d *Decoder) udpTunnel(b []byte, rep int) (Result, error) {
	if len(b) < 8 {
		return d.short(LayerUDP, b, rep, 8)
	}
	n := int(be16(b[4:]))
	if n == 0 {
		n = rep // no length: the IP payload bounds the datagram
	} else if n < 8 {
		return d.fail(LayerUDP, b, errUDPLen)
	}
	if err := d.udp.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return d.fail(LayerUDP, b, errUDPLen) // unreachable: checked above
	}
	sport, dport := uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
	n = min(n, rep)
	if n < 8 {
		return d.fail(LayerUDP, b, shortFrame[LayerUDP])
	}
	p, prep := limit(b[8:], n-8, n-8)
	switch {
	case sport == portVXLAN || dport == portVXLAN:
		return d.vxlanTunnel(p, prep)
	case sport == portGeneve || dport == portGeneve:
		return d.geneveTunnel(p, prep)
	}
	return d.done(KindUDP, LayerUDP, b)
}

// vxlanTunnel decodes a VXLAN header (RFC 7348) with layers.VXLAN and the
// Ethernet frame inside.
func (d *Decoder) vxlanTunnel(b []byte, rep int) (Result, error) {
	if len(b) < 8 {
		return d.short(LayerVXLAN, b, rep, 8)
	}
	if d.tunnels >= maxTunnels {
		return d.fail(LayerVXLAN, b, errTooDeep)
	}
	if err := d.vxlan.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return d.fail(LayerVXLAN, b, shortFrame[LayerVXLAN]) // unreachable: 8 bytes are enough
	}
	d.tunnels++
	return d.ethernet(d.vxlan.Payload, rep-8)
}

// geneveTunnel decodes a Geneve header (RFC 8926) and its payload. It
// does not use layers.Geneve, which allocates every option it decodes.
func (d *Decoder) geneveTunnel(b []byte, rep int) (Result, error) {
	if len(b) < 8 {
		return d.short(LayerGeneve, b, rep, 8)
	}
	if d.tunnels >= maxTunnels {
		return d.fail(LayerGeneve, b, errTooDeep)
	}
	hl := 8 + int(b[0]&0x3F)*4
	if len(b) < hl {
		return d.short(LayerGeneve, b, rep, hl)
	}
	d.tunnels++
	if et := be16(b[2:]); et != etTEB {
		return d.ethertype(et, b[hl:], rep-hl, LayerGeneve)
	}
	return d.ethernet(b[hl:], rep-hl)
}

// greTunnel decodes a GRE header (RFC 2784, 2890, and PPTP's enhanced GRE
// of RFC 2637) with layers.GRE and its payload.
func (d *Decoder) greTunnel(b []byte, rep int) (Result, error) {
	if len(b) < 4 {
		return d.short(LayerGRE, b, rep, 4)
	}
	if d.tunnels >= maxTunnels {
		return d.fail(LayerGRE, b, errTooDeep)
	}
	if err := d.gre.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		if len(b) < rep {
			return d.fail(LayerGRE, b, truncated[LayerGRE])
		}
		return d.fail(LayerGRE, b, errGRE)
	}
	hl := len(d.gre.Contents)
	p, prep := d.gre.Payload, rep-hl
	d.tunnels++
	switch et := uint16(d.gre.Protocol); et {
	case etTEB:
		return d.ethernet(p, prep)
	case etPPP:
		return d.ppp(p, prep)
	case etIPv4, etIPv6, etMPLS, etMPLSMC:
		return d.ethertype(et, p, prep, LayerGRE)
	}
	d.tunnels--
	return d.done(KindOtherIP, LayerGRE, b)
}
