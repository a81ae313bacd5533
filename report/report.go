package report

import (
	"encoding/json"
	"io"

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

// New builds a Report from an analysis, redacting secrets in captured
// strings as red says.
func New(files []string, in *analyze.Input, res analyze.Result, red Redaction) *Report {
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
	r.Connections = make([]ConnRecord, 0, len(in.Conns))
	r.Timelines = make([]Timeline, 0, len(in.Conns))
	for _, k := range in.Conns {
		r.Connections = append(r.Connections, NewConnRecord(k.TCP, k.App))
		r.Timelines = append(r.Timelines, NewTimeline(k, red))
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
