package grpc

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/h2scope/h2scope/dissect/http2"
)

// Code is a gRPC status code (grpc-status).
type Code int32

// The status codes of the gRPC specification (doc/statuscodes.md).
const (
	OK                 Code = 0
	Canceled           Code = 1
	Unknown            Code = 2
	InvalidArgument    Code = 3
	DeadlineExceeded   Code = 4
	NotFound           Code = 5
	AlreadyExists      Code = 6
	PermissionDenied   Code = 7
	ResourceExhausted  Code = 8
	FailedPrecondition Code = 9
	Aborted            Code = 10
	OutOfRange         Code = 11
	Unimplemented      Code = 12
	Internal           Code = 13
	Unavailable        Code = 14
	DataLoss           Code = 15
	Unauthenticated    Code = 16
)

var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// String returns the code's name as the specification spells it
// ("DEADLINE_EXCEEDED"), or "Code(N)" for a code it does not define.
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Code(" + strconv.Itoa(int(c)) + ")"
}

// ResetStatus maps an RST_STREAM error code to the status a gRPC client
// sees for a call reset before its trailers, as the table in the gRPC
// over HTTP/2 specification (PROTOCOL-HTTP2.md, "Errors") gives it.
// HTTP_1_1_REQUIRED, absent from the table, maps to INTERNAL as grpc-go
// does; codes the table does not know map to UNKNOWN. STREAM_CLOSED has no
// mapping (ok false): there is no open stream to report it on. It is the
// one mapping h2scope has: the analysis reads it too.
func ResetStatus(code http2.ErrCode) (c Code, ok bool) {
	switch code {
	case http2.ErrCodeNo, http2.ErrCodeProtocol, http2.ErrCodeInternal, http2.ErrCodeFlowControl,
		http2.ErrCodeSettingsTimeout, http2.ErrCodeFrameSize, http2.ErrCodeCompression,
		http2.ErrCodeConnect, http2.ErrCodeHTTP11Required:
		return Internal, true
	case http2.ErrCodeStreamClosed:
		return 0, false
	case http2.ErrCodeRefusedStream:
		return Unavailable, true
	case http2.ErrCodeCancel:
		return Canceled, true
	case http2.ErrCodeEnhanceYourCalm:
		return ResourceExhausted, true
	case http2.ErrCodeInadequateSecurity:
		return PermissionDenied, true
	}
	return Unknown, true
}

// httpStatus maps the HTTP status of a response that carries no
// grpc-status to the code a client sees (gRPC's http-grpc-status-mapping.md).
func httpStatus(status int) Code {
	switch status {
	case 400:
		return Internal
	case 401:
		return Unauthenticated
	case 403:
		return PermissionDenied
	case 404:
		return Unimplemented
	case 429, 502, 503, 504:
		return Unavailable
	}
	return Unknown
}

// isGRPCContentType reports whether v is application/grpc, alone or
// followed by "+" (a message format) or ";" (parameters).
func isGRPCContentType(v string) bool {
	const p = "application/grpc"
	if len(v) < len(p) || !strings.EqualFold(v[:len(p)], p) {
		return false
	}
	return len(v) == len(p) || v[len(p)] == '+' || v[len(p)] == ';'
}

// parseTimeout parses a grpc-timeout value: at most 8 ASCII digits and a
// unit, H M S m u n (hours to nanoseconds). Hour values too large for a
// time.Duration saturate at its maximum, as grpc-go does.
func parseTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	var n int64
	for i := 0; i < len(v)-1; i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if n > int64(maxDuration/unit) {
		return maxDuration, true
	}
	return time.Duration(n) * unit, true
}

const maxDuration = time.Duration(1<<63 - 1)

// maxStatusMessage bounds a decoded grpc-message kept in a Call or event.
const maxStatusMessage = 1024

// decodeMessage percent-decodes a grpc-message value as the specification
// says: %XX with two hex digits is a byte, anything else (a '%' not
// followed by two hex digits included) stays as it is. The result is cut to
// maxStatusMessage bytes and made valid UTF-8.
func decodeMessage(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return bound(v)
	}
	var b strings.Builder
	b.Grow(min(len(v), maxStatusMessage))
	for i := 0; i < len(v) && b.Len() < maxStatusMessage; i++ {
		c := v[i]
		if c == '%' && i+2 < len(v) {
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	return bound(b.String())
}

// bound cuts s to maxStatusMessage bytes, makes it valid UTF-8 and copies it.
func bound(s string) string {
	if len(s) > maxStatusMessage {
		s = s[:maxStatusMessage]
	}
	if !utf8.ValidString(s) {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Clone(s)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// clip copies s, cut to n bytes.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Clone(s)
}
