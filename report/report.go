package report

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/internal/pack"
)

// Schema names the version of the JSON report.
const Schema = "h2scope.report/v1"

// Report is the analysis of one capture (one or more files merged), the
// model every renderer reads.
type Report struct {
	// Schema is always Schema.
	Schema string `json:"schema"`
	// Captures describes the files read.
	Captures []Capture `json:"captures"`
	// Connections lists every TCP connection, by id.
	Connections []ConnRecord `json:"connections"`
	// Findings lists the findings, by severity (highest first).
	Findings []analyze.Finding `json:"findings"`
	// Tables holds the pool, resumption and gRPC call tables.
	Tables analyze.Tables `json:"tables"`
	// Timelines holds each connection's notable events and requests, in
	// connection order.
	Timelines []Timeline `json:"timelines"`
	// timeline, in a Builder's Report, makes the timeline of
	// Connections[i]; Timelines is then nil (see EachTimeline).
	timeline func(i int) Timeline
}

// EachTimeline calls fn with each connection's timeline, in connection
// order, and stops at the first error fn returns. A Builder's Report
// leaves Timelines nil and makes each timeline for the call, so that
// they are never all in memory at once (its writers include them).
func (r *Report) EachTimeline(fn func(*Timeline) error) error {
	if r.timeline == nil {
		for i := range r.Timelines {
			if err := fn(&r.Timelines[i]); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range r.Connections {
		tl := r.timeline(i)
		if err := fn(&tl); err != nil {
			return err
		}
	}
	return nil
}

// allTimelines returns every timeline, made when the report makes them
// on demand.
func (r *Report) allTimelines() []Timeline {
	if r.timeline == nil {
		return r.Timelines
	}
	out := make([]Timeline, 0, len(r.Connections))
	r.EachTimeline(func(tl *Timeline) error {
		out = append(out, *tl)
		return nil
	})
	return out
}

// WriteJSONLine writes the report (timelines included) as one line of
// JSON ending in a newline, as json.Encoder with SetEscapeHTML(false)
// writes it, controls escaped (newJSONEncoder): a record of an NDJSON
// file. Like WriteJSON, it encodes one connection, timeline or finding at
// a time.
func (r *Report) WriteJSONLine(w io.Writer) error {
	return r.writeJSON(w, true)
}

// Capture describes what was read.
type Capture struct {
	// Files are the capture files, merged by time.
	Files []string `json:"files"`
	// Packets and Bytes count the frames read and their captured bytes.
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Connections counts TCP connections.
	Connections int `json:"connections"`
	// Secrets counts the TLS secrets found in Decryption Secrets Blocks.
	Secrets int `json:"secrets,omitempty"`
	// Faults lists the damage that cut files short; the packets before
	// each were analysed.
	Faults []string `json:"faults,omitempty"`
	// TLSConnections counts connections with TLS; TLSUndecrypted counts
	// those whose protected records stayed encrypted, by reason
	// (no_key_log, no_keys_for_session, ...).
	TLSConnections int            `json:"tls_connections"`
	TLSUndecrypted map[string]int `json:"tls_undecrypted,omitempty"`
	// KeyLog says what the TLS secrets given for the capture held (key
	// log files and the captures' Decryption Secrets Blocks) and how its
	// TLS sessions fitted them; absent when there were none.
	KeyLog *KeyLogUse `json:"key_log,omitempty"`
	// ResumeKey, written by h2scope batch, identifies everything that
	// decided this report: the files (size, modification time, a hash of
	// their first and last MiB), the key logs used (content hash), the
	// analysis options and the h2scope version, as "v1:" and a SHA-256
	// in hex. A resumed batch re-analyses a capture whose key differs.
	ResumeKey string `json:"resume_key,omitempty"`
}

// KeyLogUse says what TLS key logs were read for a capture and how its
// sessions fitted them.
type KeyLogUse struct {
	// Secrets counts the secrets read (one per key log line used), from
	// Sources sources: key log files (--keylog, or found beside the
	// capture by batch) and capture files' Decryption Secrets Blocks.
	Secrets int `json:"secrets"`
	Sources int `json:"sources"`
	// Sessions counts the client randoms the secrets are for.
	Sessions int `json:"sessions"`
	// Matched counts the TLS sessions whose client random has secrets;
	// MissingClientRandoms those whose client random has none (a resumed
	// TLS 1.2 session, decrypted through the session it resumes, counts
	// here too: key logs have no line for it).
	Matched              int `json:"matched"`
	MissingClientRandoms int `json:"missing_client_randoms"`
}

// keyLogNote says, for a capture whose TLS connections were not all
// decrypted, what the key logs given held and how they fitted, or asks
// for one when none was given: "4 secrets read from 1 source, none fit
// these sessions (3 client randoms missing from them)".
func keyLogNote(k *KeyLogUse) string {
	switch {
	case k == nil || k.Sources == 0 && k.Secrets == 0:
		return "give --keylog to see inside them"
	case k.Secrets == 0:
		return fmt.Sprintf("the key logs given (%s) hold no TLS secrets", plural(k.Sources, "source"))
	}
	read := fmt.Sprintf("%s read from %s", plural(k.Secrets, "secret"), plural(k.Sources, "source"))
	missing := ""
	if k.MissingClientRandoms > 0 {
		missing = fmt.Sprintf("%s missing from them", plural(k.MissingClientRandoms, "client random"))
	}
	if k.Matched == 0 {
		if missing != "" {
			missing = " (" + missing + ")"
		}
		return read + ", none fit these sessions" + missing
	}
	note := fmt.Sprintf("%s fit %s", read, plural(k.Matched, "session"))
	if missing != "" {
		note += "; " + missing
	}
	return note
}

// A Builder builds a Report while the analysis streams: Add, the
// analyze.Collector's OnConn, makes the parts of each connection's record
// and timeline that need its full records (application summaries,
// requests, resets, stalls) while they are at hand; Report then completes
// them from the connections' final summaries (TCP summary, SYN, FIN, RST
// and window refs, TLS and GOAWAY events, which may still change after
// Add) and puts them together with the findings and tables. Only those
// parts are kept per connection: memory grows with the number of
// connections, not with their requests.
type Builder struct {
	// Limits bound each connection's timeline; NewBuilder sets
	// DefaultLimits.
	Limits Limits
	// Keys, if set, is the key log the capture was dissected with
	// (dissect.Options.Keys); Report records what it held and how the
	// sessions fitted it (Capture.KeyLog).
	Keys  *tls.KeyLog
	red   Redaction
	conns []built
	tls   timelineStore
}

// built is what Add made of a connection.
type built struct {
	c   *analyze.Conn
	rec ConnRecord // without its TCP summary, which Report adds (final then)
	// tl holds the timeline's events from the full records (capped at
	// Limits.Events, EventsOmitted counting the rest) and its spans;
	// Report merges in the others. It is kept encoded in the Builder's
	// timelineStore at loc when packed.
	tl     Timeline
	loc    pack.Loc
	packed bool
}

// NewBuilder returns a Builder redacting secrets in captured strings as
// red says.
func NewBuilder(red Redaction) *Builder {
	return &Builder{red: red, Limits: DefaultLimits}
}

// Add builds the parts of c's connection record and timeline that need
// its full records; c must still hold them (see analyze.Stream), and
// Report reads c again for the rest.
func (b *Builder) Add(c *analyze.Conn) {
	// The timeline events of the records released after Add: stalls,
	// resets and requests (see summaryTimeline for the others).
	h := *c
	h.SYNs, h.SYNACKs, h.FIN, h.RST, h.ZeroWindows = nil, nil, [2]*event.Ref{}, [2]*event.Ref{}, [2][]event.Ref{}
	if c.App != nil {
		a := *c.App
		a.TLS = nil
		if a.HTTP2 != nil {
			h2 := *a.HTTP2
			h2.GoAways = nil
			a.HTTP2 = &h2
		}
		h.App = &a
	}
	x := built{c: c, rec: NewConnRecord(c.TCP, c.App), tl: NewTimeline(&h, b.red, b.Limits)}
	x.rec.Summary = nil
	if loc, ok := b.tls.put(&x.tl); ok {
		x.tl, x.loc, x.packed = Timeline{}, loc, true
	}
	b.conns = append(b.conns, x)
}

// summaryTimeline returns the timeline events of c that its summary
// keeps: TCP SYN, FIN, RST and zero windows, TLS handshake and alerts,
// GOAWAYs.
func summaryTimeline(c *analyze.Conn, red Redaction, lim Limits) Timeline {
	s := *c
	s.Exchanges, s.ExchangesDropped, s.Resets, s.ResetsDropped, s.Pings = nil, 0, nil, 0, nil
	if c.App != nil {
		a := *c.App
		a.Streams, a.Calls = nil, nil
		if a.HTTP2 != nil {
			h2 := *a.HTTP2
			h2.Stalls, h2.StreamsDropped = nil, 0
			a.HTTP2 = &h2
		}
		s.App = &a
	}
	return NewTimeline(&s, red, lim)
}

// mergeTimeline returns the timeline made of the events of sum and tl
// and the spans of tl, as NewTimeline makes it from the connection's
// records: sum's events go first among equals, as NewTimeline adds them
// first, and each part holds at least the first lim.Events of its
// own events, so the first lim.Events of both are among them.
func mergeTimeline(sum, tl Timeline, lim Limits) Timeline {
	ev := make([]TimelineEvent, 0, len(sum.Events)+len(tl.Events))
	ev = append(append(ev, sum.Events...), tl.Events...)
	slices.SortStableFunc(ev, func(a, b TimelineEvent) int {
		return cmp.Or(cmp.Compare(a.Frame, b.Frame), cmp.Compare(a.Lane, b.Lane))
	})
	tl.EventsOmitted += sum.EventsOmitted
	if len(ev) > lim.Events {
		tl.EventsOmitted += len(ev) - lim.Events
		ev = slices.Clone(ev[:lim.Events])
	}
	tl.Events = ev
	return tl
}

// New builds a Report from an analysis whose Input holds every
// connection's full records (analyze.Run), redacting secrets in captured
// strings as red says.
func New(files []string, in *analyze.Input, res analyze.Result, red Redaction) *Report {
	b := NewBuilder(red)
	for _, c := range in.Conns {
		b.Add(c)
	}
	r := b.Report(files, in, res)
	r.Timelines, r.timeline = r.allTimelines(), nil
	return r
}

// Report builds the Report of an analysis from the connections added, in
// id order; in may hold the connections' summaries only.
func (b *Builder) Report(files []string, in *analyze.Input, res analyze.Result) *Report {
	red := b.red
	r := &Report{Schema: Schema, Findings: res.Findings, Tables: res.Tables}
	// The tables name gRPC methods, which are request paths.
	for i := range r.Tables.GRPCCalls {
		r.Tables.GRPCCalls[i].Method = red.URL(r.Tables.GRPCCalls[i].Method)
	}
	for i := range r.Tables.GRPCMethods {
		r.Tables.GRPCMethods[i].Method = red.URL(r.Tables.GRPCMethods[i].Method)
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		f.Summary = red.Text(f.Summary)
		for j := range f.Evidence {
			f.Evidence[j].What = red.Text(f.Evidence[j].What)
		}
		for k, v := range f.Metrics {
			if s, ok := v.(string); ok {
				f.Metrics[k] = red.Text(s)
			}
		}
	}
	c := Capture{Files: files, Packets: in.Stats.Packets, Bytes: in.Stats.Bytes,
		Connections: len(in.Conns), Secrets: in.Stats.Secrets}
	for _, f := range in.Stats.Faults {
		c.Faults = append(c.Faults, f.Error())
	}
	if st := b.Keys.Stats(); st.Sources > 0 || st.Secrets > 0 {
		c.KeyLog = &KeyLogUse{Secrets: st.Secrets, Sources: st.Sources, Sessions: st.Sessions,
			Matched: st.Matched, MissingClientRandoms: st.Missing}
	}
	r.Captures = []Capture{c}
	slices.SortStableFunc(b.conns, func(x, y built) int { return cmp.Compare(x.c.ID(), y.c.ID()) })
	r.Connections = make([]ConnRecord, 0, len(b.conns))
	for _, x := range b.conns {
		x.rec.Summary = NewConnRecord(x.c.TCP, nil).Summary
		r.Connections = append(r.Connections, x.rec)
	}
	conns, lim := b.conns, b.Limits
	r.timeline = func(i int) Timeline {
		x := &conns[i]
		tl := x.tl
		if x.packed {
			tl = b.tls.get(x.loc)
		}
		return mergeTimeline(summaryTimeline(x.c, red, lim), tl, lim)
	}
	for _, k := range in.Conns {
		if k.App == nil || k.App.TLS == nil {
			continue
		}
		r.Captures[0].TLSConnections++
		if reason := k.App.TLS.Decryption.Reason; reason != "" {
			if r.Captures[0].TLSUndecrypted == nil {
				r.Captures[0].TLSUndecrypted = map[string]int{}
			}
			r.Captures[0].TLSUndecrypted[reason]++
		}
	}
	if r.Findings == nil {
		r.Findings = []analyze.Finding{}
	}
	return r
}

// WriteJSON writes the report as one indented JSON object. It encodes
// one connection, timeline or finding at a time, so that the encoding of
// a large report is never held in memory whole; the bytes are those of
// json.Encoder with SetIndent("", "  ") and SetEscapeHTML(false), with
// the controls a terminal would act on escaped (newJSONEncoder).
func (r *Report) WriteJSON(w io.Writer) error {
	return r.writeJSON(w, false)
}

func (r *Report) writeJSON(w io.Writer, compact bool) error {
	jw := &jsonWriter{w: bufio.NewWriterSize(w, 64<<10), compact: compact}
	jw.punct("{\n", "{")
	jw.field("schema", &r.Schema, false)
	list(jw, "captures", r.Captures)
	list(jw, "connections", r.Connections)
	list(jw, "findings", r.Findings)
	jw.field("tables", &r.Tables, false)
	if r.timeline == nil {
		list(jw, "timelines", r.Timelines)
	} else {
		each(jw, "timelines", len(r.Connections), r.EachTimeline)
	}
	jw.punct("\n}\n", "}\n")
	if jw.err != nil {
		return jw.err
	}
	return jw.w.Flush()
}

// jsonWriter writes the fields of a JSON object one value at a time,
// indented as json.Encoder with SetIndent("", "  ") does, or compact; the
// first error stops it.
type jsonWriter struct {
	w       *bufio.Writer
	compact bool
	buf     bytes.Buffer
	n       int // fields written
	err     error
}

// punct writes the punctuation and white space of the indented form, or
// that of the compact one.
func (jw *jsonWriter) punct(indented, compact string) {
	if jw.compact {
		jw.raw(compact)
	} else {
		jw.raw(indented)
	}
}

// encoder returns an encoder writing to b as jw writes values at depth,
// with the controls escapeJSONControls escapes escaped.
func (jw *jsonWriter) encoder(b *bytes.Buffer, depth int) *json.Encoder {
	enc := newJSONEncoder(b)
	if !jw.compact {
		enc.SetIndent(strings.Repeat("  ", depth), "  ")
	}
	return enc
}

func (jw *jsonWriter) raw(s string) {
	if jw.err == nil {
		_, jw.err = jw.w.WriteString(s)
	}
}

// value writes v's encoding, indented as at depth (in units of two
// spaces) unless compact, without a final newline.
func (jw *jsonWriter) value(v any, depth int) {
	if jw.err != nil {
		return
	}
	jw.buf.Reset()
	if jw.err = jw.encoder(&jw.buf, depth).Encode(v); jw.err != nil {
		return
	}
	_, jw.err = jw.w.Write(bytes.TrimSuffix(jw.buf.Bytes(), []byte("\n")))
}

// field writes the object's next field.
func (jw *jsonWriter) field(name string, v any, open bool) {
	if jw.n > 0 {
		jw.punct(",\n", ",")
	}
	jw.n++
	jw.punct("  \""+name+"\": ", "\""+name+"\":")
	if !open {
		jw.value(v, 1)
	}
}

// list writes a field holding a slice, one element at a time.
func list[T any](jw *jsonWriter, name string, s []T) {
	if len(s) == 0 {
		jw.field(name, s, false) // null or [], as s is
		return
	}
	each(jw, name, len(s), func(fn func(*T) error) error {
		for i := range s {
			if err := fn(&s[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// each writes the n values all calls its function with as the array
// field name (on several goroutines for long lists; see listEncoder).
func each[T any](jw *jsonWriter, name string, n int, all func(func(*T) error) error) {
	if n == 0 {
		jw.field(name, []T{}, false)
		return
	}
	jw.field(name, nil, true)
	jw.punct("[\n", "[")
	if n >= parallelItems && jw.err == nil {
		e := newListEncoder(jw)
		all(func(v *T) error { return e.add(v) })
		e.close()
		jw.punct("\n  ]", "]")
		return
	}
	i := 0
	all(func(v *T) error {
		if i > 0 {
			jw.punct(",\n", ",")
		}
		i++
		jw.punct("    ", "")
		jw.value(v, 2)
		return jw.err
	})
	jw.punct("\n  ]", "]")
}
