package diff

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/report"
)

// Side is one side of a comparison: what diff reads of an h2scope
// report, whether it came from a report file or from analysing a
// capture.
type Side struct {
	// Source names the file the side came from.
	Source string `json:"source"`
	// Schema is the report's schema ("h2scope.report/v2").
	Schema      string             `json:"-"`
	Findings    []Finding          `json:"-"`
	Tables      analyze.Tables     `json:"-"`
	Connections []ConnRecord       `json:"-"`
	conns       map[int]ConnRecord // by id
}

// Finding is what diff reads of a report's finding.
type Finding struct {
	ID          string           `json:"id,omitempty"`
	Kind        string           `json:"kind"`
	Cause       string           `json:"cause,omitempty"`
	Severity    analyze.Severity `json:"severity"`
	Summary     string           `json:"summary"`
	Connections []int            `json:"connections,omitempty"`
	Metrics     map[string]any   `json:"metrics,omitempty"`
}

// ConnRecord is what diff reads of a report's connection: its id and
// server, and the TLS server name.
type ConnRecord struct {
	ID     int    `json:"id"`
	Server string `json:"server"`
	TLS    *struct {
		SNI string `json:"sni"`
	} `json:"tls"`
}

// LoadOptions configure the analysis of a capture given to Load.
type LoadOptions struct {
	// Dissect configures reading the capture (its Keys: the key logs).
	Dissect dissect.Options
	// Config holds the detectors' thresholds.
	Config analyze.Config
}

// Load reads one side: an `h2scope analyze --json` report (a file whose
// first non-blank byte is "{"), or a capture, which it analyses as
// `h2scope analyze` does.
func Load(ctx context.Context, path string, opts LoadOptions) (*Side, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(f)
	head, _ := br.Peek(512)
	f.Close()
	if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return decode(path, b)
	}
	b, err := analyseCapture(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	return decode(path, b)
}

// analyseCapture analyses a capture and returns its JSON report.
func analyseCapture(ctx context.Context, path string, opts LoadOptions) ([]byte, error) {
	do := opts.Dissect
	if do.Keys != nil {
		do.Keys = do.Keys.Clone() // each side adds its own DSBs
	}
	rb := report.NewBuilder(report.Redaction{})
	rb.Keys = do.Keys
	defer rb.Close()
	onFinish := do.TCP.OnFinish
	do.TCP.OnFinish = func(c *tcp.Conn) {
		if onFinish != nil {
			onFinish(c)
		}
		rb.OnFinish(c)
	}
	res, in, err := analyze.Stream(ctx, []string{path}, do, opts.Config, rb.Add)
	if err != nil {
		return nil, err
	}
	if len(in.Stats.Faults) > 0 {
		return nil, in.Stats.Faults[0]
	}
	var b bytes.Buffer
	if err := rb.Report([]string{path}, in, res).WriteJSON(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// decode reads a JSON report.
func decode(path string, b []byte) (*Side, error) {
	var r struct {
		Schema      string         `json:"schema"`
		Findings    []Finding      `json:"findings"`
		Tables      analyze.Tables `json:"tables"`
		Connections []ConnRecord   `json:"connections"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: not an h2scope report: %w", path, err)
	}
	if !strings.HasPrefix(r.Schema, "h2scope.report/") {
		return nil, fmt.Errorf("%s: not an h2scope report (schema %q)", path, r.Schema)
	}
	s := &Side{Source: path, Schema: r.Schema, Findings: r.Findings, Tables: r.Tables, Connections: r.Connections, conns: map[int]ConnRecord{}}
	for _, c := range r.Connections {
		s.conns[c.ID] = c
	}
	return s, nil
}
