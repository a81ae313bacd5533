package report

import (
	"bytes"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/internal/mermaidtest"
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

// TestMermaidRenders renders every diagram of the Markdown reports of
// the project's captures with the Mermaid CLI (mermaidtest.Render): each
// must render, and show its arrows' frame numbers. It skips when mmdc or
// chromium is not installed.
func TestMermaidRenders(t *testing.T) {
	if _, err := exec.LookPath("mmdc"); err != nil {
		t.Skip("mmdc not installed")
	}
	if testing.Short() {
		t.Skip("slow: analyses every capture")
	}
	files, _ := filepath.Glob("../testdata/pcaps/*.pcapng")
	var blocks []string
	for _, f := range files {
		var b bytes.Buffer
		if err := fixtureReport(t, filepath.Base(f)).WriteMarkdown(&b); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, mermaidtest.Block.FindAllString(b.String(), -1)...)
	}
	if len(blocks) < 5 {
		t.Fatalf("%d diagrams in the reports of %d captures, want more", len(blocks), len(files))
	}
	mermaidtest.Render(t, blocks)
	t.Logf("%d diagrams from %d captures rendered", len(blocks), len(files))
}
