package layer

import (
	"github.com/gopacket/gopacket/layers"
)

// Link types Decode knows that gopacket/layers has no name for.
const (
	// LinkTypeRawOld is DLT_RAW as some BSDs write it (12), which libpcap
	// and Wireshark read as raw IP.
	LinkTypeRawOld layers.LinkType = 12
	// LinkTypeRawBSDOS is DLT_RAW as BSD/OS writes it (14), raw IP.
	LinkTypeRawBSDOS layers.LinkType = 14
	// LinkTypeNFLog is LINKTYPE_NFLOG (239), Linux netfilter log messages.
	LinkTypeNFLog layers.LinkType = 239
	// LinkTypeIPoIB is LINKTYPE_IPOIB (242), IP over InfiniBand.
	LinkTypeIPoIB layers.LinkType = 242
)

// Nesting limits. Every header consumes bytes, so decoding always ends;
// these bounds keep the work per frame and the recursion depth small.
const (
	maxTunnels  = 8  // IP-in-IP, GRE, VXLAN, Geneve
	maxTags     = 8  // 802.1Q/802.1ad tags and LLC/SNAP headers per Ethernet header
	maxLabels   = 16 // MPLS labels per stack
	maxIPv6Exts = 16 // IPv6 extension headers (and IPv4 AH) per IP header
)

// Stats counts what a Decoder has seen. Every Decode call adds one to
// Packets and one to exactly one of TCP, UDP, ICMP, OtherIP, NonIP,
// Fragments, Truncated, Malformed and Unsupported.
type Stats struct {
	// Packets counts frames passed to Decode.
	Packets uint64
	// TCP counts frames that yielded a TCP segment.
	TCP uint64
	// Tunneled counts the TCP segments found inside a tunnel (IP in IP,
	// GRE, VXLAN, Geneve); they are also counted in TCP.
	Tunneled uint64
	// UDP counts UDP datagrams other than the tunnels Decode opens.
	UDP uint64
	// ICMP counts ICMP and ICMPv6 messages.
	ICMP uint64
	// OtherIP counts IP packets carrying neither TCP, UDP nor ICMP.
	OtherIP uint64
	// NonIP counts frames whose link layer carried no IP.
	NonIP uint64
	// Fragments counts IP (and 802.11) fragments, which are not reassembled.
	Fragments uint64
	// Truncated counts frames cut by the snap length inside the headers.
	Truncated uint64
	// Malformed counts frames with inconsistent headers.
	Malformed uint64
	// Unsupported counts frames of unsupported link types.
	Unsupported uint64
	// UnsupportedLinks counts frames per unsupported link type. It is nil
	// until the first such frame.
	UnsupportedLinks map[layers.LinkType]uint64
}

// A Decoder turns captured frames into TCP segments. It holds preallocated
// gopacket layers and reuses them for every frame, so decoding a frame
// allocates nothing. A Decoder is not safe for concurrent use; use one per
// goroutine.
//
// The zero value is not ready for use; call NewDecoder.
type Decoder struct {
	// Stats counts the frames decoded so far. The caller may read or reset
	// it between calls.
	Stats Stats

	ip4   layers.IPv4
	udp   layers.UDP
	gre   layers.GRE
	vxlan layers.VXLAN

	// Per-call state.
	frame   []byte   // the frame, to compute offsets
	seg     *Segment // where the TCP segment goes
	tunnels int      // encapsulations opened so far
}

// NewDecoder returns a Decoder with zeroed Stats.
func NewDecoder() *Decoder {
	d := &Decoder{}
	// Let the first IPv4 header with options allocate nothing: gopacket
	// keeps the slice between calls once it is non-nil.
	d.ip4.Options = make([]layers.IPv4Option, 0, 8)
	return d
}

// Decode decodes one frame of the given link type, data being the captured
// bytes and origLen the frame's length on the wire (0 or less means
// len(data)). When the frame carries a TCP segment, Decode fills every field
// of *s except Ref and returns a Result of KindTCP; when tunnels nest, the
// segment is the innermost one. Otherwise *s is left untouched and the
// Result says what the frame was instead.
//
// The error is nil unless the Kind is KindTruncated, KindMalformed or
// KindUnsupportedLink; it is then an *Error wrapping ErrTruncated,
// ErrMalformed or ErrUnsupportedLink.
//
// s.Payload aliases data. Decode never keeps data after it returns and never
// panics, whatever the input.
func (d *Decoder) Decode(link layers.LinkType, data []byte, origLen int, s *Segment) (Result, error) {
	d.frame = data
	d.seg = s
	d.tunnels = 0
	rep := max(origLen, len(data))

	r, err := d.link(link, data, rep)
	d.frame, d.seg = nil, nil
	d.count(link, r)
	return r, err
}

