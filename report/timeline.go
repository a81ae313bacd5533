package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

// Limits bound one connection's timeline (analyze --timeline-events and
// --timeline-spans); what is left out is counted exactly
// (Timeline.EventsOmitted, SpansOmitted), and no summary or finding
// depends on it.
type Limits struct {
	// Events bounds the events, Spans the requests.
	Events, Spans int
}

// DefaultLimits are the limits unless set otherwise.
var DefaultLimits = Limits{Events: 2000, Spans: 1000}

// Lanes of a connection timeline, one swimlane each in the HTML report.
const (
	LaneTCP    = "tcp"    // SYN, SYN-ACK, FIN, RST
	LaneTLS    = "tls"    // ClientHello, ServerHello, Finished, alerts
	LaneHTTP   = "http"   // requests and responses
	LaneReset  = "reset"  // HTTP/2 RST_STREAM
	LaneGoAway = "goaway" // HTTP/2 GOAWAY
	LaneStall  = "stall"  // flow-control stalls and TCP zero windows
)

// Timeline is one connection's notable events and HTTP/2 streams or
// HTTP/1.x exchanges, for the HTML swimlanes and Gantt chart and the
// Markdown excerpts around findings.
type Timeline struct {
	// Conn is the connection id.
	Conn event.ConnID `json:"conn"`
	// Events lists the events in frame order.
	Events []TimelineEvent `json:"events"`
	// EventsOmitted counts the events left out past the cap.
	EventsOmitted int `json:"events_omitted,omitempty"`
	// Spans lists the requests (HTTP/2 streams, HTTP/1.x exchanges) in
	// request order; SpansOmitted counts those left out past the cap.
	Spans        []Span `json:"spans"`
	SpansOmitted int    `json:"spans_omitted,omitempty"`
}

// TimelineEvent is one event on a connection.
type TimelineEvent struct {
	// Frame and TS locate it.
	Frame uint64    `json:"frame"`
	TS    time.Time `json:"ts"`
	// Lane is one of the Lane constants.
	Lane string `json:"lane"`
	// Dir is the side that sent it.
	Dir event.Dir `json:"dir"`
	// Stream is the HTTP/2 stream, 0 for the connection.
	Stream uint32 `json:"stream,omitempty"`
	// What describes it ("SYN", "RST_STREAM CANCEL", "GET /x").
	What string `json:"what"`
	// EndFrame and EndTS end an event with a duration (a stall); zero
	// for instants, and for a stall still open at the end of the capture.
	EndFrame uint64    `json:"end_frame,omitempty"`
	EndTS    time.Time `json:"end_ts,omitzero"`
}

// Span is one request: an HTTP/2 stream or an HTTP/1.x exchange.
type Span struct {
	// Stream is the HTTP/2 stream id, 0 for HTTP/1.x (Seq then numbers
	// the exchange).
	Stream uint32 `json:"stream,omitempty"`
	Seq    int    `json:"seq,omitempty"`
	// Start and End are the first and last frames seen of it.
	StartFrame uint64    `json:"start_frame"`
	StartTS    time.Time `json:"start_ts"`
	EndFrame   uint64    `json:"end_frame"`
	EndTS      time.Time `json:"end_ts"`
	// Method, Path and Status describe it; Outcome is "ok", "error"
	// (status ≥ 400 or a non-OK gRPC status), "reset" or "incomplete".
	Method  string `json:"method,omitempty"`
	Path    string `json:"path,omitempty"`
	Status  int    `json:"status,omitempty"`
	GRPC    string `json:"grpc_status,omitempty"`
	Reset   string `json:"reset,omitempty"`
	Outcome string `json:"outcome"`
}

// NewTimeline builds a connection's timeline from what the detectors
// read.
func NewTimeline(c *analyze.Conn, red Redaction, lim Limits) Timeline {
	return newTimeline(c, red, lim, []TimelineEvent{}, timelineAll)
}

// timelineParts selects the events and spans newTimeline takes from a
// connection: those its summary gives (TCP SYN, FIN, RST and zero
// windows, TLS handshake and alerts, GOAWAYs), those its records give
// (stalls, resets, requests and the spans), or both.
type timelineParts uint8

