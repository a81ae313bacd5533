package report

import (
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// The HTML report is one self-contained file: the template, style sheet
// and script below are embedded in the binary and inlined into the page,
// which loads nothing from the network.
//
// Everything captured (summaries, paths, SNI, header-derived text) reaches
// the page through html/template, which escapes it for its context: as
// text in the markup, and as JSON in the <script type="application/json"
// id="data"> block that app.js reads to draw the timelines. Only the
// embedded style sheet and script are marked safe. Before that, every
// string of the page is made safe to read (htmlSafeValue, html_safe.go):
// controls, bidi overrides and invalid UTF-8 become visible escapes, in
// the markup and in the data alike. The page opens with the overview
// (html_overview.go), counted here in fixed time buckets.
//
//go:embed html/page.html.tmpl html/style.css html/app.js
var htmlFS embed.FS

var (
	pageTmpl = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
		"add":    func(a, b int) int { return a + b },
		"deref":  func(p *float64) float64 { return *p },
		"plural": htmlPlural,
	}).ParseFS(htmlFS, "html/page.html.tmpl"))
	pageCSS = template.CSS(htmlMustRead("html/style.css"))
	pageJS  = template.JS(htmlMustRead("html/app.js"))
)

func htmlMustRead(name string) string {
	b, err := htmlFS.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time; cannot fail
	}
	return string(b)
}

// WriteHTML writes the report as one self-contained HTML page: findings
// by severity with their evidence, each connection's timeline (swimlanes
// and a Gantt chart of its requests, drawn when expanded), the pool,
// resumption and gRPC tables and the connections table. The output
// depends only on the report, byte for byte.
func (r *Report) WriteHTML(w io.Writer) error {
	if r.noOverview {
		return errors.New("report: the report was built without the HTML overview's counts (Builder.NoOverview)")
	}
	p, err := newHTMLPage(r)
	if err != nil {
		return err
	}
	return pageTmpl.Execute(w, htmlSafeValue(p))
}

// htmlPage is what page.html.tmpl renders.
type htmlPage struct {
	Files          []string
	Packets, Bytes uint64
	Connections    int
	Span           string // capture time span
	Faults         []string
	TLSConnections int
	TLSUndecrypted int
	UndecryptedWhy string // "no_key_log 3, ..."
	// KeyLogNote says what the key logs given held and how they fitted
	// (keyLogNote); empty when none was given.
	KeyLogNote       string
	Counts           [3]int // findings by severity: critical, warning, info
	Findings         []htmlFinding
	Tables           analyze.Tables
	Resumption       []htmlResumption
	Conns            []htmlConnRow
	Timelines        []htmlTimelineHead
	Data             htmlData
	CSS              template.CSS
	JS               template.JS
	ConnsWithFinding int
	Trimmed          int // timelines not embedded (maxHTMLItems)
	// ConnsOmitted counts the connections neither listed nor given a
	// timeline head (maxHTMLConns); the overview still counts them.
	ConnsOmitted int
	// Pools are the pools table's rows, at most maxHTMLPools (the
	// busiest); PoolsOmitted counts the others.
	Pools        []analyze.PoolRow
	PoolsOmitted int
	// PoolsFolded says whom the "*" rows of Pools stand for.
	PoolsFolded []string
}

type htmlFinding struct {
	analyze.Finding
	Slice      string // the annotated pcapng of its packets, if written
	Sev        string
	Index      int
	Metrics    []htmlKV
	Evidence   []htmlEvidence
	Reasons    string
	ConnsShown []event.ConnID // at most maxFindingConnLinks
	ConnsMore  int
}

type htmlKV struct{ Key, Value string }

type htmlEvidence struct {
	analyze.Evidence
	Time, Date, Anchor string
}

type htmlResumption struct {
	analyze.ResumptionRow
	Mechanisms string
	AcceptPct  int // accepted over offered, percent
}

type htmlConnRow struct {
	ID                             event.ConnID
	Client, Server, Proto          string
	PktsC2S, PktsS2C, Pkts         uint64
	BytesC2S, BytesS2C, BytesTotal uint64
	State, History, Close          string
	RTT                            string // ms, "" when unknown
	RTTSort                        float64
	Retrans, ZeroWin               int
	Missed                         uint64
	DurMS                          string
	DurSort                        float64
	FirstFrame                     uint64
}

