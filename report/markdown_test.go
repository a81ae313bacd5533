package report

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/internal/golden"
)

// fixtureReport analyses a committed capture as `h2scope analyze` does.
func fixtureReport(t *testing.T, name string) *Report {
	t.Helper()
	files := []string{"../testdata/pcaps/" + name}
	res, in, err := analyze.Run(context.Background(), files, dissect.Options{}, analyze.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The file name as the CLI user typed it, not as the test reaches it.
	return New([]string{"testdata/pcaps/" + name}, in, res, Redaction{})
}

func TestMarkdownGolden(t *testing.T) {
	r := fixtureReport(t, "http1-nokeepalive.pcapng")
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/golden/http1-nokeepalive.md", b.Bytes())

	// Deterministic: a second analysis renders the same bytes.
	var b2 bytes.Buffer
	if err := fixtureReport(t, "http1-nokeepalive.pcapng").WriteMarkdown(&b2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), b2.Bytes()) {
		t.Errorf("two runs differ:\n%s", golden.FirstDiff(b2.String(), b.String()))
	}
}

// synthReport builds a report over one synthetic HTTP/1.1 connection whose
// request carries a token in its URL, with a finding quoting that URL.
func synthReport(red Redaction, summary, what string) *Report {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ref := func(frame uint64, ms int) *event.Ref {
		return &event.Ref{Frame: frame, TS: t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	c := &analyze.Conn{
		TCP:  &tcp.Summary{ID: 0, FirstFrame: 1, LastFrame: 9, FirstTS: t0, LastTS: t0.Add(9 * time.Millisecond)},
		SYNs: []event.Ref{*ref(1, 0)}, SYNACKs: []event.Ref{*ref(2, 1)},
		Records: &analyze.Records{Exchanges: []analyze.Exchange{{Proto: event.ProtoHTTP1, Seq: 1, Method: "GET",
			Path: "/v1/items?access_token=SECRET&id=7", Status: 200, Request: ref(4, 3), ResponseEnd: ref(6, 5)}}},
	}
	c.FIN[event.S2C] = ref(8, 7)
	in := &analyze.Input{Conns: []*analyze.Conn{c}, Stats: dissect.Stats{Packets: 9, Bytes: 900}}
	res := analyze.Result{Findings: []analyze.Finding{{
		Kind: analyze.KindReconnectChurn, Severity: analyze.Warning, Summary: summary,
		Connections: []event.ConnID{0},
		Evidence:    []analyze.Evidence{{Frame: 4, TS: ref(4, 3).TS, What: what, Filter: analyze.Filter(0, 0)}},
		Metrics:     map[string]any{"requests": 1}, Confidence: analyze.Confidence{Level: "high"}, Remedy: "reuse connections",
	}}}
	return New([]string{"synthetic.pcapng"}, in, res, red)
}

func TestMarkdownRedacts(t *testing.T) {
	summary := "client fetched https://api.example.com/v1/items?access_token=SECRET&id=7 once per connection"
	what := "request GET /v1/items?access_token=SECRET&id=7"
	for _, tt := range []struct {
		red  Redaction
		want bool
	}{{Redaction{}, false}, {Redaction{Off: true}, true}} {
		var b bytes.Buffer
		if err := synthReport(tt.red, summary, what).WriteMarkdown(&b); err != nil {
			t.Fatal(err)
		}
		md := b.String()
		if got := strings.Contains(md, "SECRET"); got != tt.want {
			t.Errorf("redaction off=%v: Markdown contains SECRET = %v, want %v:\n%s", tt.red.Off, got, tt.want, md)
		}
		// The timeline shows the request, redacted or not.
		if !strings.Contains(md, `GET /v1/items?access\_token=`) {
			t.Errorf("redaction off=%v: the request is missing from the timeline:\n%s", tt.red.Off, md)
		}
		if !tt.red.Off && !strings.Contains(md, "access\\_token=\\[redacted 6 bytes\\]") {
			t.Errorf("the token is not marked as redacted:\n%s", md)
		}
	}
}

// TestMarkdownEscapes checks that captured strings cannot break a table
// row, open HTML or make links.
func TestMarkdownEscapes(t *testing.T) {
	hostile := "x | y `code` *b* _i_ <script>alert(1)</script> [link](javascript:alert(1))\nsecond line"
	var b bytes.Buffer
	if err := synthReport(Redaction{}, hostile, hostile).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, bad := range []string{"<script>", "[link]", "`code`", "*b*", "_i_", "\nsecond line"} {
		if strings.Contains(md, bad) {
			t.Errorf("Markdown contains %q unescaped:\n%s", bad, md)
		}
	}
	// Every evidence row still has its four cells.
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| 4 |") {
			if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 5 {
				t.Errorf("evidence row has %d unescaped pipes, want 5: %s", n, line)
			}
		}
	}
}

func TestMDText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text 1.2.3", "plain text 1.2.3"},
		{"a|b", `a\|b`},
		{"<b>[x](y)</b>", `\<b\>\[x\](y)\</b\>`},
		{"*_`~\\", "\\*\\_\\`\\~\\\\"},
		{"two\nlines", `"two\\nlines"`},
	}
	for _, tt := range tests {
		if got := mdText(tt.in); got != tt.want {
			t.Errorf("mdText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := mdCode("a || b"); got != "`a \\|\\| b`" {
		t.Errorf("mdCode: %q", got)
	}
	if got := mdCode("a`b"); got != "a\\`b" {
		t.Errorf("mdCode with a backtick: %q", got)
	}
}

// TestMarkdownCaps checks that long reports are cut and say so.
func TestMarkdownCaps(t *testing.T) {
	r := synthReport(Redaction{}, "s", "w")
	f := r.Findings[0]
	for i := range 30 {
		f.Connections = append(f.Connections, event.ConnID(i+1))
		f.Evidence = append(f.Evidence, analyze.Evidence{Frame: uint64(10 + i), TS: f.Evidence[0].TS, What: "w", Filter: "tcp.stream eq 0"})
	}
	r.Findings = nil
	for range mdMaxFindings + 3 {
		r.Findings = append(r.Findings, f)
	}
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"_3 more findings not shown (13 in all)", "and 11 more (31 in all)", "(first 8 of 31)"} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q:\n%s", want, md)
		}
	}
	if n := strings.Count(md, "\n## "); n != mdMaxFindings {
		t.Errorf("%d findings shown, want %d", n, mdMaxFindings)
	}
}

func TestMarkdownNoFindings(t *testing.T) {
	r := synthReport(Redaction{}, "s", "w")
	r.Findings = []Finding{}
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No findings") {
		t.Errorf("%s", b.String())
	}
}
