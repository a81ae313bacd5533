package layer

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// noTCP marks a case where tshark shows no tcp.len.
const noTCP = -1

// decodeCase is one hand-built frame and what Decode must make of it.
type decodeCase struct {
	name    string
	link    layers.LinkType
	frame   []byte
	origLen int // 0: len(frame)

	kind    Kind
	layer   Layer // checked when not LayerNone
	tunnels int
	err     error // sentinel the error wraps; nil for no error

	payloadLen int // for KindTCP
	captured   int // len(Payload) for KindTCP; 0 means payloadLen
	src        string

	// tshark is the tcp.len tshark 4.0.17 prints for the frame, with
	// -Y 'tcp && !icmp && !icmpv6', or noTCP when it prints none. It equals
	// payloadLen for KindTCP and noTCP otherwise, unless differs says why
	// we depart from Wireshark.
	tshark  int
	differs string
}

// Frames reused by several cases.
var (
	ip4TCP    = ipv4(6, tcpData())
	ip6TCP    = ipv6(6, tcpData())
	ethIP4TCP = ether(0x0800, ip4TCP)
)

// innerIPv4 returns an IPv4/TCP packet from 192.168.0.1 to 192.168.0.2.
func innerIPv4() []byte {
	p := ipv4(6, tcpData())
	copy(p[12:], []byte{192, 168, 0, 1, 192, 168, 0, 2})
	return p
}

func vxlan(inner []byte) []byte {
	return cat([]byte{0x08, 0, 0, 0}, u32(100<<8), inner)
}

