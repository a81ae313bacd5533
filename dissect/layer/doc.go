// Package layer decodes captured frames, from the link layer down to TCP,
// into [Segment] values. A [Decoder] is reused for every frame of a capture
// and allocates nothing per frame.
//
// # What is decoded
//
// Link types: Ethernet (with 802.1Q, 802.1ad and 0x9100 tags, stacked, and
// 802.2 LLC/SNAP), Linux cooked capture v1 and v2, BSD null and loop, raw
// IP (101, 12, 14), raw IPv4 (228) and IPv6 (229), PPP (9) and PPP in HDLC
// framing (50, including Cisco HDLC framing), Cisco HDLC (104), PPPoE
// (51), NFLOG (239), IP over InfiniBand (242), and IEEE 802.11 data frames
// with (127) or without (105) a radiotap header. MPLS label stacks and
// PPPoE sessions inside Ethernet are followed.
//
// Tunnels that Wireshark decodes by default are opened, and the segment
// reported is the innermost one, as Wireshark's tcp.stream uses it: IP in
// IP (protocols 4 and 41), GRE (EtherTypes IPv4, IPv6, MPLS, transparent
// Ethernet bridging, PPP), VXLAN (UDP port 4789) and Geneve (UDP port
// 6081). ICMP messages, errors quoting a TCP header included, are never
// reported as TCP.
//
// # Lengths
//
// [Segment.PayloadLen] is Wireshark's tcp.len: the IP-declared length
// minus the IP headers (extension headers included) minus the TCP header,
// whatever the snap length kept; [Segment.Payload] holds only the captured
// bytes. Where Wireshark bounds a declared length by the frame's length on
// the wire, so does Decode. An IPv4 total length of 0, written by hosts
// that capture before TCP segmentation offload, means "to the end of the
// frame". An IPv6 payload length of 0 is malformed, as in Wireshark's
// default settings.
//
// # What is not decoded
//
// Fragments are reported as [KindFragment] and not reassembled, where
// Wireshark reassembles IPv4 and IPv6 fragments (and 802.11 fragments):
// a TCP segment split into fragments is not seen. An IPv6 atomic fragment
// (offset 0, M clear) is decoded, as Wireshark does. 802.11 A-MSDUs,
// protected frames and mesh data frames, VJ-compressed PPP, and MPLS
// pseudowires are reported as [KindNonIP].
//
// # Use of gopacket
//
// IPv4 headers with options, UDP, GRE and VXLAN headers are decoded in
// place by preallocated gopacket/layers values embedded in the Decoder,
// after Decode has checked the lengths those layers would otherwise report
// with a freshly allocated error. The other headers are read by hand, each
// for a stated reason: Ethernet, 802.1Q and option-less IPv4 headers are
// on every frame, and layers.Ethernet and layers.Dot1Q store slices (with
// write barriers) where Decode needs two fields, nor can layers.IPv4 fail
// without options; gopacket/layers has no decoder for NFLOG, IPoIB, MPLS,
// PPP (outside a full gopacket.Packet) or Cisco HDLC; its TCP, Geneve and
// IPv6 hop-by-hop decoders allocate per packet; its Linux SLL decoder
// rejects the 20-byte InfiniBand address length libpcap records; and its
// 802.11 decoder does not skip HT control fields or radiotap padding.
package layer
