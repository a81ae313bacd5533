package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// Bounds on the Markdown report, which is meant to be pasted into a ticket;
// what they leave out is counted in the text.
const (
	mdMaxFindings = 10 // findings shown
	mdMaxEvidence = 8  // evidence rows per finding
	mdMaxConns    = 20 // connection ids listed per finding
	mdBefore      = 5  // timeline events before a finding's first evidence frame
	mdAfter       = 5  // timeline events after it (the events at it come in addition)
)

// WriteMarkdown writes the report as GitHub-flavoured Markdown for a
// ticket: a headline, then each finding with its metrics, remedy, its
// evidence drawn as a Mermaid sequence diagram (see writeMermaid), the
// evidence table and the connection timeline around its first evidence.
// Captured strings are escaped so that they cannot break the tables or inject
// HTML or links. Times are UTC.
func (r *Report) WriteMarkdown(w io.Writer) error {
	ew := &errWriter{w: w}
	sev := r.severityCounts()
	ew.printf("# h2scope report\n\n")
	var files []string
	var packets uint64
	conns := 0
	for _, c := range r.Captures {
		for _, f := range c.Files {
			files = append(files, mdText(f))
		}
		packets += c.Packets
		conns += c.Connections
	}
	ew.printf("**%s**: %d packets, %d connections, %s (%d critical, %d warning, %d info).",
		strings.Join(files, " + "), packets, conns, plural(len(r.Findings), "finding"),
		sev[analyze.Critical], sev[analyze.Warning], sev[analyze.Info])
	start, ok := r.mdStart()
	if ok {
		ew.printf(" Capture starts %s UTC.", start.Format("2006-01-02 15:04:05.000000"))
	}
	ew.printf("\n\n")
	for _, c := range r.Captures {
		if len(c.TLSUndecrypted) > 0 {
			total, why := c.undecrypted(mdText)
			ew.printf("TLS: %d of %d connections not decrypted (%s); %s.\n\n", total, c.TLSConnections, why, mdText(keyLogNote(c.KeyLog)))
		}
		for _, f := range c.Faults {
			ew.printf("Capture damaged: %s (the packets before it were analysed).\n\n", mdText(f))
		}
	}
	if len(r.Findings) == 0 {
		ew.printf("No findings: the connections look healthy.\n")
		return ew.err
	}
	f0 := &r.Findings[0]
	ew.printf("Most severe: **%s** `%s`: %s\n", f0.Severity, f0.Kind, mdText(f0.Summary))

	tli := r.mdTimelineIndex()
	connIndex := r.mdConnIndex()
	for i := range r.Findings {
		if i == mdMaxFindings {
			ew.printf("\n_%d more findings not shown (%d in all); `h2scope analyze --json` lists them._\n",
				len(r.Findings)-i, len(r.Findings))
			break
		}
		r.writeMDFinding(ew, i+1, &r.Findings[i], tli, connIndex, start)
	}
	return ew.err
}