// The decoding methods share one convention: b holds the captured bytes
// from the start of their header to the end of what the enclosing headers
// declare, and rep is the length those bytes had on the wire ("reported"
// length, as Wireshark calls it). len(b) <= rep always holds; they differ
// when the snap length cut the frame. A header that does not fit in b is
// truncated when it fits in rep and malformed otherwise.

// link dispatches on the link type.
func (d *Decoder) link(link layers.LinkType, b []byte, rep int) (Result, error) {
	switch link {
	case layers.LinkTypeEthernet:
		return d.ethernet(b, rep)
	case layers.LinkTypeNull:
		return d.null(b, rep, false)
	case layers.LinkTypeLoop:
		return d.null(b, rep, true)
	case layers.LinkTypeRaw, LinkTypeRawOld, LinkTypeRawBSDOS, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		return d.ip(b, rep)
	case layers.LinkTypeLinuxSLL:
		return d.sll(b, rep)
	case layers.LinkTypeLinuxSLL2:
		return d.sll2(b, rep)
	case layers.LinkTypePPP, layers.LinkTypePPP_HDLC:
		return d.pppHDLC(b, rep)
	case layers.LinkTypeC_HDLC:
		return d.chdlc(b, rep)
	case layers.LinkTypePPPEthernet:
		return d.pppoe(b, rep)
	case LinkTypeNFLog:
		return d.nflog(b, rep)
	case LinkTypeIPoIB:
		return d.ipoib(b, rep)
	case layers.LinkTypeIEEE80211Radio:
		return d.radiotap(b, rep)
	case layers.LinkTypeIEEE802_11:
		return d.dot11(b, rep, false)
	}
	return d.fail(LayerNone, b, errUnsupportedLink)
}

func (d *Decoder) count(link layers.LinkType, r Result) {
	st := &d.Stats
	st.Packets++
	switch r.Kind {
	case KindTCP:
		st.TCP++
		if r.Tunnels > 0 {
			st.Tunneled++
		}
	case KindUDP:
		st.UDP++
	case KindICMP:
		st.ICMP++
	case KindOtherIP:
		st.OtherIP++
	case KindNonIP:
		st.NonIP++
	case KindFragment:
		st.Fragments++
	case KindTruncated:
		st.Truncated++
	case KindMalformed:
		st.Malformed++
	case KindUnsupportedLink:
		st.Unsupported++
		if st.UnsupportedLinks == nil {
			st.UnsupportedLinks = make(map[layers.LinkType]uint64)
		}
		st.UnsupportedLinks[link]++
	}
}

// offset returns the offset of b, a subslice of the frame, from the start
// of the frame. Decoding only ever reslices the frame with two-index slice
// expressions, which keep the end of the backing array, so the difference
// of capacities is the offset.
func (d *Decoder) offset(b []byte) int { return cap(d.frame) - cap(b) }

// done returns a Result of kind k stopped at layer l, whose header starts
// at b.
func (d *Decoder) done(k Kind, l Layer, b []byte) (Result, error) {
	return Result{Kind: k, Layer: l, Offset: d.offset(b), Tunnels: d.tunnels}, nil
}

// fail returns the Result for err, found in the header starting at b.
func (d *Decoder) fail(l Layer, b []byte, err *Error) (Result, error) {
	k := KindMalformed
	switch err.Err {
	case ErrTruncated:
		k = KindTruncated
	case ErrUnsupportedLink:
		k = KindUnsupportedLink
	}
	return Result{Kind: k, Layer: l, Offset: d.offset(b), Tunnels: d.tunnels}, err
}

// short reports a header of need bytes that does not fit in b: truncated
// when the frame (rep bytes as declared) had room for it, malformed when it
// did not.
func (d *Decoder) short(l Layer, b []byte, rep, need int) (Result, error) {
	if rep >= need {
		return d.fail(l, b, truncated[l])
	}
	return d.fail(l, b, shortFrame[l])
}

// Add adds o's counts to s's.
func (s *Stats) Add(o Stats) {
	s.Packets += o.Packets
	s.TCP += o.TCP
	s.Tunneled += o.Tunneled
	s.UDP += o.UDP
	s.ICMP += o.ICMP
	s.OtherIP += o.OtherIP
	s.NonIP += o.NonIP
	s.Fragments += o.Fragments
	s.Truncated += o.Truncated
	s.Malformed += o.Malformed
	s.Unsupported += o.Unsupported
	for k, v := range o.UnsupportedLinks {
		if s.UnsupportedLinks == nil {
			s.UnsupportedLinks = map[layers.LinkType]uint64{}
		}
		s.UnsupportedLinks[k] += v
	}
}
