package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// Frame is one line of `h2scope frames --json`: a dissected unit with its
// protocol detail flattened. Fields that do not apply are omitted, except
// the first eight, which every line has.
type Frame struct {
	// Frame is the 1-based capture frame number (Wireshark's), of the
	// packet that completed the unit.
	Frame uint64 `json:"frame"`
	// TS is that packet's capture time, RFC 3339 with nanoseconds, UTC.
	TS string `json:"ts"`
	// Conn is the connection id (as conns, Wireshark's tcp.stream).
	Conn event.ConnID `json:"conn"`
	// Dir is "c2s" or "s2c".
	Dir string `json:"dir"`
	// Proto is "tcp", "tls", "http1", "http2" or "grpc".
	Proto string `json:"proto"`
	// Type is the unit's name: HTTP/2 frame types as RFC 9113 spells them,
	// TLS handshake message names, "request"/"response" for HTTP/1.x,
	// "message"/"status" for gRPC, SYN/SYN-ACK/FIN/RST/segment for TCP.
	Type string `json:"type"`
	// Stream is the HTTP/2 stream id (0 when none).
	Stream uint32 `json:"stream"`
	// Len is the unit's length in bytes (frame payload, message, body).
	Len int `json:"len"`
	// Flags are the unit's flags by name, joined by "|".
	Flags string `json:"flags,omitempty"`
	// Error is an error code by name (RST_STREAM, GOAWAY, gRPC status).
	Error string `json:"error,omitempty"`

	// Headers are decoded header fields (HTTP/2 header blocks, HTTP/1
	// heads); fields HPACK could not decode have "unknown":true.
	Headers []event.Header `json:"headers,omitempty"`
	*event.HTTP2
	*http1Fields
	*grpcFields
}

