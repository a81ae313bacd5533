package report

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/internal/golden"
)

func TestSummaryGolden(t *testing.T) {
	for _, name := range []string{"http1-nokeepalive", "grpc-unary-h2c"} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteSummary(&b, fixtureReport(t, name+".pcapng"), TermOptions{}); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "testdata/golden/"+name+".summary.txt", b.Bytes())
		})
	}
}

// TestSummaryTables checks that the summary shows the tables that have
// rows and only those.
func TestSummaryTables(t *testing.T) {
	for _, tt := range []struct {
		name    string
		want    []string
		notWant []string
	}{
		{"http1-nokeepalive", []string{"Connection pools:", "1-req conns"}, []string{"gRPC", "TLS resumption:"}},
		{"grpc-unary-h2c", []string{"Connection pools:", "gRPC methods:", "gRPC calls:", "/h2scope.capgen.Lab/Lookup"}, []string{"TLS resumption:"}},
	} {
		var b bytes.Buffer
		if err := WriteSummary(&b, fixtureReport(t, tt.name+".pcapng"), TermOptions{}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, s := range tt.want {
			if !strings.Contains(out, s) {
				t.Errorf("%s: summary lacks %q:\n%s", tt.name, s, out)
			}
		}
		for _, s := range tt.notWant {
			if strings.Contains(out, s) {
				t.Errorf("%s: summary has %q:\n%s", tt.name, s, out)
			}
		}
	}
}

// TestSummaryColor checks that colour appears only when asked for, on the
// severity words.
func TestSummaryColor(t *testing.T) {
	r := fixtureReport(t, "http1-nokeepalive.pcapng")
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		if err := WriteSummary(&b, r, TermOptions{Color: color}); err != nil {
			t.Fatal(err)
		}
		var tb bytes.Buffer
		if err := WriteFindingsTable(&tb, r.AnalysisFindings(), TermOptions{Color: color}); err != nil {
			t.Fatal(err)
		}
		for what, out := range map[string]string{"summary": b.String(), "findings table": tb.String()} {
			has := strings.Contains(out, "\x1b[")
			if has != color {
				t.Errorf("%s with Color %v: ANSI escapes present = %v:\n%q", what, color, has, out)
			}
		}
		if color && !strings.Contains(b.String(), ansiYellow+"WARNING") {
			t.Errorf("the warning is not yellow: %q", b.String())
		}
	}
	if got := (TermOptions{Color: true}).severity(analyze.Critical, "critical"); got != ansiRed+"critical"+ansiReset {
		t.Errorf("critical: %q", got)
	}
	if got := (TermOptions{Color: true}).severity(analyze.Info, "info"); got != "info" {
		t.Errorf("info: %q", got)
	}
}

func TestFindingsTable(t *testing.T) {
	r := fixtureReport(t, "http1-nokeepalive.pcapng")
	var b bytes.Buffer
	if err := WriteFindingsTable(&b, r.AnalysisFindings(), TermOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{"Severity", "warning", "reconnect_churn", "tcp.stream eq 0", "Client 127.0.0.1"} {
		if !strings.Contains(out, s) {
			t.Errorf("findings table lacks %q:\n%s", s, out)
		}
	}
}

// TestTableRowCap checks that long tables are cut and say so.
func TestTableRowCap(t *testing.T) {
	rows := make([]analyze.PoolRow, maxTableRows+5)
	for i := range rows {
		rows[i] = analyze.PoolRow{Client: "10.0.0.1", Server: "10.0.0.2:443", Connections: i}
	}
	var b bytes.Buffer
	if err := WritePoolsTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(5 more pools not shown") {
		t.Errorf("%s", b.String())
	}
	b.Reset()
	calls := make([]analyze.GRPCCallRow, 3)
	if err := WriteGRPCCallsTable(&b, calls, 40); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(23 more calls not shown") {
		t.Errorf("%s", b.String())
	}
}

func TestColorEnabled(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	// /dev/null is a character device, as a terminal is: it stands in for
	// one here.
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer tty.Close()
	if !isTerminal(tty) {
		t.Skipf("%s is not a character device here", os.DevNull)
	}
	tests := []struct {
		name          string
		f             *os.File
		noColor, term string
		want          bool
	}{
		{"pipe", pw, "", "xterm", false},
		{"pipe NO_COLOR", pw, "1", "xterm", false},
		{"nil", nil, "", "xterm", false},
		{"tty", tty, "", "xterm", true},
		{"tty NO_COLOR", tty, "1", "xterm", false},
		{"tty NO_COLOR empty", tty, "", "xterm-256color", true},
		{"tty dumb", tty, "", "dumb", false},
	}
	for _, tt := range tests {
		t.Setenv("NO_COLOR", tt.noColor)
		t.Setenv("TERM", tt.term)
		if got := ColorEnabled(tt.f); got != tt.want {
			t.Errorf("%s: ColorEnabled = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestFoldedClients checks the line under the pools table for each "*"
// row: whom it stands for, and only the busiest clients whose count the
// sketch knows within a factor of two.
func TestFoldedClients(t *testing.T) {
	rows := []analyze.PoolRow{
		{Client: "*", Server: "10.0.0.2:443", Name: "api", Connections: 400, Heaviest: []analyze.HeavyClient{
			{Client: "10.9.9.9", Min: 100, Max: 118}, {Client: "10.9.9.8", Min: 30, Max: 30}, {Client: "10.9.9.7", Min: 1, Max: 19}}},
		{Client: "10.0.0.1", Server: "10.0.0.2:443", Connections: 3},
		{Client: "*", Server: "10.0.0.3:80", Connections: 5000, Heaviest: []analyze.HeavyClient{{Client: "10.8.8.8", Min: 1, Max: 300}}},
	}
	var b bytes.Buffer
	if err := WritePoolsTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"* → 10.0.0.2:443 (api): 400 connections of clients past the first 10,000 pools; the busiest: 10.9.9.9 100–118, 10.9.9.8 30\n",
		"* → 10.0.0.3:80: 5000 connections of clients past the first 10,000 pools; none stands out\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("pools table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "10.9.9.7") || strings.Contains(out, "10.8.8.8") || strings.Count(out, "* →") != 2 {
		t.Errorf("pools table names a client the sketch cannot tell, or a line per row:\n%s", out)
	}
	if got := foldedClients(rows, 1); len(got) != 2 || !strings.HasSuffix(got[0], "the busiest: 10.9.9.9 100–118") {
		t.Errorf("foldedClients(rows, 1) = %q", got)
	}
}
