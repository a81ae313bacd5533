package event

// Event is one dissected unit: an HTTP/2 frame, an HTTP/1.1 message, a gRPC
// message, a TLS handshake message, or a notable TCP segment. Events never
// hold payload bytes: only lengths, numbers and short strings copied at the
// boundary. Detail pointers are nil when they do not apply.
type Event struct {
	// Ref is the frame that completed the unit (as Wireshark shows a
	// reassembled PDU on its last segment).
	Ref Ref
	// Conn is the TCP connection.
	Conn ConnID
	// Dir is the direction the unit travelled.
	Dir Dir
	// Proto is the protocol that produced the unit.
	Proto Proto
	// Type is the unit's name as its RFC spells it: "HEADERS", "DATA",
	// "RST_STREAM", "ClientHello", "request", "response", "message".
	Type string
	// Stream is the HTTP/2 stream identifier, 0 when none.
	Stream uint32
	// Len is the unit's length: the HTTP/2 frame payload length, the
	// HTTP/1 body length, the gRPC message length, the TLS message length.
	Len int
	// Kind is the unit's type as its protocol numbers it: for ProtoTCP
	// the segment's TCP flags (layer.Flags), for ProtoHTTP2 the frame
	// type (http2.FrameType) or http2.KindPreface for the client's
	// connection preface. Type names it.
	Kind uint16
	// Bits are the unit's flags as its protocol types them: the TCP
	// analysis (tcp.Analysis) for ProtoTCP, the frame flags (http2.Flags)
	// for ProtoHTTP2. They are named only for output (dissect.FlagNames),
	// so analysis code compares typed constants, never names.
	Bits uint32
	// Code is the error code Error names, for ProtoHTTP2 an
	// http2.ErrCode (RST_STREAM, GOAWAY). HasCode says it was read: it
	// is false for such a frame whose code the capture lost (a gap) or
	// that is too short to hold one.
	Code    uint32
	HasCode bool
	// Error is an error code by name ("CANCEL", "NO_ERROR", a TLS alert
	// or a gRPC status), empty when the unit carries none.
	Error string

	// HTTP2 holds HTTP/2 frame detail.
	HTTP2 *HTTP2
	// HTTP1 holds HTTP/1.x message detail.
	HTTP1 *HTTP1
	// GRPC holds gRPC message or call detail.
	GRPC *GRPC
}

// Header is one decoded header field. Value is empty and Unknown set when
// the field referred to an HPACK dynamic-table entry that the capture did
// not show (it started mid-connection).
type Header struct {
	// Name and Value are the field, copied.
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
	// Unknown is set when the field could not be decoded; Index is the
	// HPACK index it referred to.
	Unknown bool   `json:"unknown,omitempty"`
	Index   uint64 `json:"index,omitempty"`
}

// Setting is one HTTP/2 SETTINGS parameter.
type Setting struct {
	// ID is the parameter by name ("SETTINGS_INITIAL_WINDOW_SIZE"), or
	// "UNKNOWN_0x..." for an unassigned identifier.
	ID string `json:"id"`
	// Value is the parameter's value.
	Value uint32 `json:"value"`
}