// writeMDFinding writes finding number n.
func (r *Report) writeMDFinding(ew *errWriter, n int, rf *Finding, tli map[event.ConnID]*Timeline, conns map[event.ConnID]*tcp.Summary, start time.Time) {
	f := &rf.Finding
	ew.printf("\n## %d. %s `%s`\n\n%s\n\n", n, strings.ToUpper(f.Severity.String()), f.Kind, mdText(f.Summary))
	switch {
	case rf.Slice != "":
		ew.printf("- **ID:** %s; its packets, annotated: %s\n", mdInlineCode(f.ID), mdInlineCode(rf.Slice))
	case f.ID != "":
		ew.printf("- **ID:** %s (`h2scope slice --finding %s` cuts its packets into a pcapng)\n", mdInlineCode(f.ID), printable(f.ID))
	}
	ew.printf("- **Connections:** %s\n", mdConns(f.Connections))
	if len(f.Streams) > 0 {
		ew.printf("- **Streams:** %s\n", mdStreams(f.Streams))
	}
	ew.printf("- **Confidence:** %s", mdText(f.Confidence.Level))
	if len(f.Confidence.Reasons) > 0 {
		ew.printf(" (%s)", mdText(strings.Join(f.Confidence.Reasons, "; ")))
	}
	ew.printf("\n")
	if len(f.Metrics) > 0 {
		var ms []string
		for _, k := range slices.Sorted(maps.Keys(f.Metrics)) {
			ms = append(ms, mdInlineCode(k+"="+mdMetric(f.Metrics[k])))
		}
		ew.printf("- **Metrics:** %s\n", strings.Join(ms, " "))
	}
	if f.Remedy != "" {
		ew.printf("- **Remedy:** %s\n", mdText(f.Remedy))
	}
	if len(f.Evidence) == 0 {
		return
	}

	writeMermaid(ew, f, tli, conns)

	total := len(f.Evidence)
	if n, ok := f.Metrics["evidence_omitted"].(int); ok {
		total += n
	}
	ew.printf("\n**Evidence**")
	if total > mdMaxEvidence {
		ew.printf(" (first %d of %d)", min(mdMaxEvidence, len(f.Evidence)), total)
	}
	ew.printf("\n\n| Frame | Time | What | Wireshark filter |\n|---:|---|---|---|\n")
	for _, e := range f.Evidence[:min(mdMaxEvidence, len(f.Evidence))] {
		ew.printf("| %d | %s | %s | %s |\n", e.Frame, mdTime(e.TS, start), mdText(e.What), mdCode(e.Filter))
	}

	first := f.Evidence[0]
	evs := mdEventsAround(f, tli, first.Frame)
	if len(evs) == 0 {
		return
	}
	streams := slices.ContainsFunc(evs, func(e mdEvent) bool { return e.Stream != 0 })
	ew.printf("\n**Timeline** around frame %d (times relative to it)\n\n", first.Frame)
	if streams {
		ew.printf("| Frame | Δt | Conn | Stream | Dir | Lane | What |\n|---:|---:|---:|---:|---|---|---|\n")
	} else {
		ew.printf("| Frame | Δt | Conn | Dir | Lane | What |\n|---:|---:|---:|---|---|---|\n")
	}
	for _, e := range evs {
		frame := strconv.FormatUint(e.Frame, 10)
		if e.Frame == first.Frame {
			frame = "**" + frame + "**"
		}
		what := e.What
		if e.EndFrame != 0 {
			what += fmt.Sprintf(" (until frame %d, %s)", e.EndFrame, e.EndTS.Sub(e.TS))
		}
		ew.printf("| %s | %s | %d |", frame, mdRelSeconds(e.TS.Sub(first.TS)), e.conn)
		if streams {
			ew.printf(" %s |", mdStream(e.Stream))
		}
		ew.printf(" %s | %s | %s |\n", e.Dir, e.Lane, mdText(what))
	}
}

// mdEvent is a timeline event with its connection.
type mdEvent struct {
	TimelineEvent
	conn event.ConnID
}

// mdEventsAround returns the events of f's connections nearest frame: up
// to mdBefore before it, those at it, and up to mdAfter after it, in frame
// order.
func mdEventsAround(f *analyze.Finding, tli map[event.ConnID]*Timeline, frame uint64) []mdEvent {
	var evs []mdEvent
	for _, id := range f.Connections {
		tl := tli[id]
		if tl == nil {
			continue
		}
		for _, e := range mdAround(tl.Events, frame, func(e TimelineEvent) uint64 { return e.Frame }) {
			evs = append(evs, mdEvent{e, id})
		}
	}
	slices.SortStableFunc(evs, func(a, b mdEvent) int {
		return cmp.Or(cmp.Compare(a.Frame, b.Frame), cmp.Compare(a.conn, b.conn), cmp.Compare(a.Lane, b.Lane),
			cmp.Compare(a.Stream, b.Stream), strings.Compare(a.What, b.What))
	})
	return mdAround(evs, frame, func(e mdEvent) uint64 { return e.Frame })
}

