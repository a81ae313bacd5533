// Package slice writes the packets of a finding, of connections or of one
// HTTP/2 stream as a pcapng file that Wireshark opens on its own: the
// evidence of an incident, small enough to attach to a ticket.
//
// # What a slice holds
//
// The packets selected, in capture order, with their original bytes,
// timestamps and interfaces: each source interface (a pcapng Interface
// Description Block with its link type, snap length and options, such as
// if_tsresol; or a classic pcap file's header, written as an interface
// with the file's resolution) becomes one interface of the slice, and
// each packet keeps its timestamp in its interface's units. Packets are
// selected by
//
//   - connection (Wireshark's tcp.stream, as h2scope conns numbers them):
//     every packet of the connection;
//   - HTTP/2 stream of a connection: the packets a decoder needs for it —
//     the TCP handshake and close, and every payload segment up to the
//     stream's last frame, except, on a cleartext connection, segments
//     that start and end on a frame boundary and hold only DATA,
//     PRIORITY, RST_STREAM or WINDOW_UPDATE frames of other streams. Over
//     TLS every record up to the stream's last frame is kept, since
//     decryption needs each record's sequence number; header blocks of
//     every stream are kept, since HPACK decodes them in order;
//   - finding: its connections, its streams as above, and its evidence
//     frames;
//   - time: --from and --to narrow any of the above, or alone select every
//     packet captured in the window.
//
// # Comments and secrets
//
// Every packet carries an opt_comment naming its frame number in the full
// capture ("h2scope: frame 41 of the full capture"); an evidence frame
// also carries the finding's id, severity and summary and the evidence
// line. The section header's comments name the source files, the
// selection and the h2scope version, and shb_userappl says h2scope.
//
// A Decryption Secrets Block, before the first packet, holds the NSS key
// log lines of the sliced TLS sessions only (found by the client random
// of each connection's ClientHello) from the key logs given and the
// sources' own Decryption Secrets Blocks, so that the slice decrypts in
// Wireshark alone and carries no other session's keys. A TLS 1.2
// connection that resumed a session (by ticket or session id) has no key
// log line of its own (Go writes none): its master secret is the one of
// the connection that established the session, found by following the
// cleartext handshakes (ClientHello ticket and session id, ServerHello,
// NewSessionTicket), and the slice holds a CLIENT_RANDOM line for it with
// that secret, so Wireshark decrypts it without the first connection
// (which tshark 4.0 cannot do in the full capture).
//
// # Passes
//
// Write reads the captures two or three times: once to analyse them
// when a finding is asked for, once to dissect the selected connections,
// and once to copy the packets, walking each source file's records to
// the offsets dissect/capture reports. Standard input cannot be sliced.
package slice
