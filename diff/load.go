package diff

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
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
	// ID is the finding's id in its report (KIND-N).
	ID string `json:"id,omitempty"`
	// Kind and Cause are the finding's kind and cause, as in the report.
	Kind  string `json:"kind"`
	Cause string `json:"cause,omitempty"`
	// Severity is the finding's severity on this side.
	Severity analyze.Severity `json:"severity"`
	// Summary is the finding's one-line summary on this side.
	Summary string `json:"summary"`
	// Connections are the ids of the connections the finding names in
	// its report.
	Connections []int `json:"connections,omitempty"`
	// Metrics are the finding's metrics on this side, by name.
	Metrics map[string]any `json:"metrics,omitempty"`
	// seq is its evidence as a sequence diagram, nil when it has none.
	seq *report.Sequence
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
	rb.NoOverview = true // a diff writes no HTML report
	defer rb.Close()
	res, in, err := analyze.Stream(ctx, []string{path}, do, opts.Config, rb)
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
	if err := sequences(s, b); err != nil {
		return nil, fmt.Errorf("%s: not an h2scope report: %w", path, err)
	}
	return s, nil
}

// sequences gives each of s's findings its evidence drawn as a sequence
// (report.NewSequence) from the report b: the evidence, the direction
// of each evidence frame's packet in the timelines and the addresses of
// the connections.
func sequences(s *Side, b []byte) error {
	var r struct {
		Findings []struct {
			Evidence []analyze.Evidence `json:"evidence"`
		} `json:"findings"`
		Connections []struct {
			ID     event.ConnID   `json:"id"`
			Client netip.AddrPort `json:"client"`
			Server netip.AddrPort `json:"server"`
		} `json:"connections"`
		Timelines []struct {
			Conn   event.ConnID `json:"conn"`
			Events []struct {
				Frame  uint64 `json:"frame"`
				Dir    string `json:"dir"`
				Stream uint32 `json:"stream"`
			} `json:"events"`
		} `json:"timelines"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	type frameKey struct {
		conn   event.ConnID
		frame  uint64
		stream uint32
	}
	dirs := map[frameKey]event.Dir{}
	for _, tl := range r.Timelines {
		for _, e := range tl.Events {
			d, ok := map[string]event.Dir{"c2s": event.C2S, "s2c": event.S2C}[e.Dir]
			if !ok {
				continue
			}
			// The event on the evidence's stream wins; the frame's first
			// event stands for the others.
			if _, seen := dirs[frameKey{tl.Conn, e.Frame, 0}]; !seen {
				dirs[frameKey{tl.Conn, e.Frame, 0}] = d
			}
			dirs[frameKey{tl.Conn, e.Frame, e.Stream}] = d
		}
	}
	type ends struct{ client, server netip.AddrPort }
	addrs := map[event.ConnID]ends{}
	for _, c := range r.Connections {
		addrs[c.ID] = ends{c.Client, c.Server}
	}
	for i := range s.Findings {
		if i >= len(r.Findings) || len(r.Findings[i].Evidence) == 0 {
			continue
		}
		f := &s.Findings[i]
		var evs []report.SequenceEvidence
		for _, e := range r.Findings[i].Evidence {
			se := report.SequenceEvidence{Evidence: e}
			se.Dir, se.DirKnown = dirs[frameKey{e.Conn, e.Frame, e.Stream}]
			if !se.DirKnown {
				se.Dir, se.DirKnown = dirs[frameKey{e.Conn, e.Frame, 0}]
			}
			a := addrs[e.Conn]
			se.Client, se.Server = a.client, a.server
			evs = append(evs, se)
		}
		f.seq = report.NewSequence(&analyze.Finding{ID: f.ID, Kind: f.Kind, Cause: f.Cause, Severity: f.Severity, Summary: f.Summary}, evs)
	}
	return nil
}
