package layer

import (
	"net/netip"

	"github.com/h2scope/h2scope/dissect/event"
)

// Flags holds the TCP header flag bits, in their wire positions.
type Flags uint16

// TCP flag bits.
const (
	FIN Flags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
	NS
)

// Has reports whether all bits in v are set.
func (f Flags) Has(v Flags) bool { return f&v == v }

// Segment is one decoded TCP segment.
type Segment struct {
	// Ref locates the frame that carried the segment. Decode leaves it
	// untouched; the caller sets it.
	Ref event.Ref
	// Src and Dst are the segment's endpoints.
	Src, Dst netip.AddrPort
	// Seq and Ack are the raw (absolute) sequence and acknowledgement numbers.
	Seq, Ack uint32
	// Win is the raw, unscaled window field.
	Win uint16
	// Flags are the TCP flags.
	Flags Flags
	// WScale is the window-scale shift from the window scale option, or -1
	// when the segment carries none. Shifts above 14 read as 14 (RFC 7323
	// section 2.3).
	WScale int8
	// MSS is the maximum segment size option, or 0 when absent.
	MSS uint16
	// SACKPermitted reports the SACK-permitted option.
	SACKPermitted bool
	// PayloadLen is the TCP payload length as the IP header states it (IP
	// payload length minus the TCP header length), as Wireshark's tcp.len.
	// Like Wireshark, Decode bounds the IP length by the frame's length on
	// the wire and reads an IPv4 total length of 0 (segmentation offload)
	// as "to the end of the frame".
	PayloadLen int
	// Payload holds the captured payload bytes; it is shorter than
	// PayloadLen when the frame was cut by the snap length. It aliases the
	// packet's data and is valid only until the packet buffer is reused.
	Payload []byte
	// Sum, when Summed is set, is tcp.Fingerprint(Payload), which
	// connection tracking keeps of every payload it delivers. A caller
	// that decodes packets on another goroutine than the tracker's
	// computes it there, while the bytes are still in that core's cache;
	// otherwise the tracker does. Decode clears Summed.
	Sum    uint32
	Summed bool
}
