package conformance

// knownDifferences lists the captures on which h2scope deliberately counts
// differently from tshark 4.0, with the reason; the README's "Where we
// differ from Wireshark" section explains each. The conformance test fails
// on any other difference, and on an entry that no longer differs.
var knownDifferences = map[string]string{
	"pcapplusplus/tcp-reassembly.pcap":                             "sflow_sample",
	"sv/bug-6887-defrag-ppp-ipv4-tcp-syn/frag-ppp-ip-tcp-syn.pcap": "ip_fragments",
	"sv/drop-protocol-change/input.pcap":                           "bogus_tcp_header",
	"sv/transform-base64-7296/input.pcap":                          "bogus_tcp_header",
}

// Reasons, as printed in the agreement table:
//
//   - sflow_sample: tshark decodes the TCP headers sampled inside sFlow
//     datagrams (UDP 6343) as TCP frames; they are copies of traffic seen
//     elsewhere, so h2scope leaves them out.
//   - ip_fragments: tshark reassembles IPv4 fragments; h2scope counts and
//     flags them (layer.KindFragment) without reassembly.
//   - bogus_tcp_header: a TCP header whose data offset is below 20 bytes or
//     beyond the segment; tshark still gives the frame a tcp.stream, h2scope
//     counts it as malformed and leaves it out of connections.
