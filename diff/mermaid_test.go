package diff

import (
	"bytes"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/internal/mermaidtest"
)

// TestMarkdownBeforeAfter checks that diff --md draws each finding that
// differs as one diagram with the before and after sides in boxes, the
// finding's evidence frames on its side and a note on the side it is
// absent from, and renders them with the Mermaid CLI when it is
// installed (as report's TestMermaidRenders does).
func TestMarkdownBeforeAfter(t *testing.T) {
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
		got := mermaidtest.Block.FindAllString(b.String(), -1)
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
		blocks = append(blocks, got[0])
	}

	mermaidtest.Render(t, blocks, ">Before<", ">After<")
	t.Logf("%d diagrams rendered", len(blocks))
}