const (
	timelineSummary timelineParts = 1 << iota
	timelineRecords
	timelineAll = timelineSummary | timelineRecords
)

// newTimeline is NewTimeline of the parts of c, appending the events to
// ev, whose array the timeline's Events may share.
func newTimeline(c *analyze.Conn, red Redaction, lim Limits, ev []TimelineEvent, parts timelineParts) Timeline {
	tl := Timeline{Conn: c.ID(), Events: ev, Spans: []Span{}}
	if parts&timelineSummary != 0 {
		tl.Events = appendSummaryEvents(tl.Events, c)
	}
	if parts&timelineRecords != 0 {
		appendRecordsEvents(&tl, c, red, lim)
	}
	slices.SortStableFunc(tl.Events, func(a, b TimelineEvent) int {
		return cmp.Or(cmp.Compare(a.Frame, b.Frame), cmp.Compare(a.Lane, b.Lane))
	})
	if len(tl.Events) > lim.Events {
		tl.EventsOmitted = len(tl.Events) - lim.Events
		// A copy, so the events past the cap do not stay in memory
		// with the report.
		tl.Events = slices.Clone(tl.Events[:lim.Events])
	}
	return tl
}

// appendEvent appends to ev the event of r, if not nil.
func appendEvent(ev []TimelineEvent, r *event.Ref, lane string, dir event.Dir, stream uint32, what string) []TimelineEvent {
	if r == nil {
		return ev
	}
	return append(ev, TimelineEvent{Frame: r.Frame, TS: r.TS.UTC(), Lane: lane, Dir: dir, Stream: stream, What: what})
}

// appendSummaryEvents appends the events of c that its summary keeps:
// TCP SYN, FIN, RST and zero windows, TLS handshake and alerts, GOAWAYs.
func appendSummaryEvents(ev []TimelineEvent, c *analyze.Conn) []TimelineEvent {
	for i := range c.SYNs {
		what := "SYN"
		if i > 0 {
			what = "SYN (retransmitted)"
		}
		ev = appendEvent(ev, &c.SYNs[i], LaneTCP, event.C2S, 0, what)
	}
	for i := range c.SYNACKs {
		ev = appendEvent(ev, &c.SYNACKs[i], LaneTCP, event.S2C, 0, "SYN-ACK")
	}
	for d := event.C2S; d <= event.S2C; d++ {
		ev = appendEvent(ev, c.FIN[d], LaneTCP, d, 0, "FIN")
		ev = appendEvent(ev, c.RST[d], LaneTCP, d, 0, "RST")
		for i := range c.ZeroWindows[d] {
			ev = appendEvent(ev, &c.ZeroWindows[d][i], LaneStall, d, 0, "TCP zero window")
		}
	}
	app := c.App
	if app == nil {
		return ev
	}
	if t := app.TLS; t != nil {
		ev = appendEvent(ev, t.Timing.ClientHello, LaneTLS, event.C2S, 0, "ClientHello "+t.SNI)
		ev = appendEvent(ev, t.Timing.ServerHello, LaneTLS, event.S2C, 0, "ServerHello "+t.Version)
		ev = appendEvent(ev, t.Timing.Finished[event.C2S], LaneTLS, event.C2S, 0, "Finished")
		ev = appendEvent(ev, t.Timing.Finished[event.S2C], LaneTLS, event.S2C, 0, "Finished")
		for _, a := range t.Alerts {
			ev = appendEvent(ev, &event.Ref{Frame: a.Frame, TS: alertTS(c, a.Frame)}, LaneTLS, a.Dir, 0, "alert "+a.Level+" "+a.Description)
		}
	}
	if h := app.HTTP2; h != nil {
		for i := range h.GoAways {
			g := &h.GoAways[i]
			what := fmt.Sprintf("GOAWAY %s last_stream_id=%d", g.Code, g.LastStreamID)
			if g.Debug != "" {
				what += " " + printable(g.Debug)
			}
			ev = appendEvent(ev, &g.Ref, LaneGoAway, g.Dir, 0, what)
		}
	}
	return ev
}

