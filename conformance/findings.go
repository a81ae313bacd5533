//go:build conformance

package conformance

// expectedCorpusFindings labels the corpus captures (paths relative to the
// corpus) with the finding kinds at warning or above that a person doing a
// postmortem of that capture would want to be told about, each checked in
// tshark; captures not listed expect none. TestFindingsPrecisionRecall
// counts h2scope's findings against these labels.
var expectedCorpusFindings = map[string][]string{
	// Lost SYN-ACKs: connection 4's handshake waits 1.55 s for the server's retransmitted SYN-ACK; connection 5's client retries its SYN after 2.07 s.
	// Data retransmitted 6.9 s on average after the original (tcp.analysis.rto) on four HTTPS connections: real loss.
	"ndpi/heuristic_tcp_ack_payload.pcap": {"handshake_latency", "syn_retransmit", "packet_loss"},
	// A real client's SYN (Win=64240, ISN 4291095205) goes out 3 times 1 s apart before a SYN-ACK, among 20 unanswered hping-style SYNs on the same 4-tuple.
	"sv/bug-7657-01/input.pcap": {"syn_retransmit"},
	// 41 back-to-back connections to 127.0.0.1:8000, one Range request each, the server answering Connection: close.
	"sv/http-range-multiflows/input.pcap": {"reconnect_churn"},
	// The gRPC client sends GOAWAY(INTERNAL_ERROR) on both connections.
	"sv/http2-errorcode/input.pcap": {"goaway"},
	// The SMTP server advertises a zero window 15 times; the client is held back for over 0.5 s.
	"sv/mime-stream-depth/input.pcap": {"window_stall"},
	// UPnP SOAP and eventing: 43 and 34 connections with one request each, Connection: close asked by the client.
	"sv/output-eve-ftp-data/input.pcap": {"reconnect_churn"},
	// The first connection's SYN to 10.150.9.69:443 is retransmitted after 2.9 s and 6 s and never answered;
	// the second connection's client (SSL 2.0-format ClientHello) waits 4.84 s after the ServerHello before its
	// ClientKeyExchange: a 4.86 s TLS handshake against a 58 ms median to the same server.
	"sv/ssl_version_negated/input.pcap": {"handshake_latency", "syn_retransmit"},
	// The SYN is retransmitted after 3 s; the SYN-ACK comes 7 s after the first SYN. The response to GET / stalls
	// at a hole the server never fills (58,601 bytes of it seen); 30 s after its last ACK the client resets the
	// connection with the response incomplete: it gave up (connection_lost client_abort).
	"sv/tcp-rst-unacked-stream-10/TLPW1-tcp-174.56.47.59-10.3.11.101-tcp-80-49309.pcap": {"connection_lost", "syn_retransmit"},
	// 127.0.0.1:8442 refuses the first connection with RST (nothing listening); the client then uses 8443.
	"sv/tls-duplicate-hello/input.pcap": {"syn_retransmit"},
	// Two session-id resumptions to mc.yandex.ru answered with full handshakes; 9 connection attempts need SYN retries (3 s RTO), one never answered.
	// Also 13 of 64 packets to www.bing.com retransmitted, 0.7 s after the originals on average.
	"sv/tls-subjectaltname/input.pcap": {"resumption_failure", "syn_retransmit", "packet_loss"},
	// The HTTP client advertises a zero window 57 times; the server is held back for about 1 s.
	// Also 56 data segments retransmitted 7.2 s after the originals on average (tcp.analysis.rto).
	"zeek/http/206_example_b.pcap": {"window_stall", "packet_loss"},
	// 17 of 117 packets retransmitted, 3.7 s after the originals on average.
	"zeek/tcp/reassembly.pcap": {"packet_loss"},
	// Wireshark's own retransmission sample: 36 data retransmissions, 14 of them fast (after duplicate ACKs).
	"arkime/wireshark-retrans.pcap": {"packet_loss"},
	// 44 connections to www.google.com with one request each (a script trying methods), most with Connection: close.
	"zeek/http/methods.pcap": {"reconnect_churn"},
	// A SYN to 127.0.0.1:80 retransmitted 3 times and never answered (a hand-made option test, but exactly the signal).
	"zeek/tcp/option-sack.pcap": {"syn_retransmit"},
	// Connection 1 offers the session id connection 0's server issued (frames 6, 27), connection 2 the one
	// connection 1 got; the server answers both with new session ids and full handshakes.
	"zeek/tls/ssl.v3.pcap": {"resumption_failure"},
	// Five TLS 1.2 connections to www.google.com seconds apart: the server issues a NewSessionTicket every time
	// (frames 9, 23, 37, 51), the client's next ClientHello carries an empty session_ticket extension and no
	// session id: a client without a session cache (client_not_offering).
	"zeek/tls/google-cert-repeat.pcap": {"resumption_failure"},
	// After 908 s idle the client sends "GET " on its kept connection and the server answers RST: a stale keep-alive reuse.
	"arkime/long-session.pcap": {"keepalive_mismatch"},
}

// knownFindingDifferences explains the labelled findings h2scope misses
// ("CAPTURE: -kind") or reports wrongly ("CAPTURE: +kind"), on the corpus
// or on a generated scenario. The test fails on any other difference and
// on an entry that no longer differs.
var knownFindingDifferences = map[string]string{
	// Same-server outliers by the detector's rule (3× the median and
	// beyond the MAD bound), but one handshake of ~110 ms among five is
	// not worth a warning; an absolute floor above 50 ms (MinLatency)
	// would drop them, at the cost of real outliers on fast networks.
	// The client's data after the idle gap is 5 bytes ("GET "), not a
	// complete request, so no exchange is recorded, and the connection
	// carried no earlier exchange: keepalive_mismatch sees neither a
	// reuse gap nor a request lost to the server's RST.
	"arkime/long-session.pcap: -keepalive_mismatch": "the request after 908 s idle is incomplete (\"GET \"), no exchange for the detector to see",
}
