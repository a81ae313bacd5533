package report

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/internal/golden"
)

var screenshotOut = flag.String("screenshot", "", "save a screenshot of the fixture's HTML report to this file (../docs/report.png)")

// htmlFixture is the capture whose report is the HTML golden file and the
// browser test's page.
const htmlFixture = "h2c-large-slow.pcapng"

func renderHTML(t *testing.T, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHTMLGolden(t *testing.T) {
	page := renderHTML(t, fixtureReport(t, htmlFixture))
	golden.Check(t, "testdata/golden/h2c-large-slow.html", page)

	// Deterministic: a second analysis renders the same bytes.
	if again := renderHTML(t, fixtureReport(t, htmlFixture)); !bytes.Equal(page, again) {
		t.Errorf("two runs differ:\n%s", golden.FirstDiff(string(again), string(page)))
	}

	// Self-contained: nothing to fetch.
	for _, bad := range []string{"<link", " src=", "url(", "@import", "<iframe"} {
		if bytes.Contains(page, []byte(bad)) {
			t.Errorf("page contains %q: it must load nothing", bad)
		}
	}
	for _, want := range []string{`id="findings"`, `id="connections"`, `id="timelines"`, `id="pools"`,
		`id="resumption"`, `id="grpc"`, `data-sev="warning"`, `href="#c0-f506"`, `<details class="conn" id="conn-0" data-conn="0" open>`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %s", want)
		}
	}
	data := dataBlock(t, page)
	if len(data.Conns) != 1 || len(data.Conns[0].Events) == 0 || len(data.Conns[0].Spans) != 7 {
		t.Errorf("data block: %d conns, want 1 with events and 7 spans", len(data.Conns))
	}
}

// Hostile strings a capture can carry in paths, SNI, GOAWAY debug data
// and everything derived from them. The last two would mark the body if
// they ever ran.
var hostile = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	`</script><script>alert(2)</script>`,
	`<img src=x onerror="document.body.setAttribute('data-pwned','img')">`,
	`</script><script>document.body.setAttribute('data-pwned','script')</script>`,
}

