package report

import (
	"cmp"
	"encoding/json"
	"io"
	"slices"

	"github.com/h2scope/h2scope/analyze"
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
}

// A Builder builds a Report while the analysis streams: Add, the
// analyze.Collector's OnConn, makes each connection's record and
// timeline when it finishes, while its full records are at hand; Report
// then puts them together with the findings and tables. Only those parts
// are kept per connection: memory grows with the number of connections,
// not with their requests.
type Builder struct {
	red       Redaction
	conns     []ConnRecord
	timelines []Timeline
}

// NewBuilder returns a Builder redacting secrets in captured strings as
// red says.
func NewBuilder(red Redaction) *Builder {
	return &Builder{red: red, conns: []ConnRecord{}, timelines: []Timeline{}}
}

// Add builds c's connection record and timeline; c must still hold its
// full records (see analyze.Stream).
func (b *Builder) Add(c *analyze.Conn) {
	b.conns = append(b.conns, NewConnRecord(c.TCP, c.App))
	b.timelines = append(b.timelines, NewTimeline(c, b.red))
}

// New builds a Report from an analysis whose Input holds every
// connection's full records (analyze.Run), redacting secrets in captured
// strings as red says.
func New(files []string, in *analyze.Input, res analyze.Result, red Redaction) *Report {
	b := NewBuilder(red)
	for _, c := range in.Conns {
		b.Add(c)
	}
	return b.Report(files, in, res)
}

// Report builds the Report of an analysis from the connections added, in
// id order; in may hold the connections' summaries only.
func (b *Builder) Report(files []string, in *analyze.Input, res analyze.Result) *Report {
	red := b.red
	r := &Report{Schema: Schema, Findings: res.Findings, Tables: res.Tables}
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
	r.Captures = []Capture{c}
	slices.SortStableFunc(b.conns, func(x, y ConnRecord) int { return cmp.Compare(x.Conn.ID, y.Conn.ID) })
	slices.SortStableFunc(b.timelines, func(x, y Timeline) int { return cmp.Compare(x.Conn, y.Conn) })
	r.Connections, r.Timelines = b.conns, b.timelines
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

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
