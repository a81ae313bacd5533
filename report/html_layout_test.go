package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// htmlSynthReport builds a report over conns synthetic HTTP/2 connections
// of streams streams each, as the analysis would hand them to New: SYN,
// SYN-ACK, requests and responses, every third stream reset by the
// client (CANCEL), a flow-control stall every fifth stream and FINs;
// connections open every 3 ms, 36 pools (3 clients, 12 servers). One
// critical rst_storm and one warning reconnect_churn finding name them
// all. It tests the page's drawing at sizes the test captures do not
// reach; the analysis itself is tested on real captures elsewhere.
func htmlSynthReport(conns, streams int) *Report {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	frame := uint64(0)
	at := func(ms float64) *event.Ref {
		frame++
		return &event.Ref{Frame: frame, TS: t0.Add(time.Duration(ms * float64(time.Millisecond)))}
	}
	in := &analyze.Input{}
	var ids []event.ConnID
	var evidence []analyze.Evidence
	for i := range conns {
		start := float64(i) * 3
		dur := 40 + float64(i%7)*25 + float64(streams)*0.5
		syn := at(start)
		c := &analyze.Conn{Records: &analyze.Records{},
			TCP: &tcp.Summary{ID: event.ConnID(i), Proto: "http2",
				Client:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i%3)}), uint16(20000+i%40000)),
				Server:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i / 3 % 12)}), 443),
				FirstTS: syn.TS, LastTS: syn.TS.Add(time.Duration(dur * float64(time.Millisecond))), DurationMS: dur,
				FirstFrame: syn.Frame, SYNs: 1, SYNACKs: 1, Close: tcp.CloseFINClient, ConnState: "SF", History: "ShADadFf"},
			SYNs:    []event.Ref{*syn},
			SYNACKs: []event.Ref{*at(start + 0.05)},
			App:     &dissect.App{HTTP2: &http2.Summary{}},
		}
		for s := range streams {
			id := uint32(2*s + 1)
			req := float64(s) * (dur - 2) / float64(streams)
			x := analyze.Exchange{Proto: event.ProtoHTTP2, Stream: id, Method: "POST",
				Path:    fmt.Sprintf("/pkg.Service/Method%d", s%5),
				Request: at(start + 0.1 + req)}
			if s%3 == 2 {
				r := at(start + 0.2 + req + 0.5)
				x.Reset = &http2.Reset{Dir: event.C2S, Code: http2.ErrCodeCancel, Ref: *r}
				c.Records.Resets = append(c.Records.Resets, analyze.Reset{Dir: event.C2S, Stream: id, Code: http2.ErrCodeCancel, Ref: *r})
				if len(evidence) < 20 {
					evidence = append(evidence, analyze.Evidence{Frame: r.Frame, TS: r.TS, Conn: event.ConnID(i), Stream: id,
						What: "client RST_STREAM(CANCEL)", Filter: analyze.Filter(event.ConnID(i), id)})
				}
			} else {
				x.Status, x.ResponseEnd = 200, at(start+0.3+req+float64(s%4))
			}
			if s%5 == 4 {
				st := at(start + 0.15 + req)
				c.Records.Stalls = append(c.Records.Stalls, http2.Stall{Dir: event.S2C, Stream: id, Start: *st,
					End: at(start + 0.15 + req + 3)})
			}
			c.Records.Exchanges = append(c.Records.Exchanges, x)
		}
		fin := at(start + dur - 0.1)
		c.FIN[event.C2S] = fin
		c.FIN[event.S2C] = at(start + dur)
		c.TCP.LastFrame = frame
		in.Conns = append(in.Conns, c)
		ids = append(ids, event.ConnID(i))
	}
	in.Stats = dissect.Stats{Packets: frame, Bytes: frame * 100}
	res := analyze.Result{Findings: []analyze.Finding{
		{Kind: analyze.KindRSTStorm, Severity: analyze.Critical, Summary: "synthetic storm", Connections: ids,
			Evidence: evidence, Metrics: map[string]any{}, Confidence: analyze.Confidence{Level: "high"}},
		{Kind: analyze.KindReconnectChurn, Severity: analyze.Warning, Summary: "synthetic churn", Connections: ids,
			Evidence: []analyze.Evidence{{Frame: 1, TS: t0, Conn: 0, What: "SYN", Filter: analyze.Filter(0, 0)}},
			Metrics:  map[string]any{}, Confidence: analyze.Confidence{Level: "high"}},
	}}
	return New([]string{"synthetic.pcapng"}, in, res, Redaction{})
}

