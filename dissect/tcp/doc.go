// Package tcp tracks TCP connections in a capture and delivers each
// direction's bytes in order.
//
// # Connections
//
// A Tracker keeps a table of connections keyed by their 4-tuple. Connection
// identity follows Wireshark's tcp.stream: IDs are 0-based in order of each
// connection's first frame, and a SYN whose sequence number differs from the
// initial sequence number already recorded for that side of a 4-tuple starts
// a new connection (port reuse). The client is the sender of the SYN, or the
// receiver of the SYN-ACK; without either, the endpoint with the higher port
// is taken for the client and Conn.ClientGuessed says so.
//
// # Analysis
//
// Each segment is classified with Wireshark's TCP analysis definitions
// (retransmission, fast and spurious retransmission, out-of-order, previous
// segment not captured, ACKed unseen segment, duplicate ACK, zero window,
// zero-window probe and its ACK, window full, window update, keep-alive and
// its ACK), so counts agree with tshark's tcp.analysis.* fields. The Zeek
// conn.log summary (conn_state, history, missed_bytes) is kept beside them.
//
// # Reassembly
//
// A StreamHandler receives each direction's payload in sequence order.
// Out-of-order segments are buffered, capped per connection and in total;
// duplicate bytes are dropped and the first-seen copy wins; bytes the capture
// never saw become an explicit Gap once the peer acknowledges past them, the
// buffer cap is reached, or the connection ends. Every Data call carries the
// Ref of the frame whose segment held those bytes.
//
// Time comes from the capture: connections idle for longer than the
// configured timeouts (measured in packet timestamps) are finished and handed
// to Options.OnFinish, which frees their state. A connection closed by FIN
// from both sides, or reset after payload, lets its StreamHandler go
// earlier, Options.StreamGrace (5 s, as Zeek's tcp_close_delay) after the
// close (Options.OnStreamsDone), so that application state is freed long
// before the connection itself is finished (Options.ClosedTimeout, 2 min,
// kept so that late packets are counted in the same connection as
// Wireshark counts them); payload arriving after that is counted
// (late_payload_bytes), not delivered.
//
// # Memory
//
// What a Tracker holds grows with the connections it tracks (at most
// MaxConns open and MaxClosed closed ones, and MaxConns tombstones of
// closed connections finished early, 40 bytes each: see tomb.go),
// not with those it finished.
// Most of them wait with nothing to deliver, and are kept small: a closed
// connection whose streams are closed keeps its Summary (416 bytes) and
// its tracking state encoded in about a hundred bytes (see compact.go),
// and a connection only one side of which has sent control segments (an
// unanswered SYN) is a half-open record of 264 bytes (see half.go). Each
// is decoded (or replayed) again, by the same code, when a packet
// arrives for it, so that late packets are analysed as Wireshark
// analyses them. The tracking states of active connections (about a
// kilobyte each) are reused once they are done.
package tcp
