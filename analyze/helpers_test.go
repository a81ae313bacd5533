package analyze

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// Captures.

// pcaps is the directory of the project's generated captures.
const pcaps = "../testdata/pcaps"

// analyzeCapture runs a capture in testdata/pcaps (NAME.pcapng, with
// NAME.keys as its key log when present) through the dissectors and the
// detectors with the default configuration.
func analyzeCapture(t testing.TB, name string) (Result, *Input) {
	t.Helper()
	path := filepath.Join(pcaps, name+".pcapng")
	opts := dissect.Options{Keys: tls.NewKeyLog()}
	if b, err := readIfExists(filepath.Join(pcaps, name+".keys")); err != nil {
		t.Fatal(err)
	} else if b != nil {
		opts.Keys.Add(b, name+".keys")
	}
	res, in, err := Run(context.Background(), []string{path}, opts, DefaultConfig())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return res, in
}

func readIfExists(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// corpus returns the path of a capture (or key log) of the shared
// corpus, $H2SCOPE_CORPUS or else ../../shared/corpus, skipping the test
// when it is absent.
func corpus(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("H2SCOPE_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "corpus")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared corpus file %s not found (set H2SCOPE_CORPUS): skipping", p)
	}
	return p
}

// analyzeFile analyses a capture outside testdata/pcaps with the default
// configuration, with the key log keys when it is not "".
func analyzeFile(t *testing.T, path, keys string) Result {
	t.Helper()
	opts := dissect.Options{Keys: tls.NewKeyLog()}
	if keys != "" {
		b, err := os.ReadFile(keys)
		if err != nil {
			t.Fatal(err)
		}
		opts.Keys.Add(b, keys)
	}
	res, _, err := Run(context.Background(), []string{path}, opts, DefaultConfig())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return res
}

// Findings.

// checkControls checks, in one subtest per capture, that the named
// captures of testdata/pcaps yield no finding of kind at or above sev.
func checkControls(t *testing.T, kind string, sev Severity, names ...string) {
	t.Helper()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			res, _ := analyzeCapture(t, name)
			for _, f := range only(res, kind) {
				if f.Severity >= sev {
					t.Errorf("unexpected %s %+v", f.Kind, f)
				}
			}
		})
	}
}

// only returns the findings of kind.
func only(res Result, kind string) []Finding {
	var out []Finding
	for _, f := range res.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

// findKind returns the first finding of kind, nil when none.
func findKind(fs []Finding, kind string) *Finding {
	for i := range fs {
		if fs[i].Kind == kind {
			return &fs[i]
		}
	}
	return nil
}

// run runs detect over conns and normalizes the findings.
func run(detect func(*Input) []Finding, conns ...*Conn) []Finding {
	fs := detect(&Input{Conns: conns})
	for i := range fs {
		fs[i].finalIDs(nil) // as result does
		fs[i].normalize()
	}
	return fs
}

// hasFrame reports whether f has evidence on frame.
func hasFrame(f Finding, frame uint64) bool {
	for _, e := range f.Evidence {
		if e.Frame == frame {
			return true
		}
	}
	return false
}

// metric returns f's metric as a float64.
func metric(t *testing.T, f Finding, name string) float64 {
	t.Helper()
	switch v := f.Metrics[name].(type) {
	case int:
		return float64(v)
	case uint32:
		return float64(v)
	case int64:
		return float64(v)
	case float64:
		return v
	}
	t.Fatalf("metric %s = %#v (%T), metrics %v", name, f.Metrics[name], f.Metrics[name], f.Metrics)
	return 0
}

// findingWant describes the finding a test expects. Zero fields are not
// checked, but for the remedy, which must never be empty.
type findingWant struct {
	kind      string
	sev       Severity
	summary   string             // a part of the summary
	frames    []uint64           // frames the evidence must include
	metrics   map[string]float64 // metrics and their values
	remedyHas string             // a part of the remedy
	cause     string             // the cause, when set
}

// checkFinding checks f against want.
func checkFinding(t *testing.T, f Finding, want findingWant) {
	t.Helper()
	if want.kind != "" && f.Kind != want.kind || f.Severity != want.sev {
		t.Errorf("kind %s severity %s, want %s %s", f.Kind, f.Severity, want.kind, want.sev)
	}
	if want.cause != "" && f.Cause != want.cause {
		t.Errorf("cause %q, want %q", f.Cause, want.cause)
	}
	if !strings.Contains(f.Summary, want.summary) {
		t.Errorf("summary %q does not contain %q", f.Summary, want.summary)
	}
	for _, fr := range want.frames {
		if !hasFrame(f, fr) {
			t.Errorf("no evidence on frame %d: %+v", fr, f.Evidence)
		}
	}
	for k, v := range want.metrics {
		if got := metric(t, f, k); got != v {
			t.Errorf("metric %s = %v, want %v", k, got, v)
		}
	}
	if f.Remedy == "" {
		t.Error("no remedy")
	} else if !strings.Contains(f.Remedy, want.remedyHas) {
		t.Errorf("remedy %q does not name %q", f.Remedy, want.remedyHas)
	}
}

// checkFindings checks that fs holds no finding when want is nil, else a
// single one of kind that matches *want; it returns that one.
func checkFindings(t *testing.T, fs []Finding, kind string, want *findingWant) Finding {
	t.Helper()
	n := 0
	if want != nil {
		n = 1
	}
	if len(fs) != n {
		t.Fatalf("got %d findings, want %d: %+v", len(fs), n, fs)
	}
	if want == nil {
		return Finding{}
	}
	w := *want
	w.kind = kind
	checkFinding(t, fs[0], w)
	return fs[0]
}

// Synthetic connections.

// t0 is the synthetic captures' start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// ref is frame at t0+at.
func ref(frame uint64, at time.Duration) event.Ref {
	return event.Ref{Frame: frame, TS: t0.Add(at)}
}

// conn returns a connection from client to server, handshaken (SYN at
// frame first, SYN-ACK 1 ms later), lasting from t0+from to t0+to.
func conn(id event.ConnID, client, server string, first uint64, from, to time.Duration) *Conn {
	ws := 7
	rtt := 1.0
	tc := &tcp.Summary{ID: id, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server),
		FirstFrame: first, LastFrame: first + 1000, FirstTS: t0.Add(from), LastTS: t0.Add(to),
		SYNs: 1, SYNACKs: 1, HandshakeRTTMS: &rtt, WindowScale: tcp.WindowScale{C2S: &ws, S2C: &ws},
		Packets: event.Pair{C2S: 10, S2C: 10}, Bytes: event.Pair{C2S: 100, S2C: 100}}
	return &Conn{TCP: tc, SYNs: []event.Ref{ref(first, from)}, SYNACKs: []event.Ref{ref(first+1, from+time.Millisecond)}, Records: &Records{}}
}

