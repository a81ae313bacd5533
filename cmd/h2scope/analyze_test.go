package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

type reportOut struct {
	Schema   string `json:"schema"`
	Findings []struct {
		Kind     string `json:"kind"`
		Severity string `json:"severity"`
		Evidence []struct {
			Frame  uint64 `json:"frame"`
			Filter string `json:"filter"`
		} `json:"evidence"`
		Remedy string `json:"remedy"`
	} `json:"findings"`
	Connections []json.RawMessage `json:"connections"`
}

// TestAnalyzeMatchesTruth checks that every generated scenario yields
// exactly the finding kinds its truth file expects at warning or above
// (the healthy controls: none), with evidence and a remedy, and that
// --fail-on follows them.
func TestAnalyzeMatchesTruth(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/pcaps/*.truth.json")
	for _, tf := range files {
		tr, err := truth.Load(tf)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(tr.Scenario, func(t *testing.T) {
			args := append([]string{"analyze", "--json", "-", "--fail-on", "warning"}, captureArgs(tf, tr)...)
			out, errOut, code := runCLI(t, args...)
			var rep reportOut
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("exit %d, %v: %s", code, err, errOut)
			}
			if rep.Schema != "h2scope.report/v1" || len(rep.Connections) != tr.Expect.TCPConnections {
				t.Errorf("schema %q, %d connections (truth %d)", rep.Schema, len(rep.Connections), tr.Expect.TCPConnections)
			}
			var kinds []string
			for _, f := range rep.Findings {
				if f.Severity == "info" {
					continue
				}
				kinds = append(kinds, f.Kind)
				if len(f.Evidence) == 0 || f.Evidence[0].Frame == 0 || !strings.HasPrefix(f.Evidence[0].Filter, "tcp.stream eq ") || f.Remedy == "" {
					t.Errorf("%s: evidence %+v, remedy %q", f.Kind, f.Evidence, f.Remedy)
				}
			}
			slices.Sort(kinds)
			kinds = slices.Compact(kinds)
			want := slices.Clone(tr.Expect.Findings)
			slices.Sort(want)
			if !slices.Equal(kinds, want) {
				t.Errorf("findings at warning or above %v, truth expects %v", kinds, want)
			}
			wantCode := 0
			if len(want) > 0 {
				wantCode = 1
			}
			if code != wantCode {
				t.Errorf("--fail-on warning: exit %d, want %d (%s)", code, wantCode, errOut)
			}
		})
	}
}

func TestAnalyzeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"analyze"},
		{"analyze", "--fail-on", "info", "../../testdata/pcaps/http1-keepalive.pcapng"},
		{"analyze", "--rst-min", "x", "../../testdata/pcaps/http1-keepalive.pcapng"},
		{"analyze", "--keylog", "/nonexistent/keys", "../../testdata/pcaps/http1-keepalive.pcapng"},
		{"analyze", "--json", "-", "--md", "-", "../../testdata/pcaps/http1-keepalive.pcapng"},
	} {
		if _, errOut, code := runCLI(t, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestAnalyzeWritesFiles checks that --json and --md write their files
// (atomically, so no temporary file is left) beside the terminal summary.
func TestAnalyzeWritesFiles(t *testing.T) {
	dir := t.TempDir()
	j, md, html := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md"), filepath.Join(dir, "r.html")
	out, errOut, code := runCLI(t, "analyze", "--json", j, "--md", md, "--html", html, "../../testdata/pcaps/http1-nokeepalive.pcapng")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "reconnect_churn") {
		t.Errorf("terminal summary: %s", out)
	}
	var rep reportOut
	if err := json.Unmarshal(readFile(t, j), &rep); err != nil || rep.Schema != "h2scope.report/v1" {
		t.Errorf("JSON report: %v %q", err, rep.Schema)
	}
	if b := readFile(t, md); !strings.HasPrefix(string(b), "# h2scope report") || !strings.Contains(string(b), "reconnect_churn") {
		t.Errorf("Markdown report: %.200s", b)
	}
	if b := readFile(t, html); !strings.HasPrefix(string(b), "<!DOCTYPE html>") || !strings.Contains(string(b), "reconnect_churn") {
		t.Errorf("HTML report: %.200s", b)
	}
	if st, err := os.Stat(j); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("report file mode: %v %v", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("files left in the output directory: %v", entries)
	}
}

// TestAnalyzeTimelineLimits checks that the timeline caps keep exact
// counts of what they leave out.
func TestAnalyzeTimelineLimits(t *testing.T) {
	type tl struct {
		Events        []json.RawMessage `json:"events"`
		EventsOmitted int               `json:"events_omitted"`
		Spans         []json.RawMessage `json:"spans"`
		SpansOmitted  int               `json:"spans_omitted"`
	}
	get := func(args ...string) tl {
		out, errOut, code := runCLI(t, append(append([]string{"analyze", "--json", "-"}, args...), "../../testdata/pcaps/h2c-large-slow.pcapng")...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var r struct{ Timelines []tl }
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Timelines) != 1 {
			t.Fatalf("%v: %d timelines", err, len(r.Timelines))
		}
		return r.Timelines[0]
	}
	full := get()
	capped := get("--timeline-events", "5", "--timeline-spans", "2")
	if full.EventsOmitted != 0 || len(capped.Events) != 5 || len(capped.Events)+capped.EventsOmitted != len(full.Events) {
		t.Errorf("events: full %d (+%d), capped %d (+%d)", len(full.Events), full.EventsOmitted, len(capped.Events), capped.EventsOmitted)
	}
	if len(capped.Spans) != 2 || len(capped.Spans)+capped.SpansOmitted != len(full.Spans)+full.SpansOmitted {
		t.Errorf("spans: full %d (+%d), capped %d (+%d)", len(full.Spans), full.SpansOmitted, len(capped.Spans), capped.SpansOmitted)
	}
}
