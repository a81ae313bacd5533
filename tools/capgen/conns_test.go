package main

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/report"
)

// connsCount is what h2scope's tracker and dissectors found in a -conns
// capture.
type connsCount struct {
	conns, syns, synacks int
	states               map[string]int
	requests, responses  int
	sources              map[netip.Addr]bool // of S0 connections
	frames               uint64
	faults               int
}

// countConns runs h2scope's dissection over file.
func countConns(t *testing.T, file string) connsCount {
	t.Helper()
	c := connsCount{states: map[string]int{}, sources: map[netip.Addr]bool{}}
	st, err := dissect.Run(context.Background(), []string{file}, dissect.Options{
		Dissect: true,
		OnConn: func(tc *tcp.Conn, app *dissect.App) {
			s := &tc.Summary
			c.conns++
			c.syns += s.SYNs
			c.synacks += s.SYNACKs
			c.states[s.ConnState]++
			if s.ConnState == "S0" {
				c.sources[s.Client.Addr()] = true
			}
			if app != nil && app.HTTP1 != nil {
				c.requests += app.HTTP1.Requests
				c.responses += app.HTTP1.Responses
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.frames, c.faults = st.Packets, len(st.Faults)
	return c
}

func genConnsFile(t *testing.T, spec connsSpec) (string, connsStats) {
	t.Helper()
	path := filepath.Join(t.TempDir(), spec.kind+".pcap")
	st, err := writeConns(path, spec)
	if err != nil {
		t.Fatal(err)
	}
	return path, st
}

// TestConnsShort checks a short-connections capture of 1,000 connections
// against h2scope: every connection complete (SF), one SYN and one
// SYN-ACK each, one request answered each; and against tshark when it is
// installed.
func TestConnsShort(t *testing.T) {
	const n = 1000
	path, st := genConnsFile(t, connsSpec{kind: "short", n: n, seed: 7})
	if st.Conns != n || st.SYNs != n || st.Requests != n || st.Frames != 7*n || st.Flood != 0 {
		t.Fatalf("generator says %+v, want %d connections of 7 frames, one request each", st, n)
	}
	got := countConns(t, path)
	want := connsCount{conns: n, syns: n, synacks: n, states: map[string]int{"SF": n},
		requests: n, responses: n, frames: uint64(st.Frames)}
	if got.conns != want.conns || got.syns != want.syns || got.synacks != want.synacks || got.requests != want.requests ||
		got.responses != want.responses || got.frames != want.frames || got.faults != 0 || len(got.states) != 1 || got.states["SF"] != n {
		t.Errorf("h2scope found %+v, want %+v", got, want)
	}
	if st.Status[200]+st.Status[404]+st.Status[503] != n || st.Status[404] == 0 || st.Status[503] == 0 {
		t.Errorf("statuses %v: want 200s, some 404s and 503s summing to %d", st.Status, n)
	}
	checkTshark(t, path, st)
}

// TestConnsSYNFlood checks a SYN flood of 1,000 SYNs: one unanswered
// connection (S0) per SYN, each from its own source address, and the
// short connections beside it complete.
func TestConnsSYNFlood(t *testing.T) {
	const n = 1000
	path, st := genConnsFile(t, connsSpec{kind: "syn-flood", n: n, seed: 7})
	short := st.Conns - st.Flood
	if st.Flood != n || st.SYNs != st.Conns || short == 0 || st.Requests != short || st.Frames != n+7*short {
		t.Fatalf("generator says %+v, want %d flood SYNs and some short connections", st, n)
	}
	got := countConns(t, path)
	if got.conns != st.Conns || got.syns != st.SYNs || got.synacks != short || got.states["S0"] != n ||
		got.states["SF"] != short || len(got.states) != 2 || got.requests != short || got.responses != short ||
		got.frames != uint64(st.Frames) || got.faults != 0 {
		t.Errorf("h2scope found %+v, want %d connections: %d S0, %d SF", got, st.Conns, n, short)
	}
	if len(got.sources) != n {
		t.Errorf("%d distinct flood sources, want %d", len(got.sources), n)
	}
	checkTshark(t, path, st)
}

// TestConnsDeterministic checks that a seed gives the same bytes and
// another seed other bytes.
func TestConnsDeterministic(t *testing.T) {
	for _, kind := range []string{"short", "syn-flood"} {
		a, _ := genConnsFile(t, connsSpec{kind: kind, n: 300, seed: 3})
		b, _ := genConnsFile(t, connsSpec{kind: kind, n: 300, seed: 3})
		c, _ := genConnsFile(t, connsSpec{kind: kind, n: 300, seed: 4})
		ab, bb, cb := readAll(t, a), readAll(t, b), readAll(t, c)
		if !bytes.Equal(ab, bb) {
			t.Errorf("%s: seed 3 twice gave different captures", kind)
		}
		if bytes.Equal(ab, cb) {
			t.Errorf("%s: seeds 3 and 4 gave the same capture", kind)
		}
	}
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkTshark compares st with what tshark counts in path: TCP streams,
// SYNs without ACK, HTTP requests and responses; and checks that tshark
// finds every checksum right and no TCP analysis flag (no
// retransmission, no out-of-order segment, no lost segment: the
// timing and sequence numbers are consistent). It skips without tshark.
func checkTshark(t *testing.T, path string, st connsStats) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not found: not compared")
		return
	}
	out, err := exec.Command("tshark", "-n", "-r", path,
		"-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-T", "fields", "-E", "separator=|",
		"-e", "tcp.stream", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e", "http.request", "-e", "http.response",
		"-e", "tcp.analysis.flags", "-e", "tcp.checksum.status", "-e", "ip.checksum.status").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	streams := map[string]bool{}
	var frames, syns, reqs, resps, flagged, badSum int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 8 {
			t.Fatalf("tshark line %q", line)
		}
		frames++
		streams[f[0]] = true
		if f[1] == "1" && f[2] == "0" {
			syns++
		}
		if f[3] != "" {
			reqs++
		}
		if f[4] != "" {
			resps++
		}
		if f[5] != "" {
			flagged++
		}
		if f[6] != "1" || f[7] != "1" { // 1: good (0 bad, 2 unverified)
			badSum++
		}
	}
	if frames != st.Frames || len(streams) != st.Conns || syns != st.SYNs || reqs != st.Requests || resps != st.Requests {
		t.Errorf("tshark: %d frames, %d streams, %d SYNs, %d requests, %d responses; generator: %d frames, %d connections, %d SYNs, %d requests",
			frames, len(streams), syns, reqs, resps, st.Frames, st.Conns, st.SYNs, st.Requests)
	}
	if flagged != 0 || badSum != 0 {
		t.Errorf("tshark: %d frames with TCP analysis flags, %d with a checksum not good; want none", flagged, badSum)
	}
}

// TestParseCount checks the -n syntax.
func TestParseCount(t *testing.T) {
	for in, want := range map[string]int{"1000": 1000, "250k": 250_000, "1M": 1_000_000, "2K": 2000} {
		if got, err := parseCount(in); err != nil || got != want {
			t.Errorf("parseCount(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "0", "-3", "1m", "1.5M", "x"} {
		if _, err := parseCount(in); err == nil {
			t.Errorf("parseCount(%q): no error", in)
		}
	}
}

// TestConnsReportBounded checks that the default report does not grow
// with the connections of a capture: on short connections and on a SYN
// flood (from 10,000 sources, past which pools fold into "*"), the JSON
// report of 4N connections is not much larger than that of N (it would
// be four times as large if it held a record, a pool row or a timeline
// per connection), and the HTML page stays under 10 MB.
func TestConnsReportBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("analyses 100,000 connections")
	}
	const n = 10_000
	for _, kind := range []string{"short", "syn-flood"} {
		var sizes [2][2]int64 // JSON, HTML; of n and 4n connections
		for i, count := range []int{n, 4 * n} {
			path, _ := genConnsFile(t, connsSpec{kind: kind, n: count, seed: 5})
			b := report.NewBuilder(report.Redaction{})
			res, in, err := analyze.Stream(context.Background(), []string{path}, dissect.Options{}, analyze.DefaultConfig(), b)
			if err != nil {
				t.Fatal(err)
			}
			rep := b.Report([]string{path}, in, res)
			for j, write := range []func(io.Writer) error{rep.WriteJSON, rep.WriteHTML} {
				w := &countWriter{w: io.Discard}
				if err := write(w); err != nil {
					t.Fatal(err)
				}
				sizes[i][j] = w.n
			}
			b.Close()
		}
		t.Logf("%s: JSON %d and %d bytes, HTML %d and %d bytes for %d and %d connections", kind, sizes[0][0], sizes[1][0], sizes[0][1], sizes[1][1], n, 4*n)
		for j, what := range []string{"JSON report", "HTML page"} {
			if small, large := sizes[0][j], sizes[1][j]; large > small*3/2+256<<10 {
				t.Errorf("%s: the %s grows with the connections: %d bytes for %d, %d for %d", kind, what, small, n, large, 4*n)
			}
		}
		if sizes[1][1] > 10<<20 {
			t.Errorf("%s: HTML page of %d bytes, over 10 MB", kind, sizes[1][1])
		}
	}
}