// appendRecordsEvents adds to tl the events and spans of c that its
// records give: HTTP/2 stalls, resets and requests (none once they are
// released), and counts the spans omitted, the HTTP/2 streams past the
// dissector's bound among them.
func appendRecordsEvents(tl *Timeline, c *analyze.Conn, red Redaction, lim Limits) {
	if c.App != nil && c.App.HTTP2 != nil {
		// Streams past the dissector's bound have no record, so no span.
		tl.SpansOmitted += c.App.HTTP2.StreamsDropped
	}
	recs := c.Records
	if recs == nil { // released
		return
	}
	for i := range recs.Stalls {
		tl.Events = append(tl.Events, stallEvent(&recs.Stalls[i]))
	}
	for i := range recs.Streams {
		for j := range recs.Streams[i].Stalls {
			tl.Events = append(tl.Events, stallEvent(&recs.Streams[i].Stalls[j]))
		}
	}
	for i := range recs.Resets {
		r := &recs.Resets[i]
		tl.Events = appendEvent(tl.Events, &r.Ref, LaneReset, r.Dir, r.Stream, "RST_STREAM "+r.CodeName())
	}
	for i := range recs.Exchanges {
		x := &recs.Exchanges[i]
		label := printable(x.Method + " " + red.URL(x.Path))
		tl.Events = appendEvent(tl.Events, x.Request, LaneHTTP, event.C2S, x.Stream, label)
		if x.Status != 0 {
			tl.Events = appendEvent(tl.Events, x.ResponseEnd, LaneHTTP, event.S2C, x.Stream, fmt.Sprintf("%d %s", x.Status, label))
		}
		if len(tl.Spans) >= lim.Spans {
			tl.SpansOmitted++
			continue
		}
		tl.Spans = append(tl.Spans, newSpan(x, red))
	}
	tl.SpansOmitted += recs.ExchangesDropped
}

// appendRequestsTimeline appends what appendRecordsTimeline does, when
// c's records give no events but its requests' and responses', in frame
// order and within lim.Events (an HTTP/1.x connection's, or none at
// all), without the copies of c, strings and events NewTimeline makes.
// ok is false otherwise, and b is returned as it was.
func appendRequestsTimeline(b []byte, c *analyze.Conn, red Redaction, lim Limits) (_ []byte, ok bool) {
	var none analyze.Records
	recs := c.Records
	if recs == nil { // released: none
		recs = &none
	}
	if len(recs.Resets) > 0 {
		return b, false
	}
	dropped := recs.ExchangesDropped
	if len(recs.Stalls) > 0 {
		return b, false
	}
	for i := range recs.Streams {
		if len(recs.Streams[i].Stalls) > 0 {
			return b, false
		}
	}
	if app := c.App; app != nil && app.HTTP2 != nil {
		dropped += app.HTTP2.StreamsDropped
	}
	// The events, one lane's, are in frame order as NewTimeline adds
	// them: its stable sort keeps that order.
	n := 0
	var last uint64
	for i := range recs.Exchanges {
		x := &recs.Exchanges[i]
		for _, r := range [...]*event.Ref{x.Request, responseRef(x)} {
			if r == nil {
				continue
			}
			if n > 0 && r.Frame < last {
				return b, false
			}
			n++
			last = r.Frame
		}
	}
	if n > lim.Events {
		return b, false
	}
	spans := min(len(recs.Exchanges), max(lim.Spans, 0))
	e := enc{b: b}
	e.Uint(uint64(c.ID()))
	e.Int(0)
	e.Int(int64(len(recs.Exchanges) - spans + dropped))
	e.Uint(uint64(n))
	var status [20]byte
	// The spans' methods and paths, as newSpan makes them, of the first
	// exchanges: not redacted and checked again.
	var spanStrs [8][2]string
	for i := range recs.Exchanges {
		x := &recs.Exchanges[i]
		u := red.URL(x.Path)
		pm, pu := printable(x.Method), printable(u)
		plain := pm == x.Method && pu == u
		if i < len(spanStrs) {
			spanStrs[i] = [2]string{pm, pu}
		}
		label := ""
		if !plain {
			label = printable(x.Method + " " + u)
		}
		// what encodes the label (method, space, URL) after prefix.
		what := func(prefix []byte) {
			if !plain {
				e.StrLen(len(prefix) + len(label))
				e.b = append(append(e.b, prefix...), label...)
				return
			}
			e.StrLen(len(prefix) + len(x.Method) + 1 + len(u))
			e.b = append(append(e.b, prefix...), x.Method...)
			e.b = append(append(e.b, ' '), u...)
		}
		if r := x.Request; r != nil {
			appendEventHead(&e, r.Frame, r.TS, LaneHTTP, event.C2S, x.Stream)
			what(nil)
			appendEventEnd(&e, 0, time.Time{})
		}
		if r := responseRef(x); r != nil {
			appendEventHead(&e, r.Frame, r.TS, LaneHTTP, event.S2C, x.Stream)
			what(append(strconv.AppendInt(status[:0], int64(x.Status), 10), ' '))
			appendEventEnd(&e, 0, time.Time{})
		}
	}
	e.Uint(uint64(spans))
	for i := range spans {
		var s Span
		if x := &recs.Exchanges[i]; i < len(spanStrs) {
			s = newSpanOf(x, spanStrs[i][0], spanStrs[i][1])
		} else {
			s = newSpan(x, red)
		}
		appendSpan(&e, &s)
	}
	return e.b, true
}

