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

// knownHTTP2Differences lists the captures whose HTTP/2 frames differ from
// tshark's on purpose, with the reason (see the README).
//
//   - tshark_no_resync: the capture starts inside a DATA frame; tshark never
//     finds the next frame boundary in that direction, h2scope does (the
//     generator's truth file confirms every frame h2scope reports).
//   - h2c_switch_in_segment: the 101 response and the server's first
//     SETTINGS frame share one TCP segment at the very start of the capture;
//     tshark decodes neither as HTTP/2, h2scope follows the switch.
//   - preface_after_http1: a hostile test capture sends the HTTP/2 preface
//     on a connection that spoke HTTP/1.1 without any upgrade; tshark
//     switches to HTTP/2 there, h2scope keeps parsing HTTP/1.1 and reports
//     the preface lines as malformed requests.
//   - mixed_port: HTTP/1.1 and prior-knowledge h2c on one server port; tshark
//     recognises neither h2c connection by itself and the harness cannot
//     tell it to decode one connection of a port as HTTP/2 (with
//     -d tcp.port==PORT,http2 tshark finds the same 31 frames as h2scope).
var knownHTTP2Differences = map[string]string{
	"testdata/pcaps/h2c-large-slow-midstream.pcapng": "tshark_no_resync",
	"sv/drop-protocol-change/input.pcap":             "h2c_switch_in_segment",
	"sv/transform-base64-7296/input.pcap":            "preface_after_http1",
	"testdata/pcaps/hostile-strings.pcapng":          "mixed_port",
}

// knownGRPCDifferences lists the captures whose gRPC message counts differ
// from tshark's on purpose, with the reason:
//
//   - grpc_by_shape: the capture starts after the calls' HEADERS, so no
//     content-type says "application/grpc"; tshark then dissects no gRPC,
//     h2scope recognises the streams by their length-prefixed DATA (the
//     truth file confirms the 26 messages).
//   - mixed_port: as for HTTP/2 above, tshark recognises no h2c connection
//     of the port, so none of its gRPC messages (decoding the port as
//     HTTP/2 it finds 2 of h2scope's 4: the last call's request headers,
//     73 KB of :authority, are past its limits too, and h2scope recognises
//     that call by its length-prefixed DATA).
var knownGRPCDifferences = map[string]string{
	"testdata/pcaps/grpc-unary-h2c-midstream.pcapng": "grpc_by_shape",
	"testdata/pcaps/hostile-strings.pcapng":          "mixed_port",
}

// knownTLSDifferences lists the captures whose TLS hello counts differ from
// tshark's on purpose, with the reason:
//
//   - socks_tunnel: TLS inside a SOCKS proxy connection; tshark follows
//     SOCKS, h2scope does not open SOCKS tunnels.
//   - tshark_retransmission_skip: an ACK before the handshake moves tshark's
//     next-sequence mark, so it takes the server's first flight for
//     retransmissions and skips its ServerHello; h2scope reassembles it.
//   - tshark_ooo_serverhello: out-of-order segments make tshark miss the
//     ServerHello that follows a HelloRetryRequest and the second
//     ClientHello; h2scope reassembles it.
var knownTLSDifferences = map[string]string{
	"ndpi/tls_heur__vmess-tcp-tls.pcapng": "socks_tunnel",
	"sv/tls-subjectaltname/input.pcap":    "tshark_retransmission_skip",
	"zeek/tls/hrr.pcap":                   "tshark_ooo_serverhello",
}

// knownTLSDecryptDifferences explains captures on which the decrypted TLS
// handshake messages differ from tshark's with the same key log.
var knownTLSDecryptDifferences = map[string]string{
	// Go logs no key for a resumed TLS 1.2 connection; h2scope decrypts
	// the 6 resumed connections with the master secret of the connection
	// that issued the ticket (truth: resumed_from), tshark 4.0 does not
	// follow tickets across connections and leaves their Finished and
	// alerts encrypted.
	"testdata/pcaps/tls12-resume.pcapng": "resumed TLS 1.2 sessions decrypted through the ticket's session (tshark 4.0 does not)",
	// RC4, NULL and export suites (0x0003 0x0004 0x0005 0xC002 ...):
	// prohibited for years (RFC 7465), not decrypted by h2scope.
	"wireshark-notes/works/dump.pcapng": "RC4 and export cipher suites are not decrypted",
}