type htmlTimelineHead struct {
	ID                    event.ConnID
	Client, Server, Proto string
	Events, Spans         int
	Outcomes              string // "7 ok, 2 reset"
	Dur                   string
	Sev                   string // worst severity of its findings on it (connSeverity), "" when none
	Kinds                 string // the kinds of the findings naming it, with their severity on it
	Open                  bool
	Trimmed               bool // events not embedded (maxHTMLItems)
}

// htmlData is the JSON the script reads. Times are milliseconds since the
// connection's first packet, rounded to the microsecond. Event and span
// keys are short: a page may carry a hundred thousand of them.
type htmlData struct {
	Conns []htmlConnData `json:"conns"`
	// Overview is the capture-wide picture (html_overview.go), absent
	// when there are no connections.
	Overview *htmlOverview `json:"overview,omitempty"`
}

type htmlConnData struct {
	ID     event.ConnID `json:"id"`
	Client string       `json:"client"`
	Server string       `json:"server"`
	// Start is the time of the connection's first packet (RFC 3339).
	Start string  `json:"start"`
	DurMS float64 `json:"dur_ms"`
	// Events and Spans are the timeline; the omitted counts say how many
	// more the report's caps left out.
	Events        []htmlEventData `json:"events"`
	EventsOmitted int             `json:"events_omitted,omitempty"`
	Spans         []htmlSpanData  `json:"spans"`
	SpansOmitted  int             `json:"spans_omitted,omitempty"`
	// Trimmed is true when the page's budget left this connection's
	// events and spans out entirely (counted in the omitted fields).
	Trimmed bool `json:"trimmed,omitempty"`
	// Evidence lists the frames findings cite on this connection.
	Evidence []uint64 `json:"evidence,omitempty"`
}

// htmlEventData is one TimelineEvent.
type htmlEventData struct {
	Frame    uint64   `json:"f"`
	T        float64  `json:"t"`
	Lane     string   `json:"l"`
	Dir      string   `json:"d"`
	Stream   uint32   `json:"s,omitempty"`
	What     string   `json:"w"`
	EndFrame uint64   `json:"ef,omitempty"`
	EndT     *float64 `json:"et,omitempty"`
	Open     bool     `json:"open,omitempty"` // a stall still open at the end
}

// htmlSpanData is one Span.
type htmlSpanData struct {
	Stream     uint32  `json:"s,omitempty"`
	Seq        int     `json:"q,omitempty"`
	StartFrame uint64  `json:"sf"`
	T          float64 `json:"t"`
	EndFrame   uint64  `json:"ef"`
	EndT       float64 `json:"et"`
	Method     string  `json:"m,omitempty"`
	Path       string  `json:"p,omitempty"`
	Status     int     `json:"c,omitempty"`
	GRPC       string  `json:"g,omitempty"`
	Reset      string  `json:"r,omitempty"`
	Outcome    string  `json:"o"`
}

// maxHTMLItems bounds the events and spans embedded in one page, so that
// a capture of many busy connections still opens quickly. Connections
// that findings name are embedded first, then the others in order, each
// whole or not at all; the rest are listed with their counts only.
const maxHTMLItems = 60000

// maxFindingConnLinks bounds the connection links listed under a finding.
const maxFindingConnLinks = 50

// maxHTMLConns bounds the connections listed in the page (table rows,
// timeline heads and their data), so that a capture of 100,000
// connections still gives a page of a few megabytes: connections named
// by findings first, then the others, in id order; the overview counts
// every connection.
const maxHTMLConns = 2000

// heavyShown is how many of a "*" pool row's heaviest clients the page
// names.
const heavyShown = 16

// maxHTMLPools bounds the rows of the page's pools table: past it (a SYN
// flood's thousands of one-connection clients) the busiest pools by
// connections are listed and the rest counted; --json has them all.
const maxHTMLPools = 2000

// htmlPlural returns "1 connection", "2 connections" for any integer n.
func htmlPlural(n any, word string) string {
	s := fmt.Sprint(n)
	if s == "1" {
		return "1 " + word
	}
	return s + " " + word + "s"
}

