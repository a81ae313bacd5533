// Package http1 dissects HTTP/1.0 and HTTP/1.1 messages from the two byte
// streams of a TCP connection, incrementally and without buffering
// bodies.
//
// A Conn receives each direction's in-order bytes through Data (or Feed),
// Gap and Close, the shape of tcp.StreamHandler. It emits one event per
// message once the message is complete (head and body), with the frame
// that completed the head in the detail, and keeps a Summary of the
// connection.
//
// # Messages
//
// The client direction carries requests, the server direction responses;
// responses are matched to requests first in, first out, so pipelining is
// followed. A message's head (start line and header fields) is held until
// its empty line, up to Options.MaxHeader bytes; its body is only counted.
// Bodies are delimited as RFC 9112 section 6.3 says: none for responses to
// HEAD, for 1xx, 204 and 304; chunked when Transfer-Encoding ends in
// chunked (chunk extensions skipped, trailer fields kept); Content-Length;
// otherwise none for a request and the connection's close for a response.
// Persistence follows the version's default (HTTP/1.1 keep-alive, HTTP/1.0
// close) and the Connection header field; Keep-Alive parameters are read.
//
// A client's line that breaks the request-line grammar but is text
// starting with an upper-case token ("OPTIONS", "GET /HTTP/1.1") is read as
// a malformed request (bad_request_line) when header fields follow it:
// servers answer those, and counting them keeps responses matched.
//
// Header values are copied once per message (one string for the whole
// head) and bounded by Options.MaxHeader.
//
// # Protocol switches
//
// A 101 response (to a request with Upgrade: h2c, websocket, or anything
// else) or a 2xx response to CONNECT hands the rest of the connection to
// another protocol: the server direction right after the response head,
// the client direction after the request that asked for it (its body
// included). Feed then returns how many bytes it consumed, and Upgraded
// names the protocol.
//
// # Gaps and resynchronisation
//
// A gap inside a body of known length (Content-Length, or the data of a
// chunk) is counted in the message's Missed and BodyLen and parsing goes
// on. A gap anywhere else — in a head, a chunk-size line, trailers, or
// between messages — breaks the framing: the parser skips to the next line
// that is a plausible request line (method, target, HTTP/x.y) or status
// line (HTTP/x.y, three digits). A head larger than Options.MaxHeader, or a
// malformed start line or chunk size, resynchronises the same way. When a
// gap swallowed bytes past the message in progress, at least one message
// of that direction was lost: one is assumed, and the request queue is
// kept aligned (a lost response drops the oldest waiting request; a lost
// request queues a placeholder).
//
// # Anomalies
//
// Irregularities are counted by stable names in Summary.Anomalies, as
// Zeek's weird names, never logged: unmatched_HTTP_reply, bad_request_line,
// bad_status_line, bad_header_line, obs_fold, header_too_large,
// bad_content_length, bad_transfer_encoding,
// content_length_with_transfer_encoding, bad_chunk_size, bad_chunk_end,
// content_length_mismatch (the connection closed before the declared
// body ended), incomplete_chunked, partial_header (the direction closed
// inside a head), gap_in_header, gap_in_chunk_framing, too_many_pending,
// upgrade_desync, and resync (each time the parser starts skipping to a
// start line).
package http1
