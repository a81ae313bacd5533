// Package grpc follows gRPC calls over an HTTP/2 connection: it reassembles
// the length-prefixed messages of each stream, reads the call's status from
// its trailers, and keeps one Call record per stream.
//
// A Conn is the observer the HTTP/2 dissector calls with each stream's
// HEADERS (decoded), DATA payload bytes, RST_STREAM and capture gaps. It
// emits one event per message and one per status, in capture order, and
// never keeps payload bytes: a message is counted as its bytes go by, and
// only the 5-byte prefix of the message in progress is held per stream and
// direction.
//
// # Which streams are gRPC
//
// A stream is gRPC when its request or response HEADERS carry a content-type
// of application/grpc, optionally followed by "+" or ";" (application/grpc+proto,
// application/grpc;charset=...), or when its response HEADERS carry
// grpc-status. A stream whose request HEADERS name another content-type is
// not gRPC unless its response says otherwise.
//
// When a stream's HEADERS were not captured (the capture started
// mid-connection, or the HPACK state was lost), its DATA decides, strictly:
//
//   - the first DATA byte seen in a direction must start a valid prefix: a
//     flag byte of 0 or 1 and a length of at most Options.MaxMessage;
//   - the messages must then chain, prefix after prefix, to exactly the end
//     of a DATA delivery (a frame, or the part of a frame one segment
//     carried), with at least one complete message;
//   - any invalid prefix, or END_STREAM in the middle of a message, before
//     that, rejects the stream for good.
//
// JSON ('{', '['), HTML ('<'), text and most binary formats fail on the
// first byte. Messages completed before the decision are counted in the
// Call; those completed in the deciding delivery also get their events
// (they share its frame), earlier ones do not, so that events stay in
// capture order. Options.AssumeGRPC treats every stream as gRPC without
// the test (the chaining check still decides where messages start).
//
// # Gaps
//
// A capture gap on the connection loses every partial message in flight in
// that direction (anomaly message_lost), and may hide whole messages of any
// stream. After a gap, each stream's direction resynchronises the same
// way: the next DATA delivery must start a valid prefix and its messages
// must chain to the delivery's end before events resume. A delivery that
// fails is skipped and the next one is tried.
//
// # Anomalies
//
// Anomalies are counted by stable names (Conn.Anomalies), never logged:
// message_too_large (the direction stops being parsed), bad_message_flag
// (likewise), message_lost, truncated_message (END_STREAM or the end of
// the connection inside a message), missing_grpc_status, bad_grpc_status,
// bad_grpc_timeout, too_many_streams, calls_not_recorded.
//
// # Status
//
// Trailers (HEADERS with END_STREAM after the response started) and
// trailers-only responses (response HEADERS with grpc-status and
// END_STREAM) give the call's grpc-status and grpc-message
// (percent-decoded). A call reset by RST_STREAM before its trailers gets
// the status its client would see, mapped as the gRPC over HTTP/2
// specification's table says (CANCEL to CANCELLED, REFUSED_STREAM to
// UNAVAILABLE, ...), recorded apart from any real grpc-status.
package grpc