// A connection's badge.
//
// A finding names many connections, but not every one of them shows
// what makes the finding as severe as it is: a keep-alive race is
// critical because some requests were lost, yet most of the connections
// it names were only closed idle by the server. A connection's badge
// therefore lists only the findings that name it, each at the severity
// of that connection's own part:
//
//   - an info or warning finding gives each connection it names its own
//     severity (the extra connection, handshake or stall is that
//     connection's cost);
//   - a critical finding gives critical to a connection that lost
//     something itself: one of its requests ended in an error, a reset
//     or never completed, a gRPC call on it ended non-OK, or it was
//     ended by a RST; and to every connection a protocol_abuse finding
//     names (an attack is critical at scale, each connection is part of
//     it). The other connections it names get warning: they are part of
//     the pattern and cost something, but lost nothing themselves.
//
// The badge shows the worst of these, and lists each finding's kind with
// its severity on that connection. The overview's evidence marks use the
// same severity.
func connSeverity(f *analyze.Finding, failed bool) analyze.Severity {
	if f.Severity != analyze.Critical || failed || f.Kind == "protocol_abuse" {
		return f.Severity
	}
	return analyze.Warning
}

// connFailed reports whether a connection lost something itself: a
// request that ended in an error, a reset or never completed, a non-OK
// gRPC call, or a RST that ended it.
func connFailed(rec *ConnRecord, tl *Timeline) bool {
	if rec != nil && rec.Summary != nil && (rec.Close == tcp.CloseRSTClient || rec.Close == tcp.CloseRSTServer) {
		return true
	}
	if rec != nil && rec.GRPC != nil {
		for st, n := range rec.GRPC.Status {
			if n > 0 && st != "OK" && st != "" {
				return true
			}
		}
	}
	if tl != nil {
		for i := range tl.Spans {
			if tl.Spans[i].Outcome != "ok" {
				return true
			}
		}
	}
	return false
}

// findingConns holds which findings name each connection: pairs of a
// connection id and a finding's index, as id<<32 | index, sorted and
// without repeats. 8 bytes a pair, where a map of the connections'
// lists took about 80 bytes a connection, and a churn finding can name a
// million.
type findingConns []uint64

func newFindingConns(findings []Finding) findingConns {
	n := 0
	for i := range findings {
		n += len(findings[i].Connections)
	}
	pairs := make(findingConns, 0, n)
	for i := range findings {
		for _, c := range findings[i].Connections {
			pairs = append(pairs, uint64(c)<<32|uint64(uint32(i)))
		}
	}
	slices.Sort(pairs)
	return slices.Compact(pairs)
}

// span returns where the pairs of id start and end.
func (n findingConns) span(id event.ConnID) (lo, hi int) {
	lo, _ = slices.BinarySearch(n, uint64(id)<<32)
	hi = lo
	for hi < len(n) && event.ConnID(n[hi]>>32) == id {
		hi++
	}
	return lo, hi
}

// has says whether a finding names id.
func (n findingConns) has(id event.ConnID) bool {
	lo, hi := n.span(id)
	return hi > lo
}

// of returns the indexes of the findings naming id, in order.
func (n findingConns) of(id event.ConnID) []int {
	lo, hi := n.span(id)
	if lo == hi {
		return nil
	}
	out := make([]int, hi-lo)
	for i := range out {
		out[i] = int(uint32(n[lo+i]))
	}
	return out
}

// count returns the number of connections named.
func (n findingConns) count() int {
	c := 0
	for i := range n {
		if i == 0 || n[i]>>32 != n[i-1]>>32 {
			c++
		}
	}
	return c
}

// first returns the first limit connections named, in id order.
func (n findingConns) first(limit int) []event.ConnID {
	var ids []event.ConnID
	for i := 0; i < len(n) && len(ids) < limit; i++ {
		if i == 0 || n[i]>>32 != n[i-1]>>32 {
			ids = append(ids, event.ConnID(n[i]>>32))
		}
	}
	return ids
}

