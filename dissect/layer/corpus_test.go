package layer

import (
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// corpusCases lists every capture of the shared corpus with the number of
// frames, of TCP segments and the sum of their payload lengths, as
//
//	tshark -r F -Y 'tcp && !icmp && !icmpv6' -T fields -e tcp.len
//
// prints them with tshark 4.0.17 (one line per segment, tcp.len summed;
// lines without a tcp.len are not segments), and the number of frames Decode
// reports as truncated, malformed or of an unsupported link type. Where we
// depart from Wireshark on purpose the row holds our numbers and a comment
// gives tshark's and the reason.
var corpusCases = []struct {
	path             string
	frames, tcp, sum int
	bad              int
}{
	{"arkime/80211http.pcap", 26, 26, 8592, 0},
	{"arkime/curl-enabled-tls13.pcap", 35, 31, 5083, 0},
	{"arkime/http-wrapped-header.pcap", 12, 12, 4119, 0},
	{"arkime/http2-nghttp2.pcap", 101, 101, 64897, 0},
	{"arkime/https-generalizedtime.pcap", 6, 6, 5553, 0},
	{"arkime/long-session.pcap", 5, 5, 5, 0},
	{"arkime/nflog.pcap", 10, 10, 1339, 0},
	{"arkime/no-syn-ack.pcap", 10, 10, 2037, 0},
	{"arkime/tls-alpn-h2.pcap", 9, 9, 3047, 0},
	{"arkime/tls-client-sessionid.pcap", 16, 16, 1077, 0},
	{"arkime/twovlan.pcap", 6, 6, 4457, 0},
	{"arkime/v6-http.pcap", 55, 10, 2499, 0},
	{"arkime/wireshark-retrans.pcap", 108, 108, 23192, 0},
	{"gopacket/test_loopback.pcap", 24, 24, 56331, 0},
	{"grpc-go-pro/Bidi Streaming.pcapng", 56, 56, 682, 0},
	{"grpc-go-pro/Client Streaming.pcapng", 52, 52, 556, 0},
	{"grpc-go-pro/Server Streaming.pcapng", 31, 31, 716, 0},
	{"grpc-go-pro/Unary.pcapng", 4318, 4306, 52447, 0},
	{"illustrated-tls12/capture.pcap", 22, 22, 1709, 0},
	{"illustrated-tls13/capture.pcap", 22, 22, 2224, 0},
	{"ja4/browsers-x509.pcapng", 179, 179, 46202, 0},
	{"ja4/http1.pcapng", 184, 184, 249337, 0},
	{"ja4/http2-with-cookies.pcapng", 1607, 1607, 1859645, 0},
	{"ja4/latest.pcapng", 209, 137, 56452, 0},
	{"ja4/macos_tcp_flags.pcap", 43, 43, 10577, 0},
	{"ja4/tls-handshake.pcapng", 193, 153, 132134, 0},
	{"ja4/tls3.pcapng", 1189, 386, 248579, 0},
	{"ndpi/heuristic_tcp_ack_payload.pcap", 303, 303, 96601, 0},
	{"ndpi/http-crash-content-disposition.pcap", 9, 9, 2844, 0},
	{"ndpi/http2.pcapng", 10, 10, 591, 0},
	{"ndpi/http_ua_splitted_in_two_pkts.pcapng", 115, 115, 68704, 0},
	{"ndpi/tcp_scan.pcapng", 30, 18, 0, 0},
	{"ndpi/tls_2_reasms.pcapng", 14, 14, 5975, 0},
	{"ndpi/tls_certificate_too_long.pcap", 315, 262, 91316, 0},
	{"ndpi/tls_heur__vmess-tcp-tls.pcapng", 100, 84, 39429, 0},
	{"pcapplusplus/SSL-NewSessionTicket.pcap", 1, 1, 298, 0},
	{"pcapplusplus/four_ipv6_http_streams.pcap", 81, 81, 34770, 0},
	{"pcapplusplus/http-packets2.pcap", 222, 222, 66459, 0},
	{"pcapplusplus/linktype_ipv6.pcap", 1, 1, 0, 0},
	{"pcapplusplus/many_interfaces-1.pcapng", 64, 32, 3045, 0},
	{"pcapplusplus/nanosecs_big_endian.pcap", 10, 10, 1522, 0},
	{"pcapplusplus/null_loopback.pcap", 3, 1, 403, 0},
	{"pcapplusplus/one_http_stream_rst.pcap", 10, 10, 1636, 0},
	{"pcapplusplus/one_tcp_stream.pcap", 36, 36, 25233, 0},
	{"pcapplusplus/one_tcp_stream_fin_rst_close_packet.pcap", 13, 13, 313, 0},
	{"pcapplusplus/raw_ip.pcap", 100, 92, 24437, 0},
	{"pcapplusplus/sll.pcap", 518, 483, 415114, 0},
	{"pcapplusplus/sll2.pcap", 3, 3, 31, 0},
	{"pcapplusplus/tcp-reassembly.pcap", 66, 65, 40070, 0},
	{"pcapplusplus/three_http_streams.pcap", 28, 28, 2935, 0},
	{"pcapplusplus/unidirectional_tcp_stream_with_missing_packet.pcap", 14, 14, 8528, 0},
	{"sv/bug-3616-smtp/input.pcap", 60, 53, 21083, 0},
	{"sv/bug-5929-02/http2_multiple_headers.pcap", 12, 12, 879, 0},
	// tshark: 1 segment, 0 bytes. Wireshark reassembles the three IPv4
	// fragments and shows the SYN in the last one; we report fragments.
	{"sv/bug-6887-defrag-ppp-ipv4-tcp-syn/frag-ppp-ip-tcp-syn.pcap", 3, 0, 0, 0},
	{"sv/bug-7657-01/input.pcap", 32, 32, 1626, 0},
	{"sv/decode-chdlc-01/hdlc-http_1tx.pcap", 17, 17, 9550, 0},
	{"sv/decode-sll2-01/input.pcap", 5, 5, 82, 0},
	{"sv/dns-over-http2-limit/input.pcap", 50, 50, 131665, 0},
	{"sv/dns-over-http2-post/dns_over_https_POST.pcap", 147, 147, 10730, 0},
	{"sv/dns-over-http2/dns_over_https.pcap", 25, 25, 3414, 0},
	// tshark: 6 segments, 471 bytes. Frame 7 has a TCP data offset of 2
	// (8 bytes): Wireshark calls it bogus yet reports tcp.len 37; we call
	// the frame malformed. (Frame 1 is an IPv4 fragment for both.)
	{"sv/drop-protocol-change/input.pcap", 7, 5, 434, 1},
	{"sv/ethernet-eve/test.pcap", 132, 118, 155542, 0},
	{"sv/http-ipv6/input.pcap", 14, 14, 791, 0},
	{"sv/http-range-multiflows/input.pcap", 614, 614, 57137, 0},
	{"sv/http2-authority-mismatch/authority_and_host_2.pcap", 10, 10, 423, 0},
	{"sv/http2-bugfixes/input.pcap", 29, 29, 4807, 0},
	{"sv/http2-compression-bug/input.pcap", 54, 54, 22456, 0},
	{"sv/http2-continuation/input.pcap", 30, 30, 380, 0},
	{"sv/http2-deflate-case/input.pcap", 28, 28, 553, 0},
	{"sv/http2-deflate/http2_deflate.pcap", 30, 30, 511, 0},
	{"sv/http2-errorcode/input.pcap", 55, 55, 949, 0},
	{"sv/http2-keywords/input.pcap", 56, 56, 412939, 0},
	{"sv/http2-keywords2/input.pcap", 10, 10, 773, 0},
	{"sv/http2-long-frame/input.pcap", 60, 60, 70283, 0},
	{"sv/http2-range/http2-range.pcap", 116, 116, 2279, 0},
	{"sv/http2-userinfo-authority/http2_userinfo_in_authority_1.pcap", 9, 9, 423, 0},
	{"sv/linktype-228/flow-test-01.pcap", 7, 7, 164, 0},
	{"sv/mime-stream-depth/input.pcap", 2500, 2500, 1793692, 0},
	{"sv/mqtt-limit-2/input.pcap", 37, 37, 201188, 0},
	{"sv/output-eve-ftp-data/input.pcap", 1350, 755, 51542, 0},
	{"sv/ssl_version_negated/input.pcap", 114, 114, 32927, 0},
	{"sv/tcp-fastopen-11-reject-syn-data/tlpw-tcp-tfo-data-on-syn-nack.pcap", 29, 29, 7428, 0},
	{"sv/tcp-rst-unacked-stream-10/TLPW1-tcp-174.56.47.59-10.3.11.101-tcp-80-49309.pcap", 75, 75, 54379, 0},
	{"sv/tcp-session-syn-flood-drop-precedence/input.pcap", 200, 200, 0, 0},
	{"sv/tls-duplicate-hello/input.pcap", 15, 15, 1716, 0},
	{"sv/tls-subjectaltname/input.pcap", 3138, 2982, 1369609, 0},
	{"sv/tls13-draft19/tls13_draft19.pcap", 49, 49, 15889, 0},
	{"sv/tls13-draft28/tls13_draft28.pcap", 30, 30, 5205, 0},
	// Frames 11 and 59 have a TCP header longer than the IP payload: both
	// tshark and we report no tcp.len.
	{"sv/transform-base64-7296/input.pcap", 59, 57, 1184, 2},
	{"tcpdump/ipoib.pcap", 30, 20, 1438, 0},
	{"tcpdump/mptcp-v1.pcap", 20, 20, 20536, 0},
	{"tcpdump/print-flags.pcap", 10, 10, 5761, 0},
	{"tcpdump/tcp-handshake-nano.pcap", 3, 3, 0, 0},
	{"tcpdump/tcp_rst_diag_payload.pcap", 1, 1, 8, 0},
	{"wireshark-notes/http2-16-ssl.pcapng", 24, 24, 2131, 0},
	{"wireshark-notes/tls-null.pcapng", 15, 15, 3207, 0},
	{"wireshark-notes/works/dump.pcapng", 90, 90, 13024, 0},
	{"wireshark-test/http2-data-reassembly.pcap", 44, 44, 78491, 0},
	{"zeek/http-qinq-0.pcap", 14, 14, 5143, 0},
	{"zeek/http-vlan-0.pcap", 14, 14, 5143, 0},
	{"zeek/http/1000-requests-one-dropped-response.pcap", 4102, 4102, 996757, 0},
	{"zeek/http/206_example_b.pcap", 1556, 1556, 1379737, 0},
	{"zeek/http/261/variant-04-te_cl_desync.pcap", 8, 8, 132, 0},
	{"zeek/http/bro.org.pcap", 751, 751, 453271, 0},
	{"zeek/http/connect-with-header.pcap", 58, 58, 59143, 0},
	{"zeek/http/get-without-fins.pcap", 11, 11, 5143, 0},
	{"zeek/http/http-desync-request-response-5.pcap", 53, 53, 1306, 0},
	{"zeek/http/m57-long-49583-80.pcap", 227, 227, 201210, 0},
	{"zeek/http/methods.pcap", 655, 655, 184311, 0},
	{"zeek/http/pipelined-requests.pcap", 49, 49, 42362, 0},
	{"zeek/http/vnd.ms-cab-compressed-multi-conn.pcap", 158, 158, 88634, 0},
	{"zeek/ipv6-http-atomic-frag.pcap", 38, 36, 412, 0},
	{"zeek/nflog-http.pcap", 13, 13, 1682, 0},
	{"zeek/tcp/ctu-64702-888.pcap", 16, 16, 26, 0},
	{"zeek/tcp/fin_retransmission.pcap", 5, 5, 0, 0},
	{"zeek/tcp/handshake-reorder.pcap", 14, 14, 5143, 0},
	{"zeek/tcp/missing-syn.pcap", 21, 21, 9515, 0},
	{"zeek/tcp/option-sack.pcap", 4, 4, 0, 0},
	{"zeek/tcp/qi_internet_SYNACK_curl_jsonip.pcap", 14, 14, 544, 0},
	{"zeek/tcp/reassembly.pcap", 117, 117, 34370, 0},
	{"zeek/tcp/retransmit-fast009.pcap", 39, 39, 28547, 0},
	{"zeek/tcp/retransmit-timeout.pcapng", 3, 3, 36, 0},
	{"zeek/tcp/rst-inject-rae.pcap", 9, 9, 175, 0},
	{"zeek/tcp/ssh-dups.pcap", 377, 377, 31912, 0},
	{"zeek/tcp/tcp-fast-open.pcap", 16, 16, 1658, 0},
	{"zeek/tls/google-cert-repeat.pcap", 116, 116, 39870, 0},
	{"zeek/tls/hrr.pcap", 19, 19, 2618, 0},
	{"zeek/tls/ssl.v3.pcap", 252, 252, 169870, 0},
	{"zeek/tls/tls-1.2-stream-keylog.pcap", 237, 237, 162548, 0},
	{"zeek/tls/tls-13draft19-early-data.pcap", 50, 50, 11876, 0},
	{"zeek/tls/tls-early-alert.pcap", 17, 17, 6771, 0},
	{"zeek/tls/tls-fragmented-handshake.pcap", 416, 416, 340365, 0},
	{"zeek/tls/tls13_psk_succesfull.pcap", 20, 20, 1012, 0},
	{"zeek/tunnels/vxlan-encapsulated-http.pcap", 12, 12, 9299, 0},
}

// TestCorpusMatchesTshark decodes every capture of the shared corpus and
// compares the TCP segments found and their tcp.len sum with tshark's.
func TestCorpusMatchesTshark(t *testing.T) {
	skipWithoutCorpus(t)
	for _, tc := range corpusCases {
		t.Run(tc.path, func(t *testing.T) {
			d := NewDecoder()
			var s Segment
			frames, tcp, sum := 0, 0, 0
			readCapture(t, filepath.Join(corpusDir, tc.path), func(link layers.LinkType, data []byte, origLen int) {
				frames++
				r, err := d.Decode(link, data, origLen, &s)
				if (err != nil) != (r.Kind >= KindTruncated) {
					t.Errorf("frame %d: kind %v with err %v", frames, r.Kind, err)
				}
				if r.Kind != KindTCP {
					return
				}
				tcp++
				sum += s.PayloadLen
				if len(s.Payload) > s.PayloadLen {
					t.Errorf("frame %d: %d payload bytes for tcp.len %d", frames, len(s.Payload), s.PayloadLen)
				}
			})
			st := d.Stats
			bad := int(st.Truncated + st.Malformed + st.Unsupported)
			if frames != tc.frames || tcp != tc.tcp || sum != tc.sum || bad != tc.bad {
				t.Errorf("frames %d, tcp %d, sum %d, bad %d; want %d, %d, %d, %d (stats %+v)",
					frames, tcp, sum, bad, tc.frames, tc.tcp, tc.sum, tc.bad, st)
			}
		})
	}
}