// htmlLayoutProbe is a script appended to a page in the browser test: it
// opens the first open timelines, waits for them to be drawn, then
// checks every <text> of every drawn SVG (overview and timelines):
// inside its band (lane, Gantt row, axis: the g.band's rect.bandbg)
// and inside the SVG, the SVG inside the window, and no two texts of
// one SVG overlapping. The result goes into <html data-layout>.
func htmlLayoutProbe(open int) string {
	return `<script>
(function () {
  var ds = document.querySelectorAll('details.conn');
  for (var i = 0; i < ds.length && i < ` + fmt.Sprint(open) + `; i++) { ds[i].open = true; }
  setTimeout(function () {
    var res = { svgs: 0, texts: 0, overview: 0, ovNodes: 0, nodes: document.getElementsByTagName('*').length,
      drawn: document.querySelectorAll('details.conn svg.timeline').length, overlaps: [], outside: [] };
    var vw = document.documentElement.clientWidth;
    function r(b) { return [Math.round(b.left), Math.round(b.top), Math.round(b.right), Math.round(b.bottom)].join(','); }
    document.querySelectorAll('svg.timeline').forEach(function (s) {
      res.svgs++;
      if (s.classList.contains('overview')) { res.overview++; res.ovNodes += s.getElementsByTagName('*').length; }
      var sb = s.getBoundingClientRect();
      if (sb.right > vw + 0.5 || sb.left < -0.5) { res.outside.push('svg ' + r(sb) + ' outside the window ' + vw); }
      var boxes = [];
      s.querySelectorAll('text').forEach(function (t) {
        var b = t.getBoundingClientRect();
        if (b.width === 0 || b.height === 0) { return; }
        res.texts++;
        var band = t.closest('g.band');
        var bg = band && band.querySelector('rect.bandbg');
        var bb = bg ? bg.getBoundingClientRect() : sb;
        if (b.left < sb.left - 0.5 || b.right > sb.right + 0.5 || b.top < bb.top - 1 || b.bottom > bb.bottom + 1) {
          res.outside.push(JSON.stringify(t.textContent) + ' ' + r(b) + ' leaves ' + (bg ? 'its band ' + r(bb) : 'the svg') + ' / svg ' + r(sb));
        }
        boxes.push({ b: b, t: t.textContent });
      });
      boxes.sort(function (a, b) { return a.b.left - b.b.left; });
      for (var i = 0; i < boxes.length; i++) {
        for (var j = i + 1; j < boxes.length && boxes[j].b.left < boxes[i].b.right - 0.5; j++) {
          var a = boxes[i].b, c = boxes[j].b;
          if (Math.min(a.bottom, c.bottom) - Math.max(a.top, c.top) > 0.5) {
            res.overlaps.push(JSON.stringify(boxes[i].t) + ' ' + r(a) + ' overlaps ' + JSON.stringify(boxes[j].t) + ' ' + r(c));
          }
        }
      }
    });
    res.overlaps = res.overlaps.slice(0, 10);
    res.outside = res.outside.slice(0, 10);
    document.documentElement.setAttribute('data-layout', JSON.stringify(res));
  }, 1500);
})();
</script>
`
}

type htmlLayoutResult struct {
	SVGs, Texts, Overview, OvNodes, Nodes, Drawn int
	Overlaps, Outside                            []string
}

