package layer

import (
	"errors"
	"fmt"
)

// Kind says what Decode found in a frame.
type Kind uint8

// Frame kinds. Only KindTCP fills the Segment.
const (
	// KindTCP is a TCP segment, possibly inside tunnels; the Segment is
	// filled from the innermost TCP header.
	KindTCP Kind = iota
	// KindUDP is a UDP datagram that is not a tunnel Decode opens.
	KindUDP
	// KindICMP is an ICMP or ICMPv6 message, including errors that quote a
	// TCP header: the quoted header is never reported as a segment.
	KindICMP
	// KindOtherIP is an IP packet carrying another protocol (SCTP, ESP,
	// OSPF, an IPv6 "no next header", a GRE payload Decode does not open).
	KindOtherIP
	// KindNonIP is a frame whose link layer carries no IP: ARP, LLDP, STP,
	// 802.11 management, control, null and protected frames, and link
	// protocols Decode does not follow.
	KindNonIP
	// KindFragment is an IPv4 fragment (MF set or non-zero offset), an IPv6
	// fragment that is not atomic, or an 802.11 fragment. Fragments are not
	// reassembled.
	KindFragment
	// KindTruncated is a frame cut by the snap length before the end of the
	// TCP header (or of a header needed to reach it).
	KindTruncated
	// KindMalformed is a frame whose headers contradict themselves or the
	// frame length.
	KindMalformed
	// KindUnsupportedLink is a frame of a link type Decode does not know.
	KindUnsupportedLink

	numKinds
)

var kindNames = [numKinds]string{
	KindTCP:             "tcp",
	KindUDP:             "udp",
	KindICMP:            "icmp",
	KindOtherIP:         "other_ip",
	KindNonIP:           "non_ip",
	KindFragment:        "fragment",
	KindTruncated:       "truncated",
	KindMalformed:       "malformed",
	KindUnsupportedLink: "unsupported_link",
}

// String returns the kind's snake_case name, as used for anomaly counters.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Layer names a protocol header Decode walks through.
type Layer uint8

// Layers, in no particular order.
const (
	LayerNone Layer = iota
	LayerEthernet
	LayerVLAN
	LayerLLC
	LayerMPLS
	LayerPPPoE
	LayerPPP
	LayerCHDLC
	LayerSLL
	LayerSLL2
	LayerNull
	LayerNFLog
	LayerIPoIB
	LayerRadiotap
	LayerDot11
	LayerIPv4
	LayerIPv6
	LayerIPv6Ext
	LayerUDP
	LayerGRE
	LayerVXLAN
	LayerGeneve
	LayerTCP

	numLayers
)

var layerNames = [numLayers]string{
	LayerNone:     "none",
	LayerEthernet: "ethernet",
	LayerVLAN:     "vlan",
	LayerLLC:      "llc",
	LayerMPLS:     "mpls",
	LayerPPPoE:    "pppoe",
	LayerPPP:      "ppp",
	LayerCHDLC:    "chdlc",
	LayerSLL:      "sll",
	LayerSLL2:     "sll2",
	LayerNull:     "null",
	LayerNFLog:    "nflog",
	LayerIPoIB:    "ipoib",
	LayerRadiotap: "radiotap",
	LayerDot11:    "802.11",
	LayerIPv4:     "ipv4",
	LayerIPv6:     "ipv6",
	LayerIPv6Ext:  "ipv6_ext",
	LayerUDP:      "udp",
	LayerGRE:      "gre",
	LayerVXLAN:    "vxlan",
	LayerGeneve:   "geneve",
	LayerTCP:      "tcp",
}

// String returns the layer's lower-case name.
func (l Layer) String() string {
	if l < numLayers {
		return layerNames[l]
	}
	return fmt.Sprintf("layer(%d)", uint8(l))
}

// Result tells the caller what a frame was and where decoding stopped.
type Result struct {
	// Kind is what the frame carried.
	Kind Kind
	// Layer is the innermost header Decode reached: the TCP header for
	// KindTCP, the UDP header for KindUDP, the IP header for KindICMP and
	// KindOtherIP (the GRE header when Decode does not open its payload),
	// the header that marks the fragment for KindFragment, the last header
	// read for KindNonIP, and the header at fault for KindTruncated and
	// KindMalformed (LayerNone for KindUnsupportedLink).
	Layer Layer
	// Offset is the byte offset of Layer from the start of the frame.
	Offset int
	// Tunnels counts the encapsulations Decode opened to get there: IP in
	// IP, GRE, VXLAN and Geneve. 0 for a plain frame.
	Tunnels int
}

// Sentinel errors. Every error Decode returns is an *Error wrapping one of
// them, so callers test with errors.Is.
var (
	// ErrTruncated reports a header cut by the capture's snap length.
	ErrTruncated = errors.New("layer: truncated")
	// ErrMalformed reports a header that contradicts itself or the frame.
	ErrMalformed = errors.New("layer: malformed")
	// ErrUnsupportedLink reports a link type Decode does not know.
	ErrUnsupportedLink = errors.New("layer: unsupported link type")
)

// Error describes why Decode could not reach a TCP header. Decode returns
// shared, preallocated values, so returning one costs no allocation; treat
// them as read-only. The frame-level location is in Result.Offset.
type Error struct {
	// Layer is the header at fault.
	Layer Layer
	// Reason says what is wrong with it, in lower case.
	Reason string
	// Err is ErrTruncated, ErrMalformed or ErrUnsupportedLink.
	Err error
}

// Error returns "layer: LAYER: REASON".
func (e *Error) Error() string { return "layer: " + e.Layer.String() + ": " + e.Reason }

// Unwrap returns the sentinel the error wraps.
func (e *Error) Unwrap() error { return e.Err }

// truncated holds one "truncated" error per layer.
var truncated = func() (t [numLayers]*Error) {
	for l := range t {
		t[l] = &Error{Layer: Layer(l), Reason: "header truncated by snap length", Err: ErrTruncated}
	}
	return t
}()

// shortFrame holds one "frame too short" error per layer: the header does
// not fit in the bytes the frame (or the enclosing header) declares.
var shortFrame = func() (t [numLayers]*Error) {
	for l := range t {
		t[l] = &Error{Layer: Layer(l), Reason: "header longer than the frame", Err: ErrMalformed}
	}
	return t
}()

func malformed(l Layer, reason string) *Error {
	return &Error{Layer: l, Reason: reason, Err: ErrMalformed}
}

// Malformed-header errors, one per check.
var (
	errUnsupportedLink = &Error{Layer: LayerNone, Reason: "unsupported link type", Err: ErrUnsupportedLink}
	errTooDeep         = malformed(LayerNone, "too many nested headers")
	errIPVersion       = malformed(LayerIPv4, "ip version is neither 4 nor 6")
	errIPv4IHL         = malformed(LayerIPv4, "header length below 20")
	errIPv4Len         = malformed(LayerIPv4, "total length below header length")
	errIPv4Options     = malformed(LayerIPv4, "bad options")
	errIPv6ZeroLen     = malformed(LayerIPv6, "payload length 0 (jumbogram or segmentation offload)")
	errTCPOffset       = malformed(LayerTCP, "data offset below 5")
	errUDPLen          = malformed(LayerUDP, "length below 8")
	errGRE             = malformed(LayerGRE, "bad header")
	errRadiotapLen     = malformed(LayerRadiotap, "header length below 8")
	errDot11Version    = malformed(LayerDot11, "protocol version is not 0")
	errNFLogTLV        = malformed(LayerNFLog, "bad tlv length")
	errPPP             = malformed(LayerPPP, "bad protocol field")
)