func nflogTLV(bigEndian bool, typ uint16, v []byte) []byte {
	n := uint16(4 + len(v))
	h := cat(le16(n), le16(typ))
	if bigEndian {
		h = cat(u16(n), u16(typ))
	}
	b := cat(h, v)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nflog(bigEndian bool, family byte, ip []byte) []byte {
	b := cat([]byte{family, 0}, u16(0),
		nflogTLV(bigEndian, 1, []byte{0x08, 0x00, 3, 0}), // NFULA_PACKET_HDR: hw protocol, hook
		nflogTLV(bigEndian, 10, []byte("prefix\x00")))    // NFULA_PREFIX
	if ip != nil {
		b = cat(b, nflogTLV(bigEndian, 9, ip))
	}
	return b
}

func pppoe(ppp []byte) []byte {
	return cat([]byte{0x11, 0}, u16(1), u16(uint16(len(ppp))), ppp)
}

func sll(hatype, proto uint16, addrLen uint16, payload []byte) []byte {
	return cat(u16(0), u16(hatype), u16(addrLen), macA, u16(0), u16(proto), payload)
}

func nest(depth int, inner []byte) []byte {
	for range depth {
		inner = ipv4(4, inner)
	}
	return inner
}

func vlanStack(n int, inner []byte) []byte {
	b := inner
	et := uint16(0x0800)
	for range n {
		b = cat(u16(7), u16(et), b)
		et = 0x8100
	}
	return ether(et, b)
}

func decodeCases() []decodeCase {
	cut := func(b []byte, n int) []byte { return b[:n] }
	big := ipv4(6, tcpSeg(ACK, nil, zeros(1000)))
	return []decodeCase{
		// Ethernet and what rides on it.
		{name: "ethernet/ipv4/tcp syn", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4(6, tcpSeg(SYN, synOpts, nil))),
			kind: KindTCP, layer: LayerTCP, payloadLen: 0, src: "10.0.0.1:40000", tshark: 0},
		{name: "ethernet/ipv4/tcp with trailer", link: layers.LinkTypeEthernet, frame: cat(ethIP4TCP, zeros(6)),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/ipv6/tcp", link: layers.LinkTypeEthernet, frame: ether(0x86DD, ip6TCP),
			kind: KindTCP, payloadLen: 10, src: "[2001:db8::1]:40000", tshark: 10},
		{name: "ethernet/vlan/ipv4/tcp", link: layers.LinkTypeEthernet, frame: ether(0x8100, cat(u16(100), u16(0x0800), ip4TCP)),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/802.1ad/802.1q/ipv4/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x88A8, cat(u16(10), u16(0x8100), u16(20), u16(0x0800), ip4TCP)),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/9100/9100/8100/ipv6/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x9100, cat(u16(1), u16(0x9100), u16(2), u16(0x8100), u16(3), u16(0x86DD), ip6TCP)),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/7 vlan tags", link: layers.LinkTypeEthernet, frame: vlanStack(7, ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/9 vlan tags", link: layers.LinkTypeEthernet, frame: vlanStack(9, ip4TCP),
			kind: KindMalformed, err: ErrMalformed, tshark: 10, differs: "we stop after 8 tags and LLC headers"},
		{name: "ethernet/802.3/llc snap/ipv4/tcp", link: layers.LinkTypeEthernet,
			frame: ether(uint16(8+len(ip4TCP)), cat(snap(0x0800), ip4TCP)),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/802.3/llc stp", link: layers.LinkTypeEthernet, frame: ether(38, cat([]byte{0x42, 0x42, 0x03}, zeros(35))),
			kind: KindNonIP, layer: LayerLLC, tshark: noTCP},
		{name: "ethernet/arp", link: layers.LinkTypeEthernet, frame: ether(0x0806, zeros(28)),
			kind: KindNonIP, layer: LayerEthernet, tshark: noTCP},
		{name: "ethernet/mpls/mpls/ipv4/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x8847, cat(u32(100<<12|64), u32(200<<12|0x100|64), ip4TCP)),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/pppoe/ppp/ipv4/tcp", link: layers.LinkTypeEthernet, frame: ether(0x8864, pppoe(cat(u16(0x21), ip4TCP))),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/ipv4/udp", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4(17, udp(5353, 53, payload10))),
			kind: KindUDP, layer: LayerUDP, tshark: noTCP},
		{name: "ethernet/ipv4/icmp error quoting tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(1, cat([]byte{3, 3}, u16(0), u32(0), ip4TCP[:28]))),
			kind:  KindICMP, layer: LayerIPv4, tshark: noTCP},
		{name: "ethernet/ipv6/icmpv6 error quoting tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x86DD, ipv6(58, cat([]byte{1, 4}, u16(0), u32(0), ip6TCP))),
			kind:  KindICMP, layer: LayerIPv6, tshark: noTCP},
		{name: "ethernet/ipv4/sctp", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4(132, zeros(12))),
			kind: KindOtherIP, layer: LayerIPv4, tshark: noTCP},
		{name: "ethernet/ipv4 first fragment", link: layers.LinkTypeEthernet, frame: ether(0x0800, withFrag(ipv4(6, tcpData()), 0x2000)),
			kind: KindFragment, layer: LayerIPv4, tshark: noTCP},
		{name: "ethernet/ipv4 later fragment", link: layers.LinkTypeEthernet, frame: ether(0x0800, withFrag(ipv4(6, payload10), 0x0003)),
			kind: KindFragment, layer: LayerIPv4, tshark: noTCP},
		{name: "ethernet/ipv4 options/tcp", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4Opts(6, []byte{0x94, 4, 0, 0}, tcpData())),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/ipv4 bad option length", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4Opts(6, []byte{0x07, 0, 0, 0}, tcpData())),
			kind: KindMalformed, layer: LayerIPv4, err: ErrMalformed, tshark: 10,
			differs: "Wireshark flags the option and goes on; layers.IPv4 rejects the header"},
		{name: "ethernet/ipv6 fragment", link: layers.LinkTypeEthernet, frame: ether(0x86DD, ipv6(44, cat(frag6(6, 1), tcpData()))),
			kind: KindFragment, layer: LayerIPv6Ext, tshark: noTCP},
		{name: "ethernet/ipv6 atomic fragment/tcp", link: layers.LinkTypeEthernet, frame: ether(0x86DD, ipv6(44, cat(frag6(6, 0), tcpData()))),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/ipv6 hop-by-hop/routing/dstopts/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x86DD, ipv6(0, cat(ext6(43), []byte{60, 0, 253, 0, 0, 0, 0, 0}, ext6(6), tcpData()))),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/ipv4/ah/tcp", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4(51, cat(ah(6), tcpData()))),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/ipv6/ah/tcp", link: layers.LinkTypeEthernet, frame: ether(0x86DD, ipv6(51, cat(ah(6), tcpData()))),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/ipv6/no next header", link: layers.LinkTypeEthernet, frame: ether(0x86DD, ipv6(59, zeros(8))),
			kind: KindOtherIP, layer: LayerIPv6, tshark: noTCP},
		{name: "ethernet/0800 carrying ipv6/tcp", link: layers.LinkTypeEthernet, frame: ether(0x0800, ip6TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ethernet/ip version 5", link: layers.LinkTypeEthernet, frame: ether(0x0800, cat([]byte{0x55}, ip4TCP[1:])),
			kind: KindMalformed, layer: LayerIPv4, err: ErrMalformed, tshark: noTCP},

		// Tunnels: the innermost segment counts.
		{name: "ipv4/ipip/ipv4/tcp", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4(4, innerIPv4())),
			kind: KindTCP, tunnels: 1, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/6in4/ipv6/tcp", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4(41, ip6TCP)),
			kind: KindTCP, tunnels: 1, payloadLen: 10, src: "[2001:db8::1]:40000", tshark: 10},
		{name: "ipv6/4in6/ipv4/tcp", link: layers.LinkTypeEthernet, frame: ether(0x86DD, ipv6(4, innerIPv4())),
			kind: KindTCP, tunnels: 1, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/gre/ipv4/tcp", link: layers.LinkTypeEthernet, frame: ether(0x0800, ipv4(47, cat(u16(0), u16(0x0800), innerIPv4()))),
			kind: KindTCP, tunnels: 1, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/gre key seq/ipv4/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(47, cat(u16(0x3000), u16(0x0800), u32(7), u32(9), innerIPv4()))),
			kind:  KindTCP, tunnels: 1, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/gre teb/ethernet/ipv4/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(47, cat(u16(0), u16(0x6558), ether(0x0800, innerIPv4())))),
			kind:  KindTCP, tunnels: 1, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/pptp gre/ppp/ipv4/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(47, cat([]byte{0x30, 0x01}, u16(0x880B), u16(uint16(4+len(ip4TCP))), u16(5), u32(1),
				[]byte{0xFF, 0x03}, u16(0x21), innerIPv4()))),
			kind: KindTCP, tunnels: 1, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/gre/erspan", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(47, cat(u16(0x1000), u16(0x88BE), u32(1), u32(0x10000001), u32(0), ether(0x0800, innerIPv4())))),
			kind:  KindOtherIP, layer: LayerGRE, tshark: 10, differs: "ERSPAN is not opened"},
		{name: "ipv4/udp/vxlan/ethernet/ipv4/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(17, udp(55555, 4789, vxlan(ether(0x0800, innerIPv4()))))),
			kind:  KindTCP, tunnels: 1, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/udp/vxlan/ethernet/arp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(17, udp(55555, 4789, vxlan(ether(0x0806, zeros(28)))))),
			kind:  KindNonIP, layer: LayerEthernet, tunnels: 1, tshark: noTCP},
		{name: "ipv4/udp/geneve/ethernet/ipv4/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(17, udp(55555, 6081, cat([]byte{1, 0}, u16(0x6558), u32(100<<8), u16(0x0102), []byte{3, 0},
				ether(0x0800, innerIPv4()))))),
			kind: KindTCP, tunnels: 1, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/ipip/gre/vxlan/tcp", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(4, ipv4(47, cat(u16(0), u16(0x0800), ipv4(17, udp(1, 4789, vxlan(ether(0x0800, innerIPv4())))))))),
			kind:  KindTCP, tunnels: 3, payloadLen: 10, src: "192.168.0.1:40000", tshark: 10},
		{name: "ipv4/ipip x8/tcp", link: layers.LinkTypeEthernet, frame: ether(0x0800, nest(8, innerIPv4())),
			kind: KindTCP, tunnels: 8, payloadLen: 10, tshark: 10},
		{name: "ipv4/ipip x9/tcp", link: layers.LinkTypeEthernet, frame: ether(0x0800, nest(9, innerIPv4())),
			kind: KindMalformed, err: ErrMalformed, tunnels: 8, tshark: 10, differs: "we open at most 8 tunnels"},

		// Snap length, declared lengths and bogus headers.
		{name: "snaplen cuts payload", link: layers.LinkTypeEthernet, frame: cut(ethIP4TCP, len(ethIP4TCP)-6), origLen: len(ethIP4TCP),
			kind: KindTCP, payloadLen: 10, captured: 4, tshark: 10},
		{name: "snaplen cuts tcp header", link: layers.LinkTypeEthernet, frame: cut(ethIP4TCP, 14+20+10), origLen: len(ethIP4TCP),
			kind: KindTruncated, layer: LayerTCP, err: ErrTruncated, tshark: noTCP},
		{name: "snaplen cuts tcp options", link: layers.LinkTypeEthernet,
			frame: cut(ether(0x0800, ipv4(6, tcpSeg(SYN, synOpts, nil))), 14+20+24), origLen: 14 + 20 + 40,
			kind: KindTruncated, layer: LayerTCP, err: ErrTruncated, tshark: 0,
			differs: "Wireshark reports tcp.len from the IP length when the options are cut"},
		{name: "snaplen cuts ipv4 header", link: layers.LinkTypeEthernet, frame: cut(ethIP4TCP, 14+10), origLen: len(ethIP4TCP),
			kind: KindTruncated, layer: LayerIPv4, err: ErrTruncated, tshark: noTCP},
		{name: "snaplen cuts ethernet header", link: layers.LinkTypeEthernet, frame: cut(ethIP4TCP, 10), origLen: len(ethIP4TCP),
			kind: KindTruncated, layer: LayerEthernet, err: ErrTruncated, tshark: noTCP},
		{name: "runt ethernet", link: layers.LinkTypeEthernet, frame: cut(ethIP4TCP, 10),
			kind: KindMalformed, layer: LayerEthernet, err: ErrMalformed, tshark: noTCP},
		{name: "ipv4 total length 0 (TSO)", link: layers.LinkTypeEthernet, frame: ether(0x0800, withTotal(ipv4(6, tcpData()), 0)),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ipv4 total length 0 (TSO) with snaplen", link: layers.LinkTypeEthernet,
			frame: cut(ether(0x0800, withTotal(ipv4(6, tcpSeg(ACK, nil, zeros(1000))), 0)), 14+40+100), origLen: 14 + len(big),
			kind: KindTCP, payloadLen: 1000, captured: 100, tshark: 1000},
		{name: "ipv4 total length beyond frame", link: layers.LinkTypeEthernet, frame: ether(0x0800, withTotal(ipv4(6, tcpData()), 100)),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ipv4 total length below header", link: layers.LinkTypeEthernet, frame: ether(0x0800, withTotal(ipv4(6, tcpData()), 16)),
			kind: KindMalformed, layer: LayerIPv4, err: ErrMalformed, tshark: noTCP},
		{name: "ipv4 total length cuts tcp header", link: layers.LinkTypeEthernet, frame: ether(0x0800, withTotal(ipv4(6, tcpData()), 32)),
			kind: KindMalformed, layer: LayerTCP, err: ErrMalformed, tshark: noTCP},
		{name: "ipv4 ihl 4", link: layers.LinkTypeEthernet, frame: ether(0x0800, cat([]byte{0x44}, ip4TCP[1:])),
			kind: KindMalformed, layer: LayerIPv4, err: ErrMalformed, tshark: noTCP},
		{name: "ipv6 payload length 0", link: layers.LinkTypeEthernet, frame: ether(0x86DD, cat(ip6TCP[:4], u16(0), ip6TCP[6:])),
			kind: KindMalformed, layer: LayerIPv6, err: ErrMalformed, tshark: noTCP},
		{name: "ipv6 payload length beyond frame", link: layers.LinkTypeEthernet, frame: ether(0x86DD, cat(ip6TCP[:4], u16(100), ip6TCP[6:])),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ipv6 extension header cut by payload length", link: layers.LinkTypeEthernet,
			frame: ether(0x86DD, cat(u32(0x60000000), u16(4), []byte{0, 64}, v6a, v6b, ext6(6), tcpData())),
			kind:  KindMalformed, layer: LayerIPv6Ext, err: ErrMalformed, tshark: noTCP},
		{name: "tcp data offset 4", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(6, cat(tcpData()[:12], []byte{0x40}, tcpData()[13:]))),
			kind:  KindMalformed, layer: LayerTCP, err: ErrMalformed, tshark: 14,
			differs: "Wireshark reports a tcp.len after a header length it calls bogus"},
		{name: "tcp data offset past segment", link: layers.LinkTypeEthernet,
			frame: ether(0x0800, ipv4(6, cat(tcpData()[:12], []byte{0xF0}, tcpData()[13:]))),
			kind:  KindMalformed, layer: LayerTCP, err: ErrMalformed, tshark: noTCP},
		{name: "unsupported link type", link: layers.LinkType(147), frame: ethIP4TCP,
			kind: KindUnsupportedLink, err: ErrUnsupportedLink, tshark: noTCP},

		// Linux cooked captures.
		{name: "sll/ipv4/tcp", link: layers.LinkTypeLinuxSLL, frame: sll(1, 0x0800, 6, ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "sll infiniband address length 20", link: layers.LinkTypeLinuxSLL, frame: sll(32, 0x0800, 20, ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "sll/802.2/snap/ipv4/tcp", link: layers.LinkTypeLinuxSLL, frame: sll(1, 0x0004, 6, cat(snap(0x0800), ip4TCP)),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "sll/vlan/ipv4/tcp", link: layers.LinkTypeLinuxSLL, frame: sll(1, 0x8100, 6, cat(u16(5), u16(0x0800), ip4TCP)),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "sll netlink", link: layers.LinkTypeLinuxSLL, frame: sll(824, 0, 0, zeros(20)),
			kind: KindNonIP, layer: LayerSLL, tshark: noTCP},
		{name: "sll2/ipv6/tcp", link: layers.LinkTypeLinuxSLL2,
			frame: cat(u16(0x86DD), u16(0), u32(2), u16(1), []byte{0, 6}, macA, u16(0), ip6TCP),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "sll2 short", link: layers.LinkTypeLinuxSLL2, frame: zeros(19),
			kind: KindMalformed, layer: LayerSLL2, err: ErrMalformed, tshark: noTCP},

		// BSD loopback.
		{name: "null little-endian AF_INET", link: layers.LinkTypeNull, frame: cat(le32(2), ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "null big-endian AF_INET", link: layers.LinkTypeNull, frame: cat(u32(2), ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "null AF_INET6 NetBSD", link: layers.LinkTypeNull, frame: cat(le32(24), ip6TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "null AF_INET6 FreeBSD", link: layers.LinkTypeNull, frame: cat(le32(28), ip6TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "null AF_INET6 Darwin big-endian", link: layers.LinkTypeNull, frame: cat(u32(30), ip6TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "null AF_APPLETALK", link: layers.LinkTypeNull, frame: cat(le32(16), zeros(20)),
			kind: KindNonIP, layer: LayerNull, tshark: noTCP},
		{name: "loop AF_INET", link: layers.LinkTypeLoop, frame: cat(u32(2), ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "loop AF_INET6 OpenBSD", link: layers.LinkTypeLoop, frame: cat(u32(24), ip6TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "loop little-endian is not AF_INET", link: layers.LinkTypeLoop, frame: cat(le32(2), ip4TCP),
			kind: KindNonIP, layer: LayerNull, tshark: noTCP},

		// Raw IP.
		{name: "raw/ipv4/tcp", link: layers.LinkTypeRaw, frame: ip4TCP, kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "raw/ipv6/tcp", link: layers.LinkTypeRaw, frame: ip6TCP, kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "raw 12/ipv4/tcp", link: LinkTypeRawOld, frame: ip4TCP, kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "raw 14/ipv6/tcp", link: LinkTypeRawBSDOS, frame: ip6TCP, kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ipv4 link/tcp", link: layers.LinkTypeIPv4, frame: ip4TCP, kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ipv6 link/tcp", link: layers.LinkTypeIPv6, frame: ip6TCP, kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "raw empty", link: layers.LinkTypeRaw, frame: nil, kind: KindMalformed, layer: LayerIPv4, err: ErrMalformed, tshark: noTCP},

		// PPP and HDLC.
		{name: "ppp ff03/ipv4/tcp", link: layers.LinkTypePPP, frame: cat([]byte{0xFF, 0x03}, u16(0x21), ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ppp compressed protocol/ipv4/tcp", link: layers.LinkTypePPP, frame: cat([]byte{0x21}, ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ppp/ipv6/tcp", link: layers.LinkTypePPP, frame: cat(u16(0x57), ip6TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ppp lcp", link: layers.LinkTypePPP, frame: cat([]byte{0xFF, 0x03}, u16(0xC021), []byte{1, 1, 0, 4}),
			kind: KindNonIP, layer: LayerPPP, tshark: noTCP},
		{name: "ppp hdlc/ipv4/tcp", link: layers.LinkTypePPP_HDLC, frame: cat([]byte{0xFF, 0x03}, u16(0x21), ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ppp hdlc cisco framing/ipv4/tcp", link: layers.LinkTypePPP_HDLC, frame: cat([]byte{0x0F, 0x00}, u16(0x0800), ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "cisco hdlc/ipv6/tcp", link: layers.LinkTypeC_HDLC, frame: cat([]byte{0x8F, 0x00}, u16(0x86DD), ip6TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "pppoe link/ipv4/tcp", link: layers.LinkTypePPPEthernet, frame: pppoe(cat(u16(0x21), ip4TCP)),
			kind: KindTCP, payloadLen: 10, tshark: 10},

		// NFLOG.
		{name: "nflog little-endian/ipv4/tcp", link: LinkTypeNFLog, frame: nflog(false, 2, ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "nflog big-endian/ipv6/tcp", link: LinkTypeNFLog, frame: nflog(true, 10, ip6TCP),
			kind: KindTCP, payloadLen: 10, tshark: noTCP, differs: "Wireshark reads NFLOG TLVs in its host's (little-endian) order only"},
		{name: "nflog without payload", link: LinkTypeNFLog, frame: nflog(false, 2, nil),
			kind: KindNonIP, layer: LayerNFLog, tshark: noTCP},
		{name: "nflog bridge family/ipv4/tcp", link: LinkTypeNFLog, frame: nflog(false, 7, ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "nflog bridge family/arp", link: LinkTypeNFLog,
			frame: cat([]byte{7, 0, 0, 0}, nflogTLV(false, 1, []byte{0x08, 0x06, 3, 0}), nflogTLV(false, 9, zeros(28))),
			kind:  KindNonIP, layer: LayerNFLog, tshark: noTCP},
		{name: "nflog payload before a bad tlv", link: LinkTypeNFLog,
			frame: cat([]byte{2, 0, 0, 0}, nflogTLV(false, 9, ip4TCP), le16(1), le16(3)),
			kind:  KindTCP, payloadLen: 10, tshark: noTCP, differs: "Wireshark gives up on the whole frame at a bad tlv"},
		{name: "nflog snaplen cuts payload", link: LinkTypeNFLog, frame: cut(nflog(false, 2, ip4TCP), len(nflog(false, 2, ip4TCP))-6),
			origLen: len(nflog(false, 2, ip4TCP)), kind: KindTCP, payloadLen: 10, captured: 6, // 2 bytes of TLV padding cut too
			tshark: noTCP, differs: "Wireshark 4.0 stops at a TLV cut by the snap length"},
		{name: "nflog tlv length 2", link: LinkTypeNFLog, frame: cat([]byte{2, 0, 0, 0}, le16(2), le16(9), ip4TCP),
			kind: KindMalformed, layer: LayerNFLog, err: ErrMalformed, tshark: noTCP},

		// IP over InfiniBand.
		{name: "ipoib/ipv4/tcp", link: LinkTypeIPoIB, frame: cat(zeros(40), u16(0x0800), u16(0), ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "ipoib/arp", link: LinkTypeIPoIB, frame: cat(zeros(40), u16(0x0806), u16(0), zeros(28)),
			kind: KindNonIP, layer: LayerIPoIB, tshark: noTCP},

		// 802.11.
		{name: "802.11 data to ds/ipv4/tcp", link: layers.LinkTypeIEEE802_11, frame: cat(dot11Data(0, 0x01, nil), snap(0x0800), ip4TCP),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "802.11 qos data wds +htc/ipv4/tcp", link: layers.LinkTypeIEEE802_11,
			frame: cat(dot11Data(8, 0x03|0x80, cat(macB, le16(0x0005), zeros(4))), snap(0x0800), ip4TCP),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "802.11 qos data from ds/ipv6/tcp", link: layers.LinkTypeIEEE802_11,
			frame: cat(dot11Data(8, 0x02, le16(0)), snap(0x86DD), ip6TCP),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "802.11 protected", link: layers.LinkTypeIEEE802_11, frame: cat(dot11Data(0, 0x41, nil), zeros(8), ip4TCP),
			kind: KindNonIP, layer: LayerDot11, tshark: noTCP},
		{name: "802.11 null function", link: layers.LinkTypeIEEE802_11, frame: dot11Data(4, 0x01, nil),
			kind: KindNonIP, layer: LayerDot11, tshark: noTCP},
		{name: "802.11 beacon", link: layers.LinkTypeIEEE802_11, frame: cat([]byte{0x80, 0}, u16(0), macA, macB, macA, le16(0), zeros(12)),
			kind: KindNonIP, layer: LayerDot11, tshark: noTCP},
		{name: "802.11 fragment", link: layers.LinkTypeIEEE802_11, frame: cat(dot11Data(0, 0x05, nil), snap(0x0800), ip4TCP),
			kind: KindFragment, layer: LayerDot11, tshark: noTCP},
		{name: "802.11 a-msdu", link: layers.LinkTypeIEEE802_11,
			frame: cat(dot11Data(8, 0x01, le16(0x0080)), macB, macA, u16(uint16(8+len(ip4TCP))), snap(0x0800), ip4TCP),
			kind:  KindNonIP, layer: LayerDot11, tshark: 10, differs: "A-MSDU subframes are not opened"},
		{name: "802.11 non-snap llc", link: layers.LinkTypeIEEE802_11, frame: cat(dot11Data(0, 0x01, nil), []byte{0x42, 0x42, 0x03}, zeros(20)),
			kind: KindNonIP, layer: LayerLLC, tshark: noTCP},
		{name: "802.11 version 1", link: layers.LinkTypeIEEE802_11, frame: cat([]byte{0x09}, dot11Data(0, 0x01, nil)[1:], snap(0x0800), ip4TCP),
			kind: KindMalformed, layer: LayerDot11, err: ErrMalformed, tshark: noTCP},
		{name: "radiotap minimal/802.11/ipv4/tcp", link: layers.LinkTypeIEEE80211Radio,
			frame: cat([]byte{0, 0}, le16(8), le32(0), dot11Data(0, 0x01, nil), snap(0x0800), ip4TCP),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "radiotap tsft flags fcs/802.11/ipv4/tcp", link: layers.LinkTypeIEEE80211Radio,
			frame: cat([]byte{0, 0}, le16(17), le32(3), u32(0x11223344), u32(0x55667788), []byte{0x10},
				dot11Data(0, 0x01, nil), snap(0x0800), ip4TCP, u32(0xDEADBEEF)),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "radiotap datapad/802.11 qos/ipv4/tcp", link: layers.LinkTypeIEEE80211Radio,
			frame: cat([]byte{0, 0}, le16(9), le32(2), []byte{0x20}, dot11Data(8, 0x01, le16(0)), zeros(2), snap(0x0800), ip4TCP),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "radiotap extended bitmap fcs/802.11/ipv4/tcp", link: layers.LinkTypeIEEE80211Radio,
			frame: cat([]byte{0, 0}, le16(13), le32(0x80000002), le32(0), []byte{0x10},
				dot11Data(0, 0x01, nil), snap(0x0800), ip4TCP, u32(0xDEADBEEF)),
			kind: KindTCP, payloadLen: 10, tshark: 10},
		{name: "radiotap version 1", link: layers.LinkTypeIEEE80211Radio,
			frame: cat([]byte{1, 0}, le16(8), le32(0), dot11Data(0, 0x01, nil), snap(0x0800), ip4TCP),
			kind:  KindTCP, payloadLen: 10, tshark: 10},
		{name: "radiotap length 4", link: layers.LinkTypeIEEE80211Radio,
			frame: cat([]byte{0, 0}, le16(4), le32(0), dot11Data(0, 0x01, nil), snap(0x0800), ip4TCP),
			kind:  KindMalformed, layer: LayerRadiotap, err: ErrMalformed, tshark: noTCP},
	}
}

func TestDecode(t *testing.T) {
	d := NewDecoder()
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := Segment{PayloadLen: -7} // must be overwritten for TCP, kept otherwise
			r, err := d.Decode(tc.link, tc.frame, tc.origLen, &s)
			if r.Kind != tc.kind {
				t.Fatalf("Kind = %v (layer %v, err %v), want %v", r.Kind, r.Layer, err, tc.kind)
			}
			if tc.layer != LayerNone && r.Layer != tc.layer {
				t.Errorf("Layer = %v, want %v", r.Layer, tc.layer)
			}
			if r.Tunnels != tc.tunnels {
				t.Errorf("Tunnels = %d, want %d", r.Tunnels, tc.tunnels)
			}
			switch {
			case tc.err == nil && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Layer != r.Layer && e.Layer != LayerNone {
					t.Errorf("err = %#v does not name layer %v", err, r.Layer)
				}
			}
			if r.Offset < 0 || r.Offset > len(tc.frame) {
				t.Errorf("Offset = %d outside the frame", r.Offset)
			}
			if tc.kind != KindTCP {
				if s.PayloadLen != -7 {
					t.Errorf("Segment changed for kind %v", r.Kind)
				}
			} else {
				if s.PayloadLen != tc.payloadLen {
					t.Errorf("PayloadLen = %d, want %d", s.PayloadLen, tc.payloadLen)
				}
				wantCap := tc.captured
				if wantCap == 0 {
					wantCap = tc.payloadLen
				}
				if len(s.Payload) != wantCap {
					t.Errorf("len(Payload) = %d, want %d", len(s.Payload), wantCap)
				}
				if wantCap == 10 && string(s.Payload) != string(payload10) {
					t.Errorf("Payload = %q, want %q", s.Payload, payload10)
				}
				if tc.src != "" && s.Src.String() != tc.src {
					t.Errorf("Src = %v, want %v", s.Src, tc.src)
				}
				if s.Dst.Port() != 80 || s.Seq != 1000 || s.Ack != 2000 || s.Win != 65535 {
					t.Errorf("segment = %+v", s)
				}
				if got := tc.frame[r.Offset]; got != 40000>>8 {
					t.Errorf("Offset %d does not point at the TCP header (byte %#x)", r.Offset, got)
				}
			}
			// Wireshark agreement.
			want := noTCP
			if r.Kind == KindTCP {
				want = s.PayloadLen
			}
			if (want == tc.tshark) == (tc.differs != "") {
				t.Errorf("tcp.len %d vs tshark %d; differs = %q", want, tc.tshark, tc.differs)
			}
		})
	}
}

// TestDecodeSYN checks every field of a SYN.
func TestDecodeSYN(t *testing.T) {
	d := NewDecoder()
	var s Segment
	frame := ether(0x86DD, ipv6(6, tcpSeg(SYN|ECE|CWR, synOpts, nil)))
	frame[14+40+12] |= 1 // NS
	r, err := d.Decode(layers.LinkTypeEthernet, frame, 0, &s)
	if err != nil || r.Kind != KindTCP {
		t.Fatalf("Decode = %+v, %v", r, err)
	}
	want := Segment{
		Src:           netip.MustParseAddrPort("[2001:db8::1]:40000"),
		Dst:           netip.MustParseAddrPort("[2001:db8::2]:80"),
		Seq:           1000,
		Ack:           2000,
		Win:           65535,
		Flags:         SYN | ECE | CWR | NS,
		WScale:        7,
		MSS:           1460,
		SACKPermitted: true,
		Payload:       s.Payload,
	}
	if s.Src != want.Src || s.Dst != want.Dst || s.Seq != want.Seq || s.Ack != want.Ack || s.Win != want.Win ||
		s.Flags != want.Flags || s.WScale != want.WScale || s.MSS != want.MSS || s.SACKPermitted != want.SACKPermitted ||
		s.PayloadLen != 0 || len(s.Payload) != 0 {
		t.Errorf("segment = %+v\nwant      %+v", s, want)
	}
	if r.Offset != 14+40 || r.Layer != LayerTCP {
		t.Errorf("Result = %+v", r)
	}
	// A later segment without options resets them.
	_, _ = d.Decode(layers.LinkTypeEthernet, ethIP4TCP, 0, &s)
	if s.WScale != -1 || s.MSS != 0 || s.SACKPermitted || s.Flags != PSH|ACK {
		t.Errorf("options kept across segments: %+v", s)
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name   string
		opts   []byte
		wscale int8
		mss    uint16
		sack   bool
	}{
		{"none", nil, -1, 0, false},
		{"syn", synOpts, 7, 1460, true},
		{"wscale above 14", []byte{3, 3, 20}, 14, 0, false},
		{"wscale 255", []byte{3, 3, 255}, 14, 0, false},
		{"repeated mss, last wins", []byte{2, 4, 0x05, 0xb4, 2, 4, 0x02, 0x18}, -1, 536, false},
		{"length 1 stops", []byte{3, 3, 5, 2, 1, 2, 4, 0x05, 0xb4}, 5, 0, false},
		{"length 0 stops", []byte{4, 0, 3, 3, 5}, -1, 0, false},
		{"runs past header", []byte{1, 3, 3, 5, 2, 8, 0x05, 0xb4}, 5, 0, false},
		{"eol ends", []byte{4, 2, 0, 2, 4, 0x05, 0xb4}, -1, 0, true},
		{"wrong length ignored", []byte{2, 3, 5, 3, 4, 1, 2, 4, 2}, -1, 0, true},
		{"lone kind byte", []byte{1, 1, 2}, -1, 0, false},
		{"unknown option skipped", []byte{30, 6, 0, 0, 0, 0, 3, 3, 2}, 2, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Segment{WScale: -1}
			s.parseOptions(tt.opts)
			if s.WScale != tt.wscale || s.MSS != tt.mss || s.SACKPermitted != tt.sack {
				t.Errorf("got wscale %d mss %d sack %v, want %d %d %v", s.WScale, s.MSS, s.SACKPermitted, tt.wscale, tt.mss, tt.sack)
			}
		})
	}
}

func TestStats(t *testing.T) {
	d := NewDecoder()
	var s Segment
	for _, tc := range decodeCases() {
		_, _ = d.Decode(tc.link, tc.frame, tc.origLen, &s)
	}
	var want Stats
	for _, tc := range decodeCases() {
		want.Packets++
		switch tc.kind {
		case KindTCP:
			want.TCP++
			if tc.tunnels > 0 {
				want.Tunneled++
			}
		case KindUDP:
			want.UDP++
		case KindICMP:
			want.ICMP++
		case KindOtherIP:
			want.OtherIP++
		case KindNonIP:
			want.NonIP++
		case KindFragment:
			want.Fragments++
		case KindTruncated:
			want.Truncated++
		case KindMalformed:
			want.Malformed++
		case KindUnsupportedLink:
			want.Unsupported++
		}
	}
	got := d.Stats
	if got.UnsupportedLinks[147] != 1 || len(got.UnsupportedLinks) != 1 {
		t.Errorf("UnsupportedLinks = %v, want map[147:1]", got.UnsupportedLinks)
	}
	got.UnsupportedLinks = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stats = %+v\nwant    %+v", got, want)
	}
}

func TestErrorStrings(t *testing.T) {
	d := NewDecoder()
	var s Segment
	_, err := d.Decode(layers.LinkTypeEthernet, ethIP4TCP[:14+30], len(ethIP4TCP), &s)
	if got, want := err.Error(), "layer: tcp: header truncated by snap length"; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
	_, err = d.Decode(layers.LinkTypeEthernet, ether(0x86DD, cat(ip6TCP[:4], u16(0), ip6TCP[6:])), 0, &s)
	if got, want := err.Error(), "layer: ipv6: payload length 0 (jumbogram or segmentation offload)"; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
	for k := range numKinds + 1 {
		if k.String() == "" {
			t.Errorf("Kind(%d) has no name", k)
		}
	}
	for l := range numLayers + 1 {
		if l.String() == "" {
			t.Errorf("Layer(%d) has no name", l)
		}
	}
}

// TestWriteCasePcaps writes every decodeCase as a one-frame pcap into
// $H2SCOPE_WRITE_PCAPS, and the tshark column into DIR/expect.txt, to
// check that column with
//
//	cd DIR; for f in *.pcap; do echo "$f $(tshark -r $f -Y 'tcp && !icmp && !icmpv6' -T fields -e tcp.len | tr -d '\n ')"; done | diff - expect.txt
func TestWriteCasePcaps(t *testing.T) {
	dir := os.Getenv("H2SCOPE_WRITE_PCAPS")
	if dir == "" {
		t.Skip("set H2SCOPE_WRITE_PCAPS=DIR to write the test frames as pcap files")
	}
	var expect strings.Builder
	defer func() {
		if err := os.WriteFile(filepath.Join(dir, "expect.txt"), []byte(expect.String()), 0o644); err != nil {
			t.Error(err)
		}
	}()
	for i, tc := range decodeCases() {
		name := fmt.Sprintf("%03d-%s.pcap", i, strings.NewReplacer("/", "_", " ", "_").Replace(tc.name))
		if tc.tshark == noTCP {
			fmt.Fprintf(&expect, "%s \n", name)
		} else {
			fmt.Fprintf(&expect, "%s %d\n", name, tc.tshark)
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriterNanos(f)
		if err := w.WriteFileHeader(65535, tc.link); err != nil {
			t.Fatal(err)
		}
		orig := max(tc.origLen, len(tc.frame))
		if err := w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(tc.frame), Length: orig}, tc.frame); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}