// xssReport builds a report over one HTTP/2-over-TLS connection whose
// captured strings (SNI, path, GOAWAY debug, finding summary and evidence,
// table cells) are all hostile.
func xssReport() *Report {
	all := strings.Join(hostile, " ")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ref := func(frame uint64, ms int) *event.Ref {
		return &event.Ref{Frame: frame, TS: t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	c := &analyze.Conn{
		TCP:     &tcp.Summary{ID: 0, FirstFrame: 1, LastFrame: 20, FirstTS: t0, LastTS: t0.Add(20 * time.Millisecond), Proto: "tls"},
		SYNs:    []event.Ref{*ref(1, 0)},
		SYNACKs: []event.Ref{*ref(2, 1)},
		App: &dissect.App{
			TLS: &tls.Summary{SNI: all, Version: "TLS 1.3", Timing: tls.Timing{ClientHello: ref(4, 2), ServerHello: ref(5, 3)}},
			HTTP2: &http2.Summary{GoAways: []http2.GoAway{{Dir: event.S2C, Code: http2.ErrCodeNo, LastStreamID: 1,
				Debug: all, Ref: *ref(18, 18)}}},
		},
		Records: &analyze.Records{Exchanges: []analyze.Exchange{{Proto: event.ProtoHTTP2, Stream: 1, Method: "GET", Path: "/p?" + all,
			Status: 200, Request: ref(8, 6), ResponseEnd: ref(12, 10)}}},
	}
	c.FIN[event.S2C] = ref(19, 19)
	in := &analyze.Input{Conns: []*analyze.Conn{c}, Stats: dissect.Stats{Packets: 20, Bytes: 2000}}
	res := analyze.Result{
		Findings: []analyze.Finding{{
			Kind: analyze.KindGoAway, Severity: analyze.Critical, Summary: "summary " + all,
			Connections: []event.ConnID{0},
			Evidence:    []analyze.Evidence{{Frame: 18, TS: ref(18, 18).TS, What: "what " + all, Filter: analyze.Filter(0, 0)}},
			Metrics:     map[string]any{"debug": all}, Confidence: analyze.Confidence{Level: "low", Reasons: []string{all}},
			Remedy: "remedy " + all,
		}},
		Tables: analyze.Tables{
			Pools:       []analyze.PoolRow{{Client: "10.0.0.1", Server: "10.0.0.2:443", Name: all, Connections: 1}},
			Resumption:  []analyze.ResumptionRow{{Client: "10.0.0.1", SNI: all, Server: "10.0.0.2:443", Handshakes: 1}},
			GRPCCalls:   []analyze.GRPCCallRow{{Conn: 0, Stream: 1, Method: all, Status: "OK"}},
			GRPCMethods: []analyze.GRPCMethodRow{{Method: all, Calls: 1, Statuses: map[string]int{all: 1}}},
		},
	}
	return New([]string{"x" + all + ".pcapng"}, in, res, Redaction{Off: true})
}

// dataBlock extracts and decodes the page's JSON data block.
func dataBlock(t *testing.T, page []byte) htmlData {
	t.Helper()
	const open = `<script type="application/json" id="data">`
	i := bytes.Index(page, []byte(open))
	if i < 0 {
		t.Fatal("no data block")
	}
	rest := page[i+len(open):]
	j := bytes.Index(rest, []byte("</script>"))
	if j < 0 {
		t.Fatal("data block not closed")
	}
	var d htmlData
	if err := json.Unmarshal(rest[:j], &d); err != nil {
		t.Fatalf("data block does not parse: %v", err)
	}
	return d
}

func TestHTMLEscapes(t *testing.T) {
	page := renderHTML(t, xssReport())
	lower := bytes.ToLower(page)
	for _, bad := range []string{"<script>alert", "<img", "<script>document", "onerror=\"document"} {
		if bytes.Contains(lower, []byte(bad)) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	// Exactly the two script elements of the page: the data and app.js.
	if n := bytes.Count(lower, []byte("<script")); n != 2 {
		t.Errorf("%d <script tags, want 2", n)
	}
	if n := bytes.Count(lower, []byte("</script")); n != 2 {
		t.Errorf("%d </script tags, want 2", n)
	}
	if !bytes.Contains(page, []byte("summary &lt;script&gt;alert(1)&lt;/script&gt;")) {
		t.Error("the finding summary is not shown escaped")
	}

	// The data block parses back with every string intact.
	all := strings.Join(hostile, " ")
	d := dataBlock(t, page)
	if len(d.Conns) != 1 || len(d.Conns[0].Spans) != 1 {
		t.Fatalf("data block: %+v", d)
	}
	if got, want := d.Conns[0].Spans[0].Path, "/p?"+all; got != want {
		t.Errorf("span path %q, want %q", got, want)
	}
	whats := map[string]bool{}
	for _, e := range d.Conns[0].Events {
		whats[e.What] = true
	}
	for _, want := range []string{"ClientHello " + all, "GET /p?" + all, "GOAWAY NO_ERROR last_stream_id=1 " + all} {
		if !whats[want] {
			t.Errorf("no event %q among %v", want, whats)
		}
	}
}

// chromium returns a Chromium or Chrome binary from PATH, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// runChromium runs headless Chromium on a file with extra arguments and
// returns its standard output and the console lines of its log.
func runChromium(t *testing.T, bin, file string, args ...string) (stdout string, console []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-extensions", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+file)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			// A page blocked in alert() never finishes loading.
			t.Fatalf("%s did not finish in time: did a script open a dialog (alert)?", bin)
		}
		t.Fatalf("%s: %v\n%s", bin, err, errOut.String())
	}
	for _, line := range strings.Split(errOut.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
			console = append(console, line)
		}
	}
	return out.String(), console
}