// responseRef is the ref of x's response event on the timeline: its
// end, when x has a status.
func responseRef(x *analyze.Exchange) *event.Ref {
	if x.Status == 0 {
		return nil
	}
	return x.ResponseEnd
}

// stallEvent is the timeline event of a flow-control stall.
func stallEvent(s *http2.Stall) TimelineEvent {
	what := "HTTP/2 stream window exhausted"
	if s.Stream == 0 {
		what = "HTTP/2 connection window exhausted"
	}
	if s.Inferred {
		what += " (inferred)"
	}
	e := TimelineEvent{Frame: s.Start.Frame, TS: s.Start.TS.UTC(), Lane: LaneStall, Dir: s.Dir, Stream: s.Stream, What: what}
	if s.End != nil {
		e.EndFrame, e.EndTS = s.End.Frame, s.End.TS.UTC()
	}
	return e
}

// alertTS finds the time of an alert's frame among the connection's
// known refs; alerts record only their frame.
func alertTS(c *analyze.Conn, frame uint64) time.Time {
	if c.App != nil && c.App.TLS != nil {
		t := c.App.TLS.Timing
		for _, r := range []*event.Ref{t.ClientHello, t.ServerHello, t.Finished[0], t.Finished[1], t.FirstAppData[0], t.FirstAppData[1]} {
			if r != nil && r.Frame == frame {
				return r.TS.UTC()
			}
		}
	}
	if frame == c.TCP.LastFrame {
		return c.TCP.LastTS.UTC()
	}
	return c.TCP.FirstTS.UTC()
}

func newSpan(x *analyze.Exchange, red Redaction) Span {
	return newSpanOf(x, printable(x.Method), printable(red.URL(x.Path)))
}

// newSpanOf is newSpan with x's method and path as it shows them.
func newSpanOf(x *analyze.Exchange, method, path string) Span {
	s := Span{Stream: x.Stream, Method: method, Path: path, Status: x.Status, Outcome: "ok"}
	if x.Proto == event.ProtoHTTP1 {
		s.Seq = x.Seq
	}
	if r := x.Start(); r != nil {
		s.StartFrame, s.StartTS = r.Frame, r.TS.UTC()
	}
	if r := x.End(); r != nil {
		s.EndFrame, s.EndTS = r.Frame, r.TS.UTC()
	}
	if x.GRPCStatus != nil {
		s.GRPC = grpcCodeName(*x.GRPCStatus)
	}
	switch {
	case x.Reset != nil:
		s.Reset, s.Outcome = x.Reset.Code.String(), "reset"
		if x.Reset.Ref.Frame > s.EndFrame {
			s.EndFrame, s.EndTS = x.Reset.Ref.Frame, x.Reset.Ref.TS.UTC()
		}
	case x.Status == 0:
		s.Outcome = "incomplete"
	case x.Status >= 400 || x.GRPCStatus != nil && *x.GRPCStatus != 0:
		s.Outcome = "error"
	}
	return s
}

// grpcCodeName names a gRPC status code.
func grpcCodeName(code int) string {
	names := [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	if code >= 0 && code < len(names) {
		return names[code]
	}
	return fmt.Sprintf("CODE_%d", code)
}