// synConn describes a synthetic HTTP/1.1 connection: offsets from t0.
type synConn struct {
	id       event.ConnID
	port     uint16
	start    time.Duration
	life     time.Duration
	reqs     []time.Duration // request times; each answered 1 ms later
	close    tcp.Close
	closeReq string // HTTP/1 CloseRequestedBy
}

// build makes a Conn whose frames are numbered from id*1000: SYN, then
// per request the request and its response, then the FIN (or RST).
func (s synConn) build() *Conn {
	frame := uint64(s.id)*1000 + 1
	next := func(d time.Duration) event.Ref {
		r := ref(frame, s.start+d)
		frame++
		return r
	}
	tc := &tcp.Summary{ID: s.id, Client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.5"), s.port),
		Server: netip.MustParseAddrPort("10.0.0.9:8080"), FirstTS: t0.Add(s.start), LastTS: t0.Add(s.start + s.life),
		Close: s.close, SYNs: 1, SYNACKs: 1, StreamBytes: tcp.Pair{C2S: 100, S2C: 200}}
	ws := 7
	tc.WindowScale = tcp.WindowScale{C2S: &ws, S2C: &ws}
	c := &Conn{TCP: tc, App: &dissect.App{Proto: event.ProtoHTTP1, HTTP1: &http1.Summary{Requests: len(s.reqs), CloseRequestedBy: s.closeReq}}, Records: &Records{}}
	c.SYNs = []event.Ref{next(0)}
	c.SYNACKs = []event.Ref{next(100 * time.Microsecond)}
	for i, at := range s.reqs {
		req := next(at)
		x := Exchange{Proto: event.ProtoHTTP1, Seq: i + 1, Method: "GET", Authority: "api.test", Path: "/x", Request: refp(req), RequestEnd: refp(req)}
		if at < s.life {
			resp := next(at + time.Millisecond)
			x.Status, x.Response, x.ResponseEnd, x.KeepAlive = 200, refp(resp), refp(resp), true
		}
		c.Records.Exchanges = append(c.Records.Exchanges, x)
	}
	end := next(s.life)
	switch s.close {
	case tcp.CloseFINClient:
		c.FIN[event.C2S] = refp(end)
	case tcp.CloseFINServer:
		c.FIN[event.S2C] = refp(end)
	case tcp.CloseRSTServer:
		c.RST[event.S2C] = refp(end)
	case tcp.CloseRSTClient:
		c.RST[event.C2S] = refp(end)
	}
	return c
}

// errCode returns the HTTP/2 error code named name ("CANCEL"); tests
// spell codes by name, as output does.
func errCode(name string) http2.ErrCode {
	for c := range http2.ErrCode(16) {
		if c.String() == name {
			return c
		}
	}
	panic("unknown HTTP/2 error code " + name)
}

// openConn returns the Collector's open Conn of connection id, nil if
// none.
func (k *Collector) openConn(id event.ConnID) *Conn {
	c, _ := k.open.get(id)
	return c
}