// TestHTMLChromium loads pages in headless Chromium: the script runs
// without errors, draws the opened timeline, and hostile strings stay
// text. Run with -screenshot ../docs/report.png to keep the screenshot.
func TestHTMLChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome in PATH (apt-get install -y chromium)")
	}
	dir := t.TempDir()
	write := func(name string, r *Report) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, renderHTML(t, r), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	fixture := write("fixture.html", fixtureReport(t, htmlFixture))
	xss := write("xss.html", xssReport())

	errorsBox := regexp.MustCompile(`<div id="errors"[^>]*>(.*?)</div>`)
	checkDOM := func(t *testing.T, file string) string {
		dom, console := runChromium(t, bin, file, "--dump-dom")
		for _, line := range console {
			t.Errorf("console: %s", line)
		}
		if !strings.Contains(dom, `data-ready="1"`) {
			t.Errorf("app.js did not finish: no data-ready on <html>")
		}
		if m := errorsBox.FindStringSubmatch(dom); m == nil {
			t.Error("no #errors element")
		} else if m[1] != "" || !strings.Contains(m[0], "hidden") {
			t.Errorf("page reported errors: %s", m[0])
		}
		return dom
	}

	t.Run("fixture", func(t *testing.T) {
		dom := checkDOM(t, fixture)
		for _, want := range []string{`id="findings"`, `id="connections"`, `<svg class="timeline"`,
			`class="o-ok"`, `class="ev ev-tcp`, `class="ev ev-stall evid stallbar"`, `<details class="events">`,
			`id="c0-f1"`, `<article class="finding sev-warning"`} {
			if !strings.Contains(dom, want) {
				t.Errorf("DOM lacks %s", want)
			}
		}
		// Only the opened connection is drawn.
		if n := strings.Count(dom, `<svg class="timeline"`); n != 1 {
			t.Errorf("%d timelines drawn, want 1", n)
		}
	})

	t.Run("xss", func(t *testing.T) {
		dom := checkDOM(t, xss)
		for _, bad := range []string{` data-pwned="`, "<img", "<script>alert"} {
			if strings.Contains(strings.ToLower(dom), bad) {
				t.Errorf("DOM contains %q: a hostile string ran or became markup", bad)
			}
		}
		// Server-side text and the script's SVG and table text alike.
		if !strings.Contains(dom, "summary &lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Error("DOM lacks the escaped finding summary")
		}
		if !strings.Contains(dom, `<svg class="timeline"`) {
			t.Fatal("no timeline drawn")
		}
		if !strings.Contains(dom, "GET /p?&lt;script&gt;alert(1)&lt;/script&gt; \"&gt;&lt;img src=x") {
			t.Error("DOM lacks the span path as text")
		}
		if !strings.Contains(dom, "ClientHello &lt;script&gt;alert(1)") {
			t.Error("DOM lacks the SNI as text")
		}
	})

	t.Run("interaction", func(t *testing.T) {
		r := fixtureReport(t, "http1-small-pool.pcapng")
		if r.Captures[0].Connections < 10 || len(r.Findings) == 0 || len(r.Findings[0].Evidence) == 0 {
			t.Fatalf("fixture changed: %d connections, %d findings", r.Captures[0].Connections, len(r.Findings))
		}
		var maxDur float64
		conns := allRecords(t, r)
		for _, c := range conns {
			maxDur = max(maxDur, c.DurationMS)
		}
		warnings := 0
		for _, f := range r.Findings {
			if f.Severity == analyze.Warning {
				warnings++
			}
		}
		client := conns[7].Client.String()
		ev := r.Findings[0].Evidence[0]
		page := append(renderHTML(t, r), []byte(interactionProbe(client, fmt.Sprintf("#c%d-f%d", ev.Conn, ev.Frame)))...)
		path := filepath.Join(dir, "interaction.html")
		if err := os.WriteFile(path, page, 0o644); err != nil {
			t.Fatal(err)
		}
		dom, console := runChromium(t, bin, path, "--virtual-time-budget=3000", "--dump-dom")
		for _, line := range console {
			t.Errorf("console: %s", line)
		}
		m := regexp.MustCompile(`<pre id="probe">(.*?)</pre>`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatal("the probe did not run")
		}
		var got struct {
			FirstDur              string
			HiddenRows, Timelines int
			HiddenFindings        int
			Drawn, Highlighted    bool
		}
		if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &got); err != nil {
			t.Fatalf("probe: %v: %s", err, m[1])
		}
		if want := strconv.FormatFloat(maxDur, 'f', 1, 64); got.FirstDur != want {
			t.Errorf("sorted by duration, descending: first row %s ms, want %s", got.FirstDur, want)
		}
		if n := len(conns) - 1; got.HiddenRows != n || got.Timelines != n {
			t.Errorf("filter %q hid %d rows and %d timelines, want %d", client, got.HiddenRows, got.Timelines, n)
		}
		if got.HiddenFindings != warnings {
			t.Errorf("unticking warning hid %d findings, want %d", got.HiddenFindings, warnings)
		}
		if !got.Drawn || !got.Highlighted {
			t.Errorf("evidence link: connection drawn %v, event highlighted %v", got.Drawn, got.Highlighted)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		shot := filepath.Join(dir, "report.png")
		_, console := runChromium(t, bin, fixture, "--screenshot="+shot, "--window-size=1280,2000")
		for _, line := range console {
			t.Errorf("console: %s", line)
		}
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		bounds := img.Bounds()
		if bounds.Dx() != 1280 {
			t.Errorf("screenshot %d px wide, want 1280", bounds.Dx())
		}
		colours := map[uint32]bool{}
		nonWhite, total := 0, 0
		for y := bounds.Min.Y; y < bounds.Max.Y; y += 2 {
			for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
				r, g, b, _ := img.At(x, y).RGBA()
				colours[r>>8<<16|g>>8<<8|b>>8] = true
				if r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
					nonWhite++
				}
				total++
			}
		}
		if len(colours) < 100 || nonWhite*100 < total*3 {
			t.Errorf("screenshot looks blank: %d colours, %d of %d sampled pixels not white", len(colours), nonWhite, total)
		}
		t.Logf("screenshot: %dx%d, %d bytes, %d colours, %.1f%% not white", bounds.Dx(), bounds.Dy(), len(b),
			len(colours), float64(nonWhite)*100/float64(total))
		if *screenshotOut != "" {
			if err := os.WriteFile(*screenshotOut, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// interactionProbe is a script appended to a page in the browser test: it
// sorts the connections by duration (descending), filters by client,
// unticks warning and follows an evidence link, then writes what it sees
// as JSON into <pre id="probe">.
func interactionProbe(client, anchor string) string {
	return `<script>
(function () {
  var th = document.querySelectorAll('#conn-table th')[5];
  th.click(); th.click();
  var firstDur = document.querySelector('#conn-table tbody tr').cells[5].textContent;
  document.querySelector('input[name=sev][value=warning]').click();
  var f = document.getElementById('filter');
  f.value = ` + strconv.Quote(client) + `;
  f.dispatchEvent(new Event('input'));
  location.hash = ` + strconv.Quote(anchor) + `;
  setTimeout(function () {
    var d = document.getElementById(` + strconv.Quote("conn-"+strings.TrimPrefix(strings.Split(anchor, "-f")[0], "#c")) + `);
    var out = document.createElement('pre');
    out.id = 'probe';
    out.textContent = JSON.stringify({
      FirstDur: firstDur,
      HiddenRows: document.querySelectorAll('#conn-table tbody tr[hidden]').length,
      Timelines: document.querySelectorAll('details.conn[hidden]').length,
      HiddenFindings: document.querySelectorAll('article.finding[hidden]').length,
      Drawn: !!(d && d.open && d.querySelector('svg.timeline')),
      Highlighted: !!(d && d.querySelector('svg .hl') && d.querySelector('tr.hl'))
    });
    document.body.appendChild(out);
  }, 500);
})();
</script>
`
}

// TestHTMLEmpty renders a capture with no connections.
func TestHTMLEmpty(t *testing.T) {
	r := New([]string{"empty.pcapng"}, &analyze.Input{}, analyze.Result{}, Redaction{})
	page := string(renderHTML(t, r))
	for _, want := range []string{"No findings", "No connections.", `<script type="application/json" id="data">{"conns":[]}</script>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestHTMLDeterministicGRPC renders a report with gRPC calls (timeouts are
// pointers) twice: identical bytes, and no fmt error markers.
func TestHTMLDeterministicGRPC(t *testing.T) {
	a := renderHTML(t, fixtureReport(t, "grpc-unary-h2c.pcapng"))
	b := renderHTML(t, fixtureReport(t, "grpc-unary-h2c.pcapng"))
	if !bytes.Equal(a, b) {
		t.Fatal("two renderings differ")
	}
	if bytes.Contains(a, []byte("%!")) {
		i := bytes.Index(a, []byte("%!"))
		t.Fatalf("fmt error in the page: %s", a[max(0, i-80):min(len(a), i+80)])
	}
}

// htmlControls holds a sample of every class of bytes the page must show as
// visible escapes: C0 (NUL, BEL, ESC, CR, LF, TAB), DEL, C1 CSI, bidi
// overrides and isolates, the line separator and invalid UTF-8.
const htmlControls = "n\x00b\x07e\x1b[31mred\x1b]0;title\x07 cr\r\nlf\ttab del\x7f csi\u009b2J rlo\u202eolleh lri\u2066x\u2069 ls\u2028 bad\xff\xfe end"

// htmlControlsEscaped is htmlControls as the page shows it.
const htmlControlsEscaped = `n\x00b\ae\x1b[31mred\x1b]0;title\a cr\r\nlf\ttab del\x7f csi\u009b2J rlo\u202eolleh lri\u2066x\u2069 ls\u2028 bad\xff\xfe end`

func TestHTMLSafeString(t *testing.T) {
	if got := htmlSafe(htmlControls); got != htmlControlsEscaped {
		t.Errorf("htmlSafe(htmlControls)\n got %s\nwant %s", got, htmlControlsEscaped)
	}
	for _, s := range []string{"", "plain", "ümlaut → ✓ 日本", `already \x1b escaped`, "<b>&amp;</b>"} {
		if got := htmlSafe(s); got != s {
			t.Errorf("htmlSafe(%q) = %q, want it unchanged", s, got)
		}
	}
	long := strings.Repeat("é", maxHTMLString) // 2 bytes each
	got := htmlSafe(long)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, fmt.Sprintf("… [%d more bytes]", len(long)-maxHTMLString)) ||
		len(got) > maxHTMLString+40 {
		t.Errorf("htmlSafe of %d bytes: %d bytes ending %q", len(long), len(got), got[max(0, len(got)-40):])
	}
}

// htmlRawUnsafe returns the first byte offset in page of a rune htmlSafe
// escapes (other than the tabs, newlines and carriage returns of the
// page's own markup) or of invalid UTF-8, and -1 when there is none.
func htmlRawUnsafe(page string) (int, string) {
	for i, r := range page {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(page[i:]); n <= 1 {
				return i, fmt.Sprintf("invalid UTF-8 %#x", page[i])
			}
		}
		if r == '\n' || r == '\t' || r == '\r' {
			continue
		}
		if !htmlSafeRune(r) {
			return i, fmt.Sprintf("%U", r)
		}
	}
	return -1, ""
}

// htmlControlReport is xssReport with htmlControls instead of markup, in every
// captured string: SNI, pool name, paths, GOAWAY debug, gRPC method and
// status, finding text, metrics and the file name.
func htmlControlReport() *Report {
	saved := hostile
	hostile = []string{htmlControls}
	defer func() { hostile = saved }()
	return xssReport()
}

func TestHTMLControlsEscaped(t *testing.T) {
	page := string(renderHTML(t, htmlControlReport()))
	if i, what := htmlRawUnsafe(page); i >= 0 {
		t.Errorf("page holds a raw %s at byte %d: %q", what, i, page[max(0, i-60):min(len(page), i+20)])
	}
	// html/template escapes & < > " ' but not the backslashes.
	shown := strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(htmlControlsEscaped)
	for _, where := range []string{
		"<td>" + shown + "</td>", // pool name, SNI, status
		"summary " + shown,       // finding summary
		"<dd>" + shown + "</dd>", // metric
		"<code>" + strings.ReplaceAll(shown, "/", "/") + "</code>", // gRPC method
	} {
		if !strings.Contains(page, where) {
			t.Errorf("page lacks %s", where)
		}
	}
	// The data app.js draws from carries the escapes as text too.
	d := dataBlock(t, []byte(page))
	// (The timeline quotes a path holding controls, Go-style.)
	if p := d.Conns[0].Spans[0].Path; !strings.Contains(p, `\x1b[31m`) || !strings.Contains(p, `\u202e`) {
		t.Errorf("span path in the data lacks the escapes: %q", p)
	}

	for _, e := range d.Conns[0].Events {
		if i, what := htmlRawUnsafe(e.What); i >= 0 {
			t.Errorf("event %q holds a raw %s", e.What, what)
		}
	}
	if d.Overview == nil || len(d.Overview.Marks) == 0 || !strings.Contains(d.Overview.Marks[0].What, `\x1b[31m`) {
		t.Errorf("overview marks lack the escaped evidence: %+v", d.Overview)
	}
}

// TestHTMLHostileCaptureSafe renders the hostile-strings capture: no raw
// control, bidi or invalid byte anywhere in the page, and the visible
// escapes are there.
func TestHTMLHostileCaptureSafe(t *testing.T) {
	page := string(renderHTML(t, fixtureReport(t, "hostile-strings.pcapng")))
	if i, what := htmlRawUnsafe(page); i >= 0 {
		t.Errorf("page holds a raw %s at byte %d: %q", what, i, page[max(0, i-60):min(len(page), i+20)])
	}
	if !strings.Contains(page, `\x1b`) {
		t.Error(`page lacks the visible escape \x1b of the capture's ESC`)
	}
}

// TestHTMLBadges: a connection's badge shows the findings naming it at
// the severity of its own part. In http1-idle-timeout the server closes
// four idle connections (critical: two requests were lost): the two
// that lost a request are critical, the two only closed idle warning,
// and the fifth, which no finding names, has no badge.
func TestHTMLBadges(t *testing.T) {
	page := string(renderHTML(t, fixtureReport(t, "http1-idle-timeout.pcapng")))
	re := regexp.MustCompile(`<details class="conn" id="conn-(\d+)"[^>]*>\s*<summary>(.*?)</summary>`)
	got := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		b := regexp.MustCompile(`<span class="badge sev-(\w+)"[^>]*>\w+</span> <span class="kinds">([^<]*)</span>`).FindStringSubmatch(m[2])
		if b == nil {
			got[m[1]] = ""
			continue
		}
		got[m[1]] = b[1] + ": " + b[2]
	}
	want := map[string]string{
		"0": "warning: keepalive_mismatch (warning)",
		"1": "warning: keepalive_mismatch (warning)",
		"2": "critical: keepalive_mismatch (critical)",
		"3": "critical: keepalive_mismatch (critical)",
		"4": "",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("conn %s badge %q, want %q", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d timelines, want %d", len(got), len(want))
	}
}

// htmlBadPlural matches a count of 1 with a plural noun, outside the
// TLS line of the header (another change owns it).
var htmlBadPlural = regexp.MustCompile(`(?:^|[^\n]*?[^\d.,])\b1 (connections|events|requests|streams|timelines|calls|bytes|findings|pools|resets|names)\b`)

func htmlPluralError(page string) string {
	for _, line := range strings.Split(page, "\n") {
		if m := htmlBadPlural.FindString(line); m != "" {
			return m[max(0, len(m)-80):]
		}
	}
	return ""
}

// TestHTMLPlurals: "1 connection", never "1 connections", in the page and
// in what app.js draws.
func TestHTMLPlurals(t *testing.T) {
	for _, name := range []string{"grpc-unary-h2c.pcapng", "h2c-large-slow.pcapng", "http1-idle-timeout.pcapng", "h2-tls.pcapng"} {
		if m := htmlPluralError(string(renderHTML(t, fixtureReport(t, name)))); m != "" {
			t.Errorf("%s: page says %q", name, m)
		}
	}
	// One stream named by a finding, one GOAWAY: "1 stream".
	if m := htmlPluralError(string(renderHTML(t, xssReport()))); m != "" {
		t.Errorf("xss: page says %q", m)
	}
}

// TestHTMLChromiumControls loads pages whose captured strings hold
// controls, bidi overrides and invalid UTF-8 (the hostile-strings
// capture and htmlControlReport), with every timeline opened: the DOM
// app.js built holds none of them raw, and shows their escapes.
func TestHTMLChromiumControls(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome in PATH (apt-get install -y chromium)")
	}
	dir := t.TempDir()
	openAll := `<script>document.querySelectorAll('details.conn').forEach(function (d) { d.open = true; });
document.querySelectorAll('details.events').forEach(function (d) { d.open = true; });</script></body>`
	for name, r := range map[string]*Report{
		"hostile-strings": fixtureReport(t, "hostile-strings.pcapng"),
		"controls":        htmlControlReport(),
	} {
		t.Run(name, func(t *testing.T) {
			page := bytes.Replace(renderHTML(t, r), []byte("</body>"), []byte(openAll), 1)
			path := filepath.Join(dir, name+".html")
			if err := os.WriteFile(path, page, 0o644); err != nil {
				t.Fatal(err)
			}
			dom, console := runChromium(t, bin, path, "--virtual-time-budget=3000", "--dump-dom")
			for _, line := range console {
				t.Errorf("console: %s", line)
			}
			if n := strings.Count(dom, `<svg class="timeline`); n < 2 {
				t.Errorf("%d drawings, want the overview and the timelines", n)
			}
			if i, what := htmlRawUnsafe(dom); i >= 0 {
				t.Errorf("DOM holds a raw %s at byte %d: %q", what, i, dom[max(0, i-60):min(len(dom), i+20)])
			}
			for _, want := range []string{`\x1b`, `\u202e`} {
				if !strings.Contains(dom, want) {
					t.Errorf("DOM lacks the visible escape %s", want)
				}
			}
		})
	}
}

// TestHTMLSafeValueCollision: map keys that read the same once escaped
// (a raw ESC and the text \x1b) add up their counts, the same way
// every time.
func TestHTMLSafeValueCollision(t *testing.T) {
	for range 20 {
		got := htmlSafeValue(map[string]int{"a\x1b": 2, `a\x1b`: 3, "b": 1})
		if len(got) != 2 || got[`a\x1b`] != 5 || got["b"] != 1 {
			t.Fatalf("got %v", got)
		}
		s := htmlSafeValue(map[string]string{"a\x1b": "raw", `a\x1b`: "text"})
		if len(s) != 1 || s[`a\x1b`] != "raw" {
			t.Fatalf("got %q", s)
		}
	}
}

// TestHTMLPluralsChromium: what app.js writes (the overview's summary,
// the filter's count) says "1 connection" too.
func TestHTMLPluralsChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome in PATH (apt-get install -y chromium)")
	}
	r := fixtureReport(t, "grpc-unary-h2c.pcapng")
	r.Findings = r.Findings[:min(len(r.Findings), 1)] // the singular is under test
	if len(r.Connections) != 1 || len(r.Findings) != 1 {
		t.Fatalf("fixture changed: %d connections, %d findings", len(r.Connections), len(r.Findings))
	}
	untick := `<script>document.querySelector('input[name=sev][value=info]').click();</script></body>`
	page := bytes.Replace(renderHTML(t, r), []byte("</body>"), []byte(untick), 1)
	path := filepath.Join(t.TempDir(), "plurals.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	dom, console := runChromium(t, bin, path, "--virtual-time-budget=2000", "--dump-dom")
	for _, line := range console {
		t.Errorf("console: %s", line)
	}
	for _, want := range []string{"showing 0 of 1 finding, 1 of 1 connection<", "1 connection in 1 pool over"} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	if m := htmlPluralError(dom); m != "" {
		t.Errorf("DOM says %q", m)
	}
}

// allRecords returns the record of every connection of r's capture, those
// the report holds and the others, from its spill file.
func allRecords(t *testing.T, r *Report) []ConnRecord {
	t.Helper()
	var out []ConnRecord
	err := r.eachConn(nil, func(event.ConnID) bool { return true }, func(_ *connHead, rec *ConnRecord, _ *Timeline) error {
		out = append(out, *rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
