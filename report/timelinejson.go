package report

import (
	"strconv"
	"time"
)

// appendTimelineJSON appends tl's JSON, byte for byte what the report's
// JSON encoder writes for it (newJSONEncoder, indented with prefix and
// indent as jsonWriter.encoder sets them, or compact when both are
// empty; without the encoder's newline), when every string of tl is
// plain (plainJSON) and every time one appendJSONTime writes as
// encoding/json does; ok is false otherwise, and the caller encodes tl
// with encoding/json. A long connection's timeline holds tens of
// thousands of events, and indenting the encoder's output costs more
// than encoding it.
func appendTimelineJSON(b []byte, tl *Timeline, prefix, indent string) (_ []byte, ok bool) {
	if !plainTimeline(tl) {
		return b, false
	}
	w := jsonIndenter{b: b, prefix: prefix, indent: indent}
	w.open('{')
	w.uint("conn", uint64(tl.Conn))
	w.key("events")
	jsonList(&w, tl.Events, (*jsonIndenter).event)
	if tl.EventsOmitted != 0 {
		w.int("events_omitted", tl.EventsOmitted)
	}
	w.key("spans")
	jsonList(&w, tl.Spans, (*jsonIndenter).span)
	if tl.SpansOmitted != 0 {
		w.int("spans_omitted", tl.SpansOmitted)
	}
	w.close('}')
	return w.b, true
}

// jsonList writes s as an array (null when nil, [] when empty), each
// element with elem.
func jsonList[T any](w *jsonIndenter, s []T, elem func(*jsonIndenter, *T)) {
	switch {
	case s == nil:
		w.b = append(w.b, "null"...)
		return
	case len(s) == 0:
		w.b = append(w.b, "[]"...)
		return
	}
	w.open('[')
	for i := range s {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.newline()
		elem(w, &s[i])
	}
	w.close(']')
}

// plainTimeline reports whether appendTimelineJSON writes tl as
// encoding/json does.
func plainTimeline(tl *Timeline) bool {
	for i := range tl.Events {
		x := &tl.Events[i]
		if !plainJSON(x.Lane) || !plainJSON(x.What) || !plainJSONTime(x.TS) || !x.EndTS.IsZero() && !plainJSONTime(x.EndTS) {
			return false
		}
	}
	for i := range tl.Spans {
		s := &tl.Spans[i]
		if !plainJSONTime(s.StartTS) || !plainJSONTime(s.EndTS) || !plainJSON(s.Method) || !plainJSON(s.Path) ||
			!plainJSON(s.GRPC) || !plainJSON(s.Reset) || !plainJSON(s.Outcome) {
			return false
		}
	}
	return true
}

// jsonIndenter writes JSON as encoding/json's Indent lays it out: each
// element and field on a line of its own after prefix and one indent
// per level, "key": value, and empty objects and arrays as {} and [];
// compact when it has neither prefix nor indent.
type jsonIndenter struct {
	b              []byte
	prefix, indent string
	depth          int
	first          bool // no field written yet in the current object
}

// indenting reports whether w indents, as an encoder does when its
// prefix or indent is set.
func (w *jsonIndenter) indenting() bool { return w.prefix != "" || w.indent != "" }

func (w *jsonIndenter) newline() {
	if !w.indenting() {
		return
	}
	w.b = append(w.b, '\n')
	w.b = append(w.b, w.prefix...)
	for range w.depth {
		w.b = append(w.b, w.indent...)
	}
}

// open starts a non-empty object or array.
func (w *jsonIndenter) open(c byte) {
	w.b = append(w.b, c)
	w.depth++
	w.first = true
}

func (w *jsonIndenter) close(c byte) {
	w.depth--
	w.newline()
	w.b = append(w.b, c)
	w.first = false
}

// key starts the object's next field.
func (w *jsonIndenter) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.newline()
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
	if w.indenting() {
		w.b = append(w.b, ' ')
	}
}

func (w *jsonIndenter) str(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

// strOmitEmpty writes the field k unless v is empty (omitempty).
func (w *jsonIndenter) strOmitEmpty(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jsonIndenter) uint(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *jsonIndenter) int(k string, v int) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, int64(v), 10)
}

func (w *jsonIndenter) time(k string, t time.Time) {
	w.key(k)
	w.b = appendJSONTime(w.b, t)
}

func (w *jsonIndenter) event(x *TimelineEvent) {
	w.open('{')
	w.uint("frame", x.Frame)
	w.time("ts", x.TS)
	w.str("lane", x.Lane)
	w.str("dir", x.Dir.String())
	if x.Stream != 0 {
		w.uint("stream", uint64(x.Stream))
	}
	w.str("what", x.What)
	if x.EndFrame != 0 {
		w.uint("end_frame", x.EndFrame)
	}
	if !x.EndTS.IsZero() {
		w.time("end_ts", x.EndTS)
	}
	w.close('}')
}

func (w *jsonIndenter) span(s *Span) {
	w.open('{')
	if s.Stream != 0 {
		w.uint("stream", uint64(s.Stream))
	}
	if s.Seq != 0 {
		w.int("seq", s.Seq)
	}
	w.uint("start_frame", s.StartFrame)
	w.time("start_ts", s.StartTS)
	w.uint("end_frame", s.EndFrame)
	w.time("end_ts", s.EndTS)
	w.strOmitEmpty("method", s.Method)
	w.strOmitEmpty("path", s.Path)
	if s.Status != 0 {
		w.int("status", s.Status)
	}
	w.strOmitEmpty("grpc_status", s.GRPC)
	w.strOmitEmpty("reset", s.Reset)
	w.str("outcome", s.Outcome)
	w.close('}')
}
