package diff

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mermaidBlock finds the Mermaid diagrams of a Markdown diff.
var mermaidBlock = regexp.MustCompile("(?s)```mermaid\n.*?```\n")

// TestMarkdownBeforeAfter checks that diff --md draws each finding that
// differs as one diagram with the before and after sides in boxes, the
// finding's evidence frames on its side and a note on the side it is
// absent from, and renders them with the Mermaid CLI when it is
// installed (as report's TestMermaidRenders does).
func TestMarkdownBeforeAfter(t *testing.T) {
	var md bytes.Buffer
	var blocks []string
	for _, tt := range []struct {
		before, after string
		status        string
		frames        []string // evidence frames drawn
		absent        string   // the note of the side without it
	}{
		{"http1-nokeepalive.pcapng", "http1-keepalive.pcapng", Resolved, []string{"C1->>S1: frame 1,", "S1->>C1: frame 8,"}, "Note over C2,S2: no such finding after"},
		{"http1-keepalive.pcapng", "http1-nokeepalive.pcapng", New, []string{"C2->>S2: frame 1,", "S2->>C2: frame 8,"}, "Note over C1,S1: no such finding before"},
		{"tls13-resume-fail.pcapng", "tls13-resume.pcapng", Resolved, []string{"S1: frame "}, "Note over C2,S2: no such finding after"},
		{"tls13-resume-fail.pcapng", "tls13-resume-fail.pcapng", Unchanged, nil, ""},
	} {
		r := Compare(load(t, tt.before), load(t, tt.after), Options{})
		var b bytes.Buffer
		if err := r.WriteMarkdown(&b); err != nil {
			t.Fatal(err)
		}
		got := mermaidBlock.FindAllString(b.String(), -1)
		if tt.status == Unchanged {
			if len(got) != 0 || strings.Contains(b.String(), "## Before and after") {
				t.Errorf("%s → %s: unchanged findings drawn:\n%s", tt.before, tt.after, b.String())
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("%s → %s: %d diagrams, want 1:\n%s", tt.before, tt.after, len(got), b.String())
		}
		for _, want := range append(tt.frames, "    box Before\n", "    box After\n", tt.absent, "### "+tt.status+" `") {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s → %s: no %q in:\n%s", tt.before, tt.after, want, got[0])
			}
		}
		fmt.Fprintf(&md, "## %s → %s\n\n%s\n", tt.before, tt.after, got[0])
		blocks = append(blocks, got[0])
	}

	mmdc, err := exec.LookPath("mmdc")
	if err != nil {
		t.Skip("mmdc not installed: diagrams not rendered")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed: diagrams not rendered")
	}
	dir := t.TempDir()
	in, out, conf := filepath.Join(dir, "in.md"), filepath.Join(dir, "out.md"), filepath.Join(dir, "p.json")
	os.WriteFile(in, md.Bytes(), 0o644)
	os.WriteFile(conf, []byte(`{"args":["--no-sandbox"],"executablePath":"`+chromium+`"}`), 0o644)
	if b, err := exec.Command(mmdc, "-q", "-p", conf, "-i", in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("mmdc: %v\n%s", err, b)
	}
	frame := regexp.MustCompile(`frame (\d+),`)
	for i, blk := range blocks {
		svg, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out-%d.svg", i+1)))
		if err != nil {
			t.Fatalf("diagram %d did not render: %v\n%s", i+1, err, blk)
		}
		if bytes.Contains(svg, []byte("Syntax error")) {
			t.Errorf("diagram %d: syntax error\n%s", i+1, blk)
		}
		for _, want := range []string{">Before<", ">After<"} {
			if !bytes.Contains(svg, []byte(want)) {
				t.Errorf("diagram %d: the SVG lacks the box title %q", i+1, want)
			}
		}
		for _, m := range frame.FindAllStringSubmatch(blk, -1) {
			if !bytes.Contains(svg, []byte(m[0])) {
				t.Errorf("diagram %d: the SVG lacks %q\n%s", i+1, m[0], blk)
			}
		}
	}
	t.Logf("%d diagrams rendered", len(blocks))
}
