package report

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestMermaidText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"SYN: new connection from port 55475", "SYN: new connection from port 55475"},
		{"a; b # c", "a#59; b #35; c"},
		{`<script>"x"</script>`, "#60;script#62;#34;x#34;#60;/script#62;"},
		{"``` end fence", "#96;#96;#96; end fence"},
		{"TIME_WAIT _i_ *b* [link](x)", "TIME_WAIT #95;i#95; #42;b#42; #91;link#93;(x)"},
		{"a|b {c} &amp; \\", "a#124;b #123;c#125; #38;amp#59; #92;"},
		{"line\nbreak", "#34;line#92;nbreak#34;"}, // printable quotes it
		{strings.Repeat("x", 200), strings.Repeat("x", mdMaxMermaidText-1) + "…"},
	} {
		if got := mermaidText(tt.in); got != tt.want {
			t.Errorf("mermaidText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := mermaidNote("goaway-1 (info): "+strings.Repeat("word ", 20)+"end;"), "goaway-1 (info): word word word word word word word word<br/>word word word word word word word word word word word word<br/>end#59;"; got != want {
		t.Errorf("mermaidNote = %q, want %q", got, want)
	}
}

func TestMermaidParticipant(t *testing.T) {
	a := netip.MustParseAddrPort
	for _, tt := range []struct {
		addrs []netip.AddrPort
		want  string
	}{
		{nil, "Client"},
		{[]netip.AddrPort{a("10.0.0.1:5000"), a("10.0.0.1:5000")}, "Client 10.0.0.1:5000"},
		{[]netip.AddrPort{a("10.0.0.1:5000"), a("10.0.0.1:5001")}, "Client 10.0.0.1"},
		{[]netip.AddrPort{a("10.0.0.1:5000"), a("10.0.0.2:5000")}, "Clients"},
		{[]netip.AddrPort{a("[::1]:443")}, "Client [::1]:443"},
	} {
		if got := participant("Client", tt.addrs); got != tt.want {
			t.Errorf("participant(%v) = %q, want %q", tt.addrs, got, tt.want)
		}
	}
}

// mermaidBlock finds the Mermaid diagrams of a Markdown report.
var mermaidBlock = regexp.MustCompile("(?s)```mermaid\n.*?```\n")

// TestMermaidRenders renders every diagram of the Markdown reports of
// the project's captures with the Mermaid CLI (mmdc, in headless
// Chromium): each must render, and show its arrows' frame numbers. It
// skips when mmdc or chromium is not installed (npm install -g
// @mermaid-js/mermaid-cli@12.2.0 with PUPPETEER_SKIP_DOWNLOAD=1).
func TestMermaidRenders(t *testing.T) {
	mmdc, err := exec.LookPath("mmdc")
	if err != nil {
		t.Skip("mmdc not installed")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	if testing.Short() {
		t.Skip("slow: analyses every capture")
	}
	files, _ := filepath.Glob("../testdata/pcaps/*.pcapng")
	var md bytes.Buffer
	var blocks []string
	for _, f := range files {
		var b bytes.Buffer
		if err := fixtureReport(t, filepath.Base(f)).WriteMarkdown(&b); err != nil {
			t.Fatal(err)
		}
		for _, blk := range mermaidBlock.FindAllString(b.String(), -1) {
			fmt.Fprintf(&md, "## %s\n\n%s\n", filepath.Base(f), blk)
			blocks = append(blocks, blk)
		}
	}
	if len(blocks) < 5 {
		t.Fatalf("%d diagrams in the reports of %d captures, want more", len(blocks), len(files))
	}
	dir := t.TempDir()
	in, out, conf := filepath.Join(dir, "in.md"), filepath.Join(dir, "out.md"), filepath.Join(dir, "p.json")
	if err := os.WriteFile(in, md.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(`{"args":["--no-sandbox"],"executablePath":"`+chromium+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mmdc, "-q", "-p", conf, "-i", in, "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
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
		for _, m := range frame.FindAllStringSubmatch(blk, -1) {
			if !bytes.Contains(svg, []byte(m[0])) {
				t.Errorf("diagram %d: the SVG lacks %q\n%s", i+1, m[0], blk)
			}
		}
	}
	t.Logf("%d diagrams from %d captures rendered", len(blocks), len(files))
}