func newHTMLPage(r *Report) (*htmlPage, error) {
	p := &htmlPage{CSS: pageCSS, JS: pageJS, Tables: r.Tables, Pools: r.Tables.Pools}
	if rows := r.Tables.Pools; len(rows) > maxHTMLPools {
		// The busiest (ties in the table's order), listed in the table's
		// order.
		idx := make([]int, len(rows))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(rows[b].Connections, rows[a].Connections) })
		idx = idx[:maxHTMLPools]
		slices.Sort(idx)
		p.Pools = make([]analyze.PoolRow, len(idx))
		for j, i := range idx {
			p.Pools[j] = rows[i]
		}
		p.PoolsOmitted = len(rows) - len(idx)
	}
	p.PoolsFolded = foldedClients(p.Pools, heavyShown)
	undecrypted := map[string]int{}
	for _, c := range r.Captures {
		p.Files = append(p.Files, c.Files...)
		p.Packets += c.Packets
		p.Bytes += c.Bytes
		p.Connections += c.Connections
		p.Faults = append(p.Faults, c.Faults...)
		p.TLSConnections += c.TLSConnections
		for k, n := range c.TLSUndecrypted {
			undecrypted[k] += n
			p.TLSUndecrypted += n
		}
	}
	p.UndecryptedWhy = countsText(undecrypted, nil)
	var keys *KeyLogUse
	for _, c := range r.Captures {
		if k := c.KeyLog; k != nil {
			if keys == nil {
				keys = &KeyLogUse{}
			}
			keys.Secrets += k.Secrets
			keys.Sources += k.Sources
			keys.Sessions += k.Sessions
			keys.Matched += k.Matched
			keys.MissingClientRandoms += k.MissingClientRandoms
		}
	}
	if keys != nil {
		p.KeyLogNote = keyLogNote(keys)
	}

	sev := r.severityCounts()
	p.Counts = [3]int{sev[analyze.Critical], sev[analyze.Warning], sev[analyze.Info]}

	// The findings naming each connection, and the frames cited on each.
	named := newFindingConns(r.Findings)
	cited := map[event.ConnID][]uint64{}
	for i, f := range r.Findings {
		hf := htmlFinding{Finding: f.Finding, Slice: f.Slice, Sev: f.Severity.String(), Index: i + 1,
			Reasons: strings.Join(f.Confidence.Reasons, "; ")}
		for _, k := range slices.Sorted(maps.Keys(f.Metrics)) {
			hf.Metrics = append(hf.Metrics, htmlKV{k, htmlMetricText(f.Metrics[k])})
		}
		for _, e := range f.Evidence {
			hf.Evidence = append(hf.Evidence, htmlEvidence{Evidence: e,
				Time:   e.TS.UTC().Format("15:04:05.000000"),
				Date:   e.TS.UTC().Format(time.RFC3339Nano),
				Anchor: fmt.Sprintf("c%d-f%d", e.Conn, e.Frame)})
			cited[e.Conn] = append(cited[e.Conn], e.Frame)
		}
		hf.ConnsShown = f.Connections
		if len(hf.ConnsShown) > maxFindingConnLinks {
			hf.ConnsShown, hf.ConnsMore = hf.ConnsShown[:maxFindingConnLinks], len(f.Connections)-maxFindingConnLinks
		}
		p.Findings = append(p.Findings, hf)
	}
	p.ConnsWithFinding = named.count()

	for _, row := range r.Tables.Resumption {
		hr := htmlResumption{ResumptionRow: row}
		hr.Mechanisms = countsText(row.Mechanisms, nil)
		if row.Offered > 0 {
			hr.AcceptPct = min(100, row.Accepted*100/row.Offered)
		}
		p.Resumption = append(p.Resumption, hr)
	}

	// The connections listed: those findings name first, then the
	// others, at most maxHTMLConns, shown in id order.
	listed := map[event.ConnID]bool{}
	var namedIDs []event.ConnID
	if r.src != nil {
		namedIDs = named.first(maxHTMLConns)
	} else {
		for i := range r.Connections {
			if named.has(r.Connections[i].ID) {
				namedIDs = append(namedIDs, r.Connections[i].ID)
			}
		}
		slices.Sort(namedIDs)
	}
	for _, id := range namedIDs[:min(len(namedIDs), maxHTMLConns)] {
		listed[id] = true
	}
	others := maxHTMLConns - len(listed)

	first, last := r.span()
	if !first.IsZero() {
		p.Span = fmt.Sprintf("%s – %s UTC (%s)", first.UTC().Format("2006-01-02 15:04:05.000"),
			last.UTC().Format("15:04:05.000"), htmlFmtMS(float64(last.Sub(first))/1e6))
	}
	ov := newOverviewBuilder(r, first, last, r.poolCounts())

	// The timeline opened on load: the first connection the first finding
	// cites, else the first one.
	openConn := event.ConnID(math.MaxUint32)
	if len(r.Findings) > 0 && len(r.Findings[0].Connections) > 0 {
		openConn = r.Findings[0].Connections[0]
	}
	// The first pass counts the overview, and picks the connections
	// listed and the size of each one's timeline, to choose those
	// embedded whole; the second makes the listed ones' data.
	type size struct {
		conn event.ConnID
		n    int
	}
	var sizes []size
	recs := map[event.ConnID]*ConnRecord{}
	inPage := map[event.ConnID]bool{}
	nConns := 0
	err := r.eachConn(nil, func(id event.ConnID) bool {
		return listed[id] || !named.has(id) && others > 0 || ov.cited[id]
	}, func(h *connHead, rec *ConnRecord, tl *Timeline) error {
		nConns++
		if openConn == math.MaxUint32 {
			openConn = tl.Conn
		}
		if !named.has(tl.Conn) && others > 0 && rec != nil {
			listed[tl.Conn] = true
			others--
		}
		failed := connFailed(rec, tl)
		for _, fi := range named.of(tl.Conn) {
			ov.severity(fi, tl.Conn, connSeverity(&r.Findings[fi].Finding, failed))
		}
		ov.add(h, tl)
		// A timeline without a record (a report made by hand) is listed.
		if !listed[tl.Conn] && (rec != nil || r.src != nil) {
			return nil
		}
		if rec != nil {
			recs[tl.Conn] = rec
			p.Conns = append(p.Conns, newHTMLConnRow(rec))
		}
		inPage[tl.Conn] = true
		sizes = append(sizes, size{tl.Conn, len(tl.Events) + len(tl.Spans)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.ConnsOmitted = max(0, nConns-len(p.Conns))
	keep := map[event.ConnID]bool{}
	budget := maxHTMLItems
	for _, wantNamed := range []bool{true, false} {
		for _, tl := range sizes {
			if named.has(tl.conn) == wantNamed && (tl.n <= budget || tl.conn == openConn) {
				keep[tl.conn], budget = true, max(0, budget-tl.n)
			}
		}
	}
	p.Data.Conns = make([]htmlConnData, 0, len(sizes))
	inPageOnly := func(id event.ConnID) bool { return inPage[id] }
	err = r.eachConn(inPageOnly, func(event.ConnID) bool { return false }, func(_ *connHead, _ *ConnRecord, tlp *Timeline) error {
		rec := recs[tlp.Conn]
		failed := connFailed(rec, tlp)
		// The connection's severity under each finding naming it.
		var worst analyze.Severity = -1
		var kinds []string
		for _, fi := range named.of(tlp.Conn) {
			f := &r.Findings[fi]
			s := connSeverity(&f.Finding, failed)
			worst = max(worst, s)
			kinds = append(kinds, f.Kind+" ("+s.String()+")")
		}
		tl := *tlp
		d := newHTMLConnData(&tl, rec)
		if !keep[tl.Conn] {
			d.EventsOmitted, d.SpansOmitted = len(d.Events)+d.EventsOmitted, len(d.Spans)+d.SpansOmitted
			d.Events, d.Spans, d.Trimmed = []htmlEventData{}, []htmlSpanData{}, true
			p.Trimmed++
		}
		frames := slices.Clone(cited[tl.Conn])
		slices.Sort(frames)
		d.Evidence = slices.Compact(frames)
		p.Data.Conns = append(p.Data.Conns, d)
		h := htmlTimelineHead{ID: tl.Conn, Events: len(tl.Events) + tl.EventsOmitted,
			Spans: len(tl.Spans) + tl.SpansOmitted, Open: tl.Conn == openConn, Trimmed: !keep[tl.Conn]}
		if rec != nil {
			h.Client, h.Server, h.Proto = rec.Client.String(), rec.Server.String(), rec.protoLabel()
			h.Dur = htmlFmtMS(rec.DurationMS)
		}
		if worst >= 0 {
			h.Sev, h.Kinds = worst.String(), strings.Join(kinds, ", ")
		}
		outcomes := map[string]int{}
		for _, s := range tl.Spans {
			outcomes[s.Outcome]++
		}
		var parts []string
		for _, o := range []string{"ok", "error", "reset", "incomplete"} {
			if n := outcomes[o]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, o))
			}
		}
		h.Outcomes = strings.Join(parts, ", ")
		p.Timelines = append(p.Timelines, h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.Data.Overview = ov.finish()
	return p, nil
}

func newHTMLConnRow(r *ConnRecord) htmlConnRow {
	c := r.Summary
	row := htmlConnRow{ID: c.ID, Client: r.clientLabel(), Server: c.Server.String(), Proto: r.protoLabel(),
		PktsC2S: c.Packets.C2S, PktsS2C: c.Packets.S2C, Pkts: c.Packets.C2S + c.Packets.S2C,
		BytesC2S: c.Bytes.C2S, BytesS2C: c.Bytes.S2C, BytesTotal: c.Bytes.C2S + c.Bytes.S2C,
		State: c.ConnState, History: c.History, Close: string(c.Close),
		RTTSort: -1, Retrans: c.Retransmissions, ZeroWin: c.ZeroWindows, Missed: c.MissedBytes,
		DurMS: strconv.FormatFloat(c.DurationMS, 'f', 1, 64), DurSort: c.DurationMS, FirstFrame: c.FirstFrame}
	if c.HandshakeRTTMS != nil {
		row.RTT = strconv.FormatFloat(*c.HandshakeRTTMS, 'f', 3, 64)
		row.RTTSort = *c.HandshakeRTTMS
	}
	return row
}

func newHTMLConnData(tl *Timeline, rec *ConnRecord) htmlConnData {
	d := htmlConnData{ID: tl.Conn, Events: make([]htmlEventData, 0, len(tl.Events)),
		Spans: make([]htmlSpanData, 0, len(tl.Spans)), EventsOmitted: tl.EventsOmitted, SpansOmitted: tl.SpansOmitted}
	var t0 time.Time
	if rec != nil {
		t0 = rec.FirstTS
		d.Client, d.Server = rec.Client.String(), rec.Server.String()
		d.DurMS = htmlRoundUS(rec.DurationMS)
	} else if len(tl.Events) > 0 {
		t0 = tl.Events[0].TS
	}
	d.Start = t0.UTC().Format(time.RFC3339Nano)
	rel := func(ts time.Time) float64 { return htmlRoundUS(float64(ts.Sub(t0)) / 1e6) }
	for _, e := range tl.Events {
		he := htmlEventData{Frame: e.Frame, T: rel(e.TS), Lane: e.Lane, Dir: e.Dir.String(), Stream: e.Stream, What: e.What}
		if e.EndFrame != 0 {
			end := rel(e.EndTS)
			he.EndFrame, he.EndT = e.EndFrame, &end
		} else if e.Lane == LaneStall && strings.HasPrefix(e.What, "HTTP/2") {
			he.Open = true
		}
		d.Events = append(d.Events, he)
	}
	for _, s := range tl.Spans {
		hs := htmlSpanData{Stream: s.Stream, Seq: s.Seq, StartFrame: s.StartFrame, T: rel(s.StartTS),
			EndFrame: s.EndFrame, EndT: rel(s.EndTS), Method: s.Method, Path: s.Path, Status: s.Status,
			GRPC: s.GRPC, Reset: s.Reset, Outcome: s.Outcome}
		if s.StartTS.IsZero() {
			hs.T = 0
		}
		if s.EndTS.IsZero() {
			hs.EndT = hs.T
		}
		d.Spans = append(d.Spans, hs)
	}
	return d
}

func htmlRoundUS(ms float64) float64 { return math.Round(ms*1000) / 1000 }

// htmlFmtMS formats a duration in milliseconds for people.
func htmlFmtMS(ms float64) string {
	switch {
	case ms >= 10000:
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + " s"
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	default:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	}
}

// htmlMetricText formats a finding metric.
func htmlMetricText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return htmlFmtFloat(x)
	case float32:
		return htmlFmtFloat(float64(x))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, bool:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func htmlFmtFloat(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return strconv.FormatFloat(x, 'g', -1, 64)
	case x == math.Trunc(x) && math.Abs(x) < 1e15:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case math.Abs(x) < 0.001:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	s := strconv.FormatFloat(x, 'f', 3, 64)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}
