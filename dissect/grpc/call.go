package grpc

import (
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// Call is the record of one gRPC call: one HTTP/2 stream. Strings are
// copied and bounded.
type Call struct {
	// Stream is the HTTP/2 stream identifier.
	Stream uint32 `json:"stream"`
	// Method is the request's :path ("/helloworld.Greeter/SayHello"),
	// empty when the request HEADERS were not captured.
	Method string `json:"method,omitempty"`
	// Service and Name split Method at its last '/' ("helloworld.Greeter",
	// "SayHello").
	Service string `json:"service,omitempty"`
	Name    string `json:"name,omitempty"`
	// Authority is the request's :authority.
	Authority string `json:"authority,omitempty"`
	// ContentType is the content-type that made the stream gRPC (request's,
	// else response's), empty when its DATA shape did.
	ContentType string `json:"content_type,omitempty"`
	// RequestEncoding and ResponseEncoding are the grpc-encoding of each
	// side ("gzip"), empty when absent ("identity").
	RequestEncoding  string `json:"request_encoding,omitempty"`
	ResponseEncoding string `json:"response_encoding,omitempty"`
	// Heuristic is set when the stream was recognised by its DATA shape
	// (or Options.AssumeGRPC) rather than by its HEADERS.
	Heuristic bool `json:"heuristic,omitempty"`
	// MidStream is set when the request HEADERS were not captured: Start
	// is then the first unit seen, and counts may miss earlier messages.
	MidStream bool `json:"mid_stream,omitempty"`

	// RequestMessages and ResponseMessages count complete messages each
	// way; RequestBytes and ResponseBytes sum their lengths (without the
	// 5-byte prefixes).
	RequestMessages  int   `json:"request_messages"`
	ResponseMessages int   `json:"response_messages"`
	RequestBytes     int64 `json:"request_bytes"`
	ResponseBytes    int64 `json:"response_bytes"`
	// Compressed counts messages, both ways, with the compressed flag set.
	Compressed int `json:"compressed,omitempty"`
	// LostMessages counts partial messages lost to capture gaps or cut by
	// END_STREAM; Gaps counts the capture gaps seen while the call was
	// open (they may hide whole messages).
	LostMessages int `json:"lost_messages,omitempty"`
	Gaps         int `json:"gaps,omitempty"`

	// HTTPStatus is the response's :status, 0 when not seen.
	HTTPStatus int `json:"http_status,omitempty"`
	// Status is the grpc-status the server sent, -1 when none was seen;
	// StatusName is its name ("DEADLINE_EXCEEDED") and StatusMessage the
	// percent-decoded grpc-message.
	Status        int    `json:"status"`
	StatusName    string `json:"status_name,omitempty"`
	StatusMessage string `json:"status_message,omitempty"`
	// TrailersOnly is set when the status came in the response HEADERS
	// (no DATA, no separate trailers).
	TrailersOnly bool `json:"trailers_only,omitempty"`

	// Reset is set when an RST_STREAM was seen on the stream; ResetBy says
	// who sent it ("client" or "server") and ResetCode its error code
	// ("CANCEL").
	Reset     bool   `json:"reset,omitempty"`
	ResetBy   string `json:"reset_by,omitempty"`
	ResetCode string `json:"reset_code,omitempty"`
	// ResetStatus is the status the client sees for a call that the
	// RST_STREAM ended (before any trailers), mapped from ResetCode as the
	// gRPC over HTTP/2 specification says; empty when the call had
	// already ended or the code has no mapping (STREAM_CLOSED).
	ResetStatus string `json:"reset_status,omitempty"`
	// ClientStatus is the status the client ends up with: StatusName when
	// a grpc-status was seen, else ResetStatus, else the mapping of a
	// non-200 HTTPStatus, else INTERNAL for a malformed or missing
	// grpc-status in trailers; empty while unknown (also when the
	// trailers could not be decoded).
	ClientStatus string `json:"client_status,omitempty"`

	// Timeout is the request's grpc-timeout, 0 when absent (HasTimeout
	// false) or malformed.
	Timeout    time.Duration `json:"timeout_ns,omitempty"`
	HasTimeout bool          `json:"has_timeout,omitempty"`
	// Duration is the time from Start to End: first request HEADERS to
	// the call's end (trailers or RST_STREAM), or to the end of the
	// connection for a call still open then.
	Duration time.Duration `json:"duration_ns"`
	// OverTimeout is set when HasTimeout and Duration exceeds Timeout.
	OverTimeout bool `json:"over_timeout,omitempty"`

	// Start is the frame of the request HEADERS (else the first unit
	// seen); End the frame that ended the call.
	Start event.Ref `json:"start"`
	End   event.Ref `json:"end"`
	// Ended is set when trailers or an RST_STREAM ended the call; a call
	// still open when the connection ended has it clear.
	Ended bool `json:"ended"`
}

// end closes the call at at.
func (c *Call) end(at event.Ref, ended bool) {
	c.End = at
	c.Ended = ended
	if !c.Start.TS.IsZero() && !at.TS.IsZero() {
		c.Duration = at.TS.Sub(c.Start.TS)
	}
	c.OverTimeout = c.HasTimeout && c.Duration > c.Timeout
}

// setMethod sets Method and its Service and Name parts from a :path.
func (c *Call) setMethod(path string) {
	c.Method = path
	p := path
	if len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			c.Service, c.Name = p[:i], p[i+1:]
			return
		}
	}
}
