// Package http2 dissects HTTP/2 (RFC 9113) from the two in-order byte
// streams of one TCP connection, as delivered by the tcp package, into one
// event per frame, per-stream records and a connection summary.
//
// # Frames
//
// A Conn parses each direction incrementally: Data may be called with any
// split of the bytes, down to one byte at a time, and yields the same
// events. Only a frame header (9 bytes), the few payload bytes a frame's
// detail needs and the header block being gathered are held; DATA payload
// is streamed through to the StreamObserver as it arrives and never
// buffered, so memory per connection stays bounded and the DATA path does
// not allocate. Each frame is emitted as an event.Event (Proto http2, Type
// the RFC frame type name, Flags and Error by name) whose Ref is the packet
// that completed the frame. The client connection preface is an event of
// Type "PREFACE". Frame types are parsed through a table indexed by type
// (see FrameType, Flags, ErrCode, SettingID) whose fallback skips unknown
// types, as RFC 9113 §5.5 requires.
//
// # Synchronisation
//
// When the capture starts mid-connection (Options.MidConnection, or a
// client direction that does not start with the preface), after a gap that
// does not fall inside a frame's payload, or after a frame header that
// makes no sense, a direction looks for a frame boundary: a position is
// accepted once three consecutive plausible frame headers spanning at
// least 128 bytes line up (a known type, a length within the receiver's
// SETTINGS_MAX_FRAME_SIZE — 16384 when unknown — and legal for the type,
// only defined flags, the reserved bit clear, a stream identifier the type
// and the sender allow, CONTINUATION only after an open header block); the
// chain that completes first in the byte stream wins. When no more bytes
// can help (the 64 KiB window is full, a gap follows, or the direction
// ends), the candidate whose chain of at least two headers is consistent
// with all the bytes held wins, preferring chains that end exactly where
// the bytes do and then longer chains, trying lengths
// up to 2^24-1. Among chains that converge on the same frames, the one
// starting a packet is preferred (TCP segments mostly start at frame
// boundaries). Skipped bytes are counted (resync_skipped_bytes). What is
// accepted depends on the bytes and the packets they came in, not on how
// they were split into Data calls. A direction's events are emitted once
// its boundary is settled: while synchronising, they may come after later
// events of the other direction.
//
// A frame longer than the receiver's SETTINGS_MAX_FRAME_SIZE is counted
// (frame_too_large); if its header is otherwise plausible it is kept, its
// length trusted (as Wireshark does), else the direction resynchronises.
//
// A gap inside a frame's payload keeps the framing: the frame is emitted
// with its Lost bytes and parsing goes on at the next frame (for DATA the
// observer sees the lost payload bytes as a Gap). A header block with lost
// bytes is undecodable.
//
// # Header compression
//
// Each direction has its own HPACK decoder (RFC 7541) that follows
// CONTINUATION frames, dynamic table size updates and the peer's
// SETTINGS_HEADER_TABLE_SIZE. Its dynamic table may be known only in
// part: when the capture starts mid-connection the entries inserted before
// it are unknown, but each entry inserted since sits at a computable index,
// so fields referring to those decode exactly, and only fields referring
// to older entries are reported Unknown with their Index. A decoded header
// is never a guess. A block that fails to decode is marked
// HeadersUndecodable (hpack_error) and its direction's table becomes
// unknown from then on. Strings, header blocks, decoded header lists and
// the table copies are bounded (see Options). Summary counts the fields
// decoded out of all fields, and the undecodable blocks.
//
// # Flow control
//
// The connection and stream windows of each sender are tracked from the
// initial 65535 bytes and the receiver's SETTINGS_INITIAL_WINDOW_SIZE
// (applied when its SETTINGS frame is seen, adjusting open streams by the
// difference as RFC 9113 §6.9.2 says), WINDOW_UPDATE frames and DATA
// frames (whole length, padding included). A DATA event carries the
// sender's windows before and after it, where known: a window is known
// only from the connection's start (or, for streams, a SETTINGS frame
// announcing the initial window) and stops being known when bytes are lost
// at an unknown position. Intervals during which a window sat at or below
// zero are recorded as Stall, per stream (Stream.Stalls) and per
// connection (Summary.Stalls).
//
// A window whose starting value was not seen (the capture started
// mid-connection, bytes were lost, or a stream was opened before its
// receiver's SETTINGS was seen) has its stalls inferred (Stall.Inferred).
// Its deficit D, the bytes DATA consumed (padding included) less the
// increments granted since tracking began, tells where the window stood
// up to its unknown start W0; a conforming sender never overdraws, so
// W0 >= max D, and under that tightest estimate the window was zero
// exactly at the DATA frames that brought D to its maximum (not those
// ending the stream). Those frames start inferred stalls, ended as
// measured ones are, when the maximum was reached at least twice: a
// sender pinned at the same level again and again is held back by its
// window, while reaching it once could be the end of its data. A
// connection-window peak on a frame that also exhausted its stream's
// window (known, or at its running maximum) is no evidence of its own:
// the stream's window explains it, so the connection's stalls are
// inferred only when at least two of its peaks are not so explained.
// Tracking a window ends, and its stalls are settled, when its stream
// ends, when bytes are lost, and when a SETTINGS_INITIAL_WINDOW_SIZE
// moves a stream's window by an unknown amount (the old value was not
// seen); a known change moves the deficit. While a direction
// synchronises its frames are dissected late: the other direction's
// WINDOW_UPDATE frames already applied (the latest 32) are put back in
// capture order. A receiver that returns each frame's bytes before the
// next one is sent cannot be told from a window-limited sender: both
// peak at the same level.
//
// # Anomalies
//
// Protocol violations and dissection trouble are counted by stable
// snake_case token in Summary.Anomalies while dissection goes on. Nothing
// is logged and no input makes the package panic. The tokens:
//
//   - framing: frame_too_large, truncated_frame, reserved_bit_set,
//     unknown_frame_type (not a violation), data_after_close,
//     client_empty_frames (DATA, HEADERS or CONTINUATION frames from the
//     client with an empty payload and no END_STREAM: legal, but no
//     stack sends them in numbers; the empty frames flood,
//     CVE-2019-9518);
//   - lengths: settings_bad_length, ping_bad_length, rst_stream_bad_length,
//     window_update_bad_length, priority_bad_length, goaway_bad_length,
//     push_promise_bad_length, altsvc_bad_length,
//     priority_update_bad_length, bad_padding;
//   - stream identifiers: data_on_stream_0, headers_on_stream_0,
//     continuation_on_stream_0, priority_on_stream_0,
//     rst_stream_on_stream_0, push_promise_on_stream_0, settings_on_stream,
//     ping_on_stream, goaway_on_stream, origin_on_stream,
//     priority_update_on_stream, priority_self_dependency;
//   - stream states: data_after_end_stream, data_on_closed_stream,
//     push_promise_from_client;
//   - connection start: preface_missing, preface_truncated,
//     settings_not_first, upgrade_settings_bad;
//   - settings and flow control: settings_bad_value, settings_too_many,
//     window_update_zero, window_overflow, flow_control_exceeded;
//   - header blocks: continuation_unexpected, continuation_missing,
//     hpack_error, header_block_too_large, header_list_too_large,
//     header_list_amplified (a list over the receiver's
//     SETTINGS_MAX_HEADER_LIST_SIZE decoded from a block 16 times
//     smaller or more);
//   - capture: sync_lost_gap (a gap broke the framing),
//     resync_skipped_bytes (counts bytes, not occurrences),
//     streams_untracked (past Options.MaxStreams).
package http2