// mdAround returns the items of s, in frame order, nearest frame: up to
// mdBefore before it, those at it, and up to mdAfter after it.
func mdAround[T any](s []T, frame uint64, frameOf func(T) uint64) []T {
	i, _ := slices.BinarySearchFunc(s, frame, func(e T, f uint64) int { return cmp.Compare(frameOf(e), f) })
	j := i
	for j < len(s) && frameOf(s[j]) == frame {
		j++
	}
	return s[max(0, i-mdBefore):min(len(s), j+mdAfter)]
}

// mdTimelineIndex maps the ids of the connections the findings shown
// name to their timelines.
func (r *Report) mdTimelineIndex() map[event.ConnID]*Timeline {
	named := map[event.ConnID]bool{}
	for i := range r.Findings[:min(len(r.Findings), mdMaxFindings)] {
		for _, id := range r.Findings[i].Connections {
			named[id] = true
		}
	}
	m := make(map[event.ConnID]*Timeline, len(named))
	r.EachTimeline(func(tl *Timeline) error {
		if named[tl.Conn] {
			v := *tl
			m[tl.Conn] = &v
		}
		return nil
	})
	return m
}

// mdStart returns the time of the capture's first connection.
func (r *Report) mdStart() (time.Time, bool) {
	t, _ := r.span()
	return t.UTC(), !t.IsZero()
}

// mdTime formats an evidence time: the time of day, with the date when it
// is not the capture's first.
func mdTime(t, start time.Time) string {
	t = t.UTC()
	if y, m, d := t.Date(); !start.IsZero() {
		if sy, sm, sd := start.Date(); y == sy && m == sm && d == sd {
			return t.Format("15:04:05.000000")
		}
	}
	return t.Format("2006-01-02 15:04:05.000000")
}

// mdRelSeconds formats a time relative to a finding's first evidence.
func mdRelSeconds(d time.Duration) string {
	return fmt.Sprintf("%+.6f s", d.Seconds())
}

func mdStream(s uint32) string {
	if s == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(s), 10)
}

// mdConns lists connection ids, at most mdMaxConns.
func mdConns(ids []event.ConnID) string {
	return mdList(ids, func(id event.ConnID) string { return strconv.FormatUint(uint64(id), 10) })
}

// mdStreams lists HTTP/2 streams as conn/stream, at most mdMaxConns.
func mdStreams(ss []analyze.StreamRef) string {
	return mdList(ss, func(s analyze.StreamRef) string { return fmt.Sprintf("%d/%d", s.Conn, s.Stream) })
}

// mdList joins the first mdMaxConns items of s, formatted, with ", ",
// saying how many more there are.
func mdList[T any](s []T, format func(T) string) string {
	var parts []string
	for i, x := range s {
		if i == mdMaxConns {
			return strings.Join(parts, ", ") + fmt.Sprintf(" and %d more (%d in all)", len(s)-i, len(s))
		}
		parts = append(parts, format(x))
	}
	return strings.Join(parts, ", ")
}

// mdMetric formats a metric value: strings as they are, numbers, lists
// and maps as JSON (maps with sorted keys).
func mdMetric(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// mdText escapes a captured or free string for Markdown text and table
// cells: non-printable characters (newlines included) are quoted, and the
// characters that make emphasis, code, links, HTML or table cells are
// backslash-escaped.
func mdText(s string) string {
	s = printable(s)
	if !strings.ContainsAny(s, mdSpecial) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(mdSpecial, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdSpecial are the characters mdText escapes.
const mdSpecial = "\\`*_<>[]|~"

// mdInlineCode formats a string as inline code outside tables; one
// holding a backtick is escaped text instead.
func mdInlineCode(s string) string {
	s = printable(s)
	if s == "" || strings.ContainsRune(s, '`') {
		return mdText(s)
	}
	return "`" + s + "`"
}

// mdCode formats a string as inline code in a table cell; one holding a
// backtick is escaped text instead.
func mdCode(s string) string {
	s = printable(s)
	if s == "" || strings.ContainsRune(s, '`') {
		return mdText(s)
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}