// htmlRunLayout renders page with the probe at a window width and returns
// what the probe found.
func htmlRunLayout(t *testing.T, bin, dir, name string, page []byte, open, width int) htmlLayoutResult {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.html", name, width))
	page = bytes.Replace(page, []byte("</body>"), []byte(htmlLayoutProbe(open)+"</body>"), 1)
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	dom, console := runChromium(t, bin, path, fmt.Sprintf("--window-size=%d,2000", width), "--virtual-time-budget=5000", "--dump-dom")
	for _, line := range console {
		t.Errorf("console: %s", line)
	}
	if m := regexp.MustCompile(`<div id="errors"[^>]*>(.*?)</div>`).FindStringSubmatch(dom); m == nil || m[1] != "" {
		t.Errorf("page reported errors: %v", m)
	}
	m := regexp.MustCompile(`data-layout="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatal("the layout probe did not run")
	}
	var res htmlLayoutResult
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &res); err != nil {
		t.Fatalf("probe: %v: %s", err, m[1])
	}
	return res
}

// TestHTMLLayoutChromium renders captures of 1, 5 (hostile strings), 15
// and 151 connections, synthetic ones of 30 and 300 and one of 1,000
// streams, at 1400 and 900 px, opens up to 30 timelines each, and
// asserts from the DOM that no two labels of a drawing overlap, none
// leaves its lane, row or the view, and the overview is drawn.
func TestHTMLLayoutChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome in PATH (apt-get install -y chromium)")
	}
	dir := t.TempDir()
	cases := []struct {
		name  string
		r     func() *Report
		conns int
	}{
		{"grpc-cancel-storm", func() *Report { return fixtureReport(t, "grpc-cancel-storm.pcapng") }, 1},
		{"h2c-large-slow", func() *Report { return fixtureReport(t, "h2c-large-slow.pcapng") }, 1},
		{"hostile-strings", func() *Report { return fixtureReport(t, "hostile-strings.pcapng") }, 5},
		{"http1-nokeepalive", func() *Report { return fixtureReport(t, "http1-nokeepalive.pcapng") }, 15},
		{"synth-30", func() *Report { return htmlSynthReport(30, 12) }, 30},
		{"http1-small-pool", func() *Report { return fixtureReport(t, "http1-small-pool.pcapng") }, 151},
		{"synth-300", func() *Report { return htmlSynthReport(300, 6) }, 300},
		{"synth-1000-streams", func() *Report { return htmlSynthReport(1, 1000) }, 1},
	}
	for _, c := range cases {
		r := c.r()
		if n := r.Captures[0].Connections; n != c.conns {
			t.Fatalf("%s: %d connections, want %d", c.name, n, c.conns)
		}
		page := renderHTML(t, r)
		for _, width := range []int{1400, 900} {
			t.Run(fmt.Sprintf("%s/%d", c.name, width), func(t *testing.T) {
				res := htmlRunLayout(t, bin, dir, c.name, page, 30, width)
				if res.Overview != 1 {
					t.Errorf("%d overviews drawn, want 1", res.Overview)
				}
				if want := min(30, c.conns); res.Drawn != want {
					t.Errorf("%d timelines drawn, want %d", res.Drawn, want)
				}
				if res.Texts < 10*res.SVGs {
					t.Errorf("only %d labels in %d drawings", res.Texts, res.SVGs)
				}
				for _, o := range res.Overlaps {
					t.Errorf("overlap: %s", o)
				}
				for _, o := range res.Outside {
					t.Errorf("outside: %s", o)
				}
				t.Logf("%d drawings, %d labels, %d overview nodes, %d nodes", res.SVGs, res.Texts, res.OvNodes, res.Nodes)
			})
		}
	}
}

// TestHTMLOverviewLarge: 20,000 connections give a bounded overview (at
// most maxOverviewPools+1 pools of at most maxOverviewBuckets buckets,
// a few hundred SVG nodes), a page of a few megabytes with at most
// maxHTMLConns connections listed, and every connection counted.
func TestHTMLOverviewLarge(t *testing.T) {
	const n = 20000
	r := htmlSynthReport(n, 2)
	page := renderHTML(t, r)
	if len(page) > 8<<20 {
		t.Errorf("page of %d bytes for %d connections, want at most 8 MiB", len(page), n)
	}
	d := dataBlock(t, page)
	ov := d.Overview
	if ov == nil {
		t.Fatal("no overview")
	}
	if ov.Conns != n || len(ov.Pools) != maxOverviewPools+1 || ov.PoolsFolded != 36-maxOverviewPools {
		t.Errorf("overview: %d conns, %d pools (%d folded), want %d, %d (%d)", ov.Conns, len(ov.Pools), ov.PoolsFolded,
			n, maxOverviewPools+1, 36-maxOverviewPools)
	}
	if ov.All == nil || ov.All.Conns != n {
		t.Errorf("overview: no sum of all pools, or not of every connection: %+v", ov.All)
	}
	opened := 0
	for _, p := range ov.Pools {
		for _, lane := range [][]int{p.Opened, p.Closed, p.Open, p.Resets, p.Failed} {
			if len(lane) != 0 && len(lane) != ov.Buckets {
				t.Errorf("pool %s: a lane of %d values, want %d", p.Name, len(lane), ov.Buckets)
			}
		}
		for _, v := range p.Opened {
			opened += v
		}
	}
	if opened != n || ov.Buckets > maxOverviewBuckets {
		t.Errorf("%d opened in %d buckets, want %d in at most %d", opened, ov.Buckets, n, maxOverviewBuckets)
	}
	if len(d.Conns) != maxHTMLConns || strings.Count(string(page), `<details class="conn"`) != maxHTMLConns {
		t.Errorf("%d connections embedded, want %d", len(d.Conns), maxHTMLConns)
	}
	if !strings.Contains(string(page), fmt.Sprintf("%d more connections are not listed", n-maxHTMLConns)) {
		t.Error("the page does not say how many connections it does not list")
	}

	bin := chromium()
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome in PATH (apt-get install -y chromium)")
	}
	res := htmlRunLayout(t, bin, t.TempDir(), "large", page, 1, 1400)
	if res.Overview != 1 || res.OvNodes == 0 || res.OvNodes > 600 {
		t.Errorf("overview: %d drawn, %d SVG nodes, want 1 of at most 600", res.Overview, res.OvNodes)
	}
	for _, o := range append(res.Overlaps, res.Outside...) {
		t.Errorf("layout: %s", o)
	}
	t.Logf("%d bytes, %d DOM nodes, %d overview nodes", len(page), res.Nodes, res.OvNodes)
}

// TestHTMLOverviewChromium: in http1-idle-timeout the overview shows
// one pool whose evidence marks carry each connection's severity (the
// two connections that lost a request critical, the two closed idle
// warning); clicking a mark opens and draws its connection, and the
// pointer over a lane reads out its bucket.
func TestHTMLOverviewChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome in PATH (apt-get install -y chromium)")
	}
	page := renderHTML(t, fixtureReport(t, "http1-idle-timeout.pcapng"))
	probe := `<script>
(function () {
  var res = {};
  var marks = document.querySelectorAll('#ov a.ovmark');
  res.marks = marks.length;
  res.sevs = Array.prototype.map.call(marks, function (a) { return a.getAttribute('class'); }).join(' ');
  var crit = document.querySelector('#ov a.ovmark.sev-critical');
  res.href = crit ? crit.getAttribute('href') : '';
  var conn = res.href.replace(/^#c(\d+)-f\d+$/, '$1');
  res.openBefore = !!document.getElementById('conn-' + conn).open;
  if (crit) { crit.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true })); }
  var s = document.querySelector('#ov svg');
  var b = s.getBoundingClientRect();
  s.dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: b.left + b.width / 2, clientY: b.top + b.height / 2 }));
  setTimeout(function () {
    var d = document.getElementById('conn-' + conn);
    res.openAfter = !!d.open;
    res.drawn = !!d.querySelector('svg.timeline');
    res.hash = location.hash;
    res.highlighted = !!d.querySelector('svg .hl');
    res.readout = document.querySelector('#ov .ovread').textContent;
    document.documentElement.setAttribute('data-ov', JSON.stringify(res));
  }, 500);
})();
</script></body>`
	path := filepath.Join(t.TempDir(), "ov.html")
	if err := os.WriteFile(path, bytes.Replace(page, []byte("</body>"), []byte(probe), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	dom, console := runChromium(t, bin, path, "--window-size=1400,2000", "--virtual-time-budget=3000", "--dump-dom")
	for _, line := range console {
		t.Errorf("console: %s", line)
	}
	m := regexp.MustCompile(`data-ov="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatal("the probe did not run")
	}
	var got struct {
		Marks                                     int
		Sevs, Href, Hash, Readout                 string
		OpenBefore, OpenAfter, Drawn, Highlighted bool
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &got); err != nil {
		t.Fatalf("probe: %v: %s", err, m[1])
	}
	if got.Marks == 0 || !strings.Contains(got.Sevs, "sev-critical") || !strings.Contains(got.Sevs, "sev-warning") {
		t.Errorf("overview marks %d (%s), want critical and warning ones", got.Marks, got.Sevs)
	}
	if got.Href == "" || got.OpenBefore || !got.OpenAfter || !got.Drawn || !got.Highlighted || got.Hash != got.Href {
		t.Errorf("clicking %q: open before %v, after %v, drawn %v, highlighted %v, hash %q", got.Href,
			got.OpenBefore, got.OpenAfter, got.Drawn, got.Highlighted, got.Hash)
	}
	if !strings.Contains(got.Readout, "opened") || !strings.Contains(got.Readout, "127.0.0.1") {
		t.Errorf("readout %q", got.Readout)
	}
}

