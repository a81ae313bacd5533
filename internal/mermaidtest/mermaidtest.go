// Package mermaidtest renders Mermaid diagrams with the Mermaid CLI
// (mmdc, in headless Chromium) for tests: that each renders, without a
// syntax error, and shows the frame numbers its arrows carry.
package mermaidtest

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

// Block finds the Mermaid diagrams of a Markdown text.
var Block = regexp.MustCompile("(?s)```mermaid\n.*?```\n")

// frame matches an arrow's frame number ("frame 12,").
var frame = regexp.MustCompile(`frame (\d+),`)

// Render renders blocks (each a fenced diagram as Block finds them) in
// one run of mmdc and checks each SVG: it exists, has no syntax error,
// shows every "frame N," of its diagram and every string of want. It
// skips t when mmdc or chromium is not installed (npm install -g
// @mermaid-js/mermaid-cli@12.2.0 with PUPPETEER_SKIP_DOWNLOAD=1).
func Render(t *testing.T, blocks []string, want ...string) {
	t.Helper()
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
	if err := os.WriteFile(in, []byte(strings.Join(blocks, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(`{"args":["--no-sandbox"],"executablePath":"`+chromium+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(mmdc, "-q", "-p", conf, "-i", in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("mmdc: %v\n%s", err, b)
	}
	for i, blk := range blocks {
		svg, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out-%d.svg", i+1)))
		if err != nil {
			t.Fatalf("diagram %d did not render: %v\n%s", i+1, err, blk)
		}
		if bytes.Contains(svg, []byte("Syntax error")) {
			t.Errorf("diagram %d: syntax error\n%s", i+1, blk)
		}
		for _, m := range frame.FindAllStringSubmatch(blk, -1) {
			if !bytes.Contains(svg, []byte(m[0])) {
				t.Errorf("diagram %d: the SVG lacks %q\n%s", i+1, m[0], blk)
			}
		}
		for _, w := range want {
			if !bytes.Contains(svg, []byte(w)) {
				t.Errorf("diagram %d: the SVG lacks %q", i+1, w)
			}
		}
	}
}