// http1Fields are the HTTP/1 detail fields except the headers.
type http1Fields struct {
	Method    string `json:"method,omitempty"`
	Target    string `json:"target,omitempty"`
	Version   string `json:"version,omitempty"`
	Status    int    `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
	BodyLen   int64  `json:"body_len"`
	Chunked   bool   `json:"chunked,omitempty"`
	KeepAlive bool   `json:"keep_alive"`
	Seq       int    `json:"seq"`
	// Request is, on a response, the Seq of the request it answers.
	Request int `json:"request,omitempty"`
	// HeadFrame is the frame that completed the head.
	HeadFrame uint64 `json:"head_frame,omitempty"`
	// Trailers are a chunked body's trailer fields.
	Trailers []event.Header `json:"trailers,omitempty"`
	// Missed counts body bytes the capture lost; Incomplete marks a
	// message cut short (its direction closed or reset before the end).
	Missed     int64 `json:"missed,omitempty"`
	Incomplete bool  `json:"incomplete,omitempty"`
}

// grpcFields are the gRPC detail fields.
type grpcFields struct {
	Compressed  bool   `json:"compressed,omitempty"`
	GRPCStatus  *int   `json:"grpc_status,omitempty"`
	GRPCMessage string `json:"grpc_message,omitempty"`
	GRPCMethod  string `json:"grpc_method,omitempty"`
}

// NewFrame flattens e for JSON, with header values and request targets
// redacted as red says. It copies what it keeps: e may be reused after the
// call.
func NewFrame(e *event.Event, red Redaction) Frame {
	f := Frame{
		Frame: e.Ref.Frame, TS: e.Ref.TS.UTC().Format(time.RFC3339Nano), Conn: e.Conn,
		Dir: e.Dir.String(), Proto: e.Proto.String(), Type: e.Type, Stream: e.Stream,
		Len: e.Len, Flags: dissect.FlagNames(e), Error: e.Error,
	}
	if h := e.HTTP2; h != nil {
		cp := *h
		f.Headers, cp.Headers = red.headers(h.Headers), nil
		f.HTTP2 = &cp
	}
	if h := e.HTTP1; h != nil {
		f.Headers = red.headers(h.Headers)
		f.http1Fields = &http1Fields{Method: h.Method, Target: red.URL(h.Target), Version: h.Version, Status: h.Status,
			Reason: h.Reason, BodyLen: h.BodyLen, Chunked: h.Chunked, KeepAlive: h.KeepAlive, Seq: h.Seq,
			Request: h.Request, HeadFrame: h.HeadFrame, Trailers: red.headers(h.Trailers), Missed: h.Missed, Incomplete: h.Incomplete}
	}
	if g := e.GRPC; g != nil {
		gf := &grpcFields{Compressed: g.Compressed, GRPCMessage: g.Message, GRPCMethod: red.URL(g.Method)}
		if e.Type == "status" {
			st := g.Status
			gf.GRPCStatus = &st
		}
		f.grpcFields = gf
	}
	return f
}

// FrameWriter writes units as NDJSON, one object per line.
type FrameWriter struct {
	enc *json.Encoder
	red Redaction
	err error
}

// NewFrameWriter returns a FrameWriter on w that redacts as red says and
// escapes controls (newJSONEncoder).
func NewFrameWriter(w io.Writer, red Redaction) *FrameWriter {
	return &FrameWriter{enc: newJSONEncoder(w), red: red}
}

// Event writes e; it implements event.Sink. The first write error is kept
// and returned by Err; later events are dropped.
func (fw *FrameWriter) Event(e *event.Event) {
	if fw.err != nil {
		return
	}
	f := NewFrame(e, fw.red)
	fw.err = fw.enc.Encode(&f)
}

// Err returns the first write error.
func (fw *FrameWriter) Err() error { return fw.err }

// TimelineLine formats e as one line of `h2scope timeline`: frame number,
// time since start, then TimelineBody.
func TimelineLine(e *event.Event, start time.Time, red Redaction) string {
	return TimelinePrefix(e.Ref, start) + TimelineBody(e, red)
}

// TimelinePrefix formats the frame number and the seconds since start.
func TimelinePrefix(at event.Ref, start time.Time) string {
	return fmt.Sprintf("%8d  %12.6f", at.Frame, at.TS.Sub(start).Seconds())
}

// TimelineBody formats the rest of a timeline line: direction, protocol,
// stream, type, length, flags, error and a short protocol detail.
func TimelineBody(e *event.Event, red Redaction) string {
	var b strings.Builder
	arrow := "->"
	if e.Dir == event.S2C {
		arrow = "<-"
	}
	fmt.Fprintf(&b, "  %s  %-5s", arrow, e.Proto)
	if e.Stream != 0 {
		fmt.Fprintf(&b, "  stream %-5d", e.Stream)
	} else {
		b.WriteString("              ")
	}
	fmt.Fprintf(&b, "  %-14s len=%d", e.Type, e.Len)
	if fl := dissect.FlagNames(e); fl != "" {
		fmt.Fprintf(&b, " [%s]", fl)
	}
	if e.Error != "" {
		fmt.Fprintf(&b, " error=%s", e.Error)
	}
	b.WriteString(detail(e, red))
	return b.String()
}

// detail is the short, protocol-specific part of a timeline line.
func detail(e *event.Event, red Redaction) string {
	var parts []string
	if h := e.HTTP2; h != nil {
		parts = append(parts, headerSummary(h.Headers, red)...)
		if h.HeadersUndecodable {
			parts = append(parts, "headers undecodable")
		}
		for _, s := range h.Settings {
			parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(s.ID, "SETTINGS_"), s.Value))
		}
		if h.WindowIncrement != 0 {
			parts = append(parts, fmt.Sprintf("+%d", h.WindowIncrement))
		}
		if e.Type == "GOAWAY" {
			parts = append(parts, fmt.Sprintf("last_stream=%d", h.LastStreamID))
			if h.Debug != "" {
				parts = append(parts, fmt.Sprintf("debug=%q", h.Debug))
			}
		}
		if h.StreamWindowAfter != nil && h.ConnWindowAfter != nil {
			parts = append(parts, fmt.Sprintf("window stream=%d conn=%d", *h.StreamWindowAfter, *h.ConnWindowAfter))
		}
	}
	if h := e.HTTP1; h != nil {
		if h.Method != "" {
			parts = append(parts, printable(h.Method+" "+red.URL(h.Target)))
		} else {
			parts = append(parts, printable(fmt.Sprintf("%d %s", h.Status, h.Reason)))
		}
		parts = append(parts, fmt.Sprintf("body=%d", h.BodyLen))
		if h.Missed > 0 {
			parts = append(parts, fmt.Sprintf("missed=%d", h.Missed))
		}
		if h.Incomplete {
			parts = append(parts, "incomplete")
		}
		if !h.KeepAlive {
			parts = append(parts, "close")
		}
	}
	if g := e.GRPC; g != nil {
		if g.Method != "" {
			parts = append(parts, printable(red.URL(g.Method)))
		}
		if e.Type == "status" {
			parts = append(parts, fmt.Sprintf("grpc-status=%d", g.Status))
			if g.Message != "" {
				parts = append(parts, fmt.Sprintf("grpc-message=%q", g.Message))
			}
		}
		if g.Compressed {
			parts = append(parts, "compressed")
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, " ")
}

// headerSummary picks the fields a reader scans for.
func headerSummary(hs []event.Header, red Redaction) []string {
	var out []string
	for _, h := range hs {
		switch h.Name {
		case ":method", ":path", ":status", ":authority", "content-type", "grpc-status", "grpc-message":
			if h.Unknown {
				out = append(out, h.Name+"=?")
			} else {
				out = append(out, h.Name+"="+printable(red.Header(h.Name, h.Value)))
			}
		}
	}
	return out
}

// printable returns s for the terminal: as it is when every rune is
// printable, else quoted with Go escapes, so a captured value can neither
// break the one-line-per-unit layout nor send terminal escapes. Not
// printable are C0 and C1 controls, DEL, the line and paragraph
// separators, format characters (the bidi overrides and isolates, zero
// widths) and invalid UTF-8 (a stray 0x9b is a CSI to a terminal not in
// UTF-8 mode), which the quote shows as \xNN.
func printable(s string) string {
	for i, r := range s {
		if !strconv.IsPrint(r) || r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			return strconv.Quote(s)
		}
	}
	return s
}