// TestHTMLOverviewDeterministic renders reports of many pools (folded
// into "other") twice: identical bytes.
func TestHTMLOverviewDeterministic(t *testing.T) {
	for _, r := range []func() *Report{
		func() *Report { return htmlSynthReport(400, 3) },
		func() *Report { return fixtureReport(t, "hostile-strings.pcapng") },
	} {
		a, b := renderHTML(t, r()), renderHTML(t, r())
		if !bytes.Equal(a, b) {
			t.Fatal("two renderings differ")
		}
		if d := dataBlock(t, a); d.Overview == nil {
			t.Fatal("no overview")
		}
	}
}

// TestHTMLPoolsBounded checks that past maxHTMLPools pools the page lists
// the busiest by connections (ties in the table's order), in the table's
// order, and says how many it leaves to --json.
func TestHTMLPoolsBounded(t *testing.T) {
	const n = maxHTMLPools + 500
	var rows []analyze.PoolRow
	for i := range n {
		conns := 1
		if i%7 == 0 {
			conns = 3 // the busy ones, spread through the table
		}
		rows = append(rows, analyze.PoolRow{Client: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), Server: "10.9.9.9:80", Connections: conns})
	}
	r := New([]string{"x.pcapng"}, &analyze.Input{}, analyze.Result{Tables: analyze.Tables{Pools: rows}}, Redaction{})
	p, err := newHTMLPage(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Pools) != maxHTMLPools || p.PoolsOmitted != 500 {
		t.Fatalf("%d pools listed, %d omitted; want %d and 500", len(p.Pools), p.PoolsOmitted, maxHTMLPools)
	}
	busy, prev := 0, -1
	for _, row := range p.Pools {
		if row.Connections == 3 {
			busy++
		}
		i := slices.IndexFunc(rows, func(r analyze.PoolRow) bool { return r.Client == row.Client })
		if i <= prev {
			t.Fatalf("pool %s listed out of the table's order", row.Client)
		}
		prev = i
	}
	if want := (n + 6) / 7; busy != want {
		t.Errorf("%d busy pools listed, want all %d", busy, want)
	}
	page := string(renderHTML(t, r))
	if !strings.Contains(page, "The 2000 busiest pools by connections; 500 other pools with fewer in <code>--json</code>") {
		t.Error("the page does not say how many pools it leaves out")
	}
}