// HTTP2 is the detail of one HTTP/2 frame.
type HTTP2 struct {
	// Headers holds the decoded header block of HEADERS or PUSH_PROMISE
	// (with its CONTINUATION frames), on the frame that ended the block.
	Headers []Header `json:"headers,omitempty"`
	// HeadersUndecodable is set when the block could not be decoded at all
	// (HPACK state lost); Headers is then empty.
	HeadersUndecodable bool `json:"headers_undecodable,omitempty"`
	// Settings holds the parameters of a SETTINGS frame.
	Settings []Setting `json:"settings,omitempty"`
	// WindowIncrement is a WINDOW_UPDATE's increment.
	WindowIncrement uint32 `json:"window_increment,omitempty"`
	// LastStreamID is a GOAWAY's last-stream-id.
	LastStreamID uint32 `json:"last_stream_id,omitempty"`
	// Debug is a GOAWAY's debug data, copied (at most 256 bytes).
	Debug string `json:"debug,omitempty"`
	// PromisedStream is a PUSH_PROMISE's promised stream id.
	PromisedStream uint32 `json:"promised_stream,omitempty"`
	// PingData is a PING's opaque data as 16 hex digits.
	PingData string `json:"ping_data,omitempty"`
	// Padding is the pad length of a padded frame.
	Padding int `json:"padding,omitempty"`
	// Window fields give the sender's flow-control windows around a DATA
	// frame: the stream and connection windows before and after it, as
	// Wireshark's http2.calculated.*.window_size fields. Absent when the
	// windows are unknown (capture started mid-connection).
	StreamWindowBefore *int64 `json:"stream_window_before,omitempty"`
	StreamWindowAfter  *int64 `json:"stream_window_after,omitempty"`
	ConnWindowBefore   *int64 `json:"conn_window_before,omitempty"`
	ConnWindowAfter    *int64 `json:"conn_window_after,omitempty"`
	// Lost counts payload bytes of the frame that the capture lost (a gap
	// inside it); detail that needed them is then absent.
	Lost int `json:"lost,omitempty"`
}

// HTTP1 is the detail of one HTTP/1.x message.
type HTTP1 struct {
	// Method, Target and Version are the request line's parts; Status and
	// Reason the status line's.
	Method  string `json:"method,omitempty"`
	Target  string `json:"target,omitempty"`
	Version string `json:"version,omitempty"`
	Status  int    `json:"status,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Headers holds the header fields in order.
	Headers []Header `json:"headers,omitempty"`
	// BodyLen is the body length in bytes (decoded chunk sizes for chunked).
	BodyLen int64 `json:"body_len"`
	// Chunked is set for a chunked body.
	Chunked bool `json:"chunked,omitempty"`
	// KeepAlive says whether the connection stays open after the message,
	// from its version and Connection header.
	KeepAlive bool `json:"keep_alive"`
	// Seq is the message's 1-based number on its connection and direction.
	Seq int `json:"seq"`
	// HeadFrame is the frame that completed the message's head (start
	// line and header fields); the event's Ref is the frame that completed
	// the whole message.
	HeadFrame uint64 `json:"head_frame"`
	// Trailers holds the trailer fields of a chunked body, in order.
	Trailers []Header `json:"trailers,omitempty"`
	// KeepAliveTimeout and KeepAliveMax are the timeout= (seconds) and
	// max= parameters of a Keep-Alive header field, 0 when absent.
	KeepAliveTimeout int `json:"keep_alive_timeout,omitempty"`
	KeepAliveMax     int `json:"keep_alive_max,omitempty"`
	// Request is, on a response, the Seq of the request it answers (FIFO
	// order), 0 when there was none (unmatched_HTTP_reply) or the request
	// was lost in a capture gap.
	Request int `json:"request,omitempty"`
	// Missed counts body bytes the capture lost (gaps); they are included
	// in BodyLen.
	Missed int64 `json:"missed,omitempty"`
	// Incomplete is set on a message cut short: its direction closed or
	// reset, or a gap broke its framing, before its body ended.
	Incomplete bool `json:"incomplete,omitempty"`
}

// GRPC is the detail of one gRPC length-prefixed message, or of a call's
// status on the frame that carried it.
type GRPC struct {
	// Compressed is the message's compressed flag.
	Compressed bool `json:"compressed,omitempty"`
	// Status and Message are grpc-status and grpc-message, on the event
	// that carried the trailers (Status -1 when absent).
	Status  int    `json:"status"`
	Message string `json:"message,omitempty"`
	// Method is the call's :path ("/pkg.Service/Method").
	Method string `json:"method,omitempty"`
}

// A Sink receives events in capture order. e is valid only during the call.
type Sink interface {
	Event(e *Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(e *Event)

// Event calls f(e).
func (f SinkFunc) Event(e *Event) { f(e) }
