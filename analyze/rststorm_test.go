package analyze

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// Helpers shared by the detector tests (dt: detector test).

var dtT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// dtRef is frame at t0+at.
func dtRef(frame uint64, at time.Duration) event.Ref {
	return event.Ref{Frame: frame, TS: dtT0.Add(at)}
}

func dtRefp(frame uint64, at time.Duration) *event.Ref { r := dtRef(frame, at); return &r }

// dtConn returns a connection from client to server, handshaken (SYN at
// frame first), lasting from first to last.
func dtConn(id event.ConnID, client, server string, first uint64, from, to time.Duration) *Conn {
	ws := 7
	rtt := 1.0
	tc := &tcp.Conn{ID: id, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server),
		FirstFrame: first, LastFrame: first + 1000, FirstTS: dtT0.Add(from), LastTS: dtT0.Add(to),
		SYNs: 1, SYNACKs: 1, HandshakeRTTMS: &rtt, WindowScale: tcp.WindowScale{C2S: &ws, S2C: &ws},
		Packets: event.Pair{C2S: 10, S2C: 10}, Bytes: event.Pair{C2S: 100, S2C: 100}}
	return &Conn{TCP: tc, SYNs: []event.Ref{dtRef(first, from)}, SYNACKs: []event.Ref{dtRef(first+1, from+time.Millisecond)}}
}

// dtRun runs detect over conns and normalizes the findings.
func dtRun(detect func(*Input) []Finding, conns ...*Conn) []Finding {
	fs := detect(&Input{Conns: conns})
	for i := range fs {
		fs[i].normalize()
	}
	return fs
}

// dtHasFrame reports whether f has evidence on frame.
func dtHasFrame(f Finding, frame uint64) bool {
	for _, e := range f.Evidence {
		if e.Frame == frame {
			return true
		}
	}
	return false
}

// dtMetric returns f's metric as a float64.
func dtMetric(t *testing.T, f Finding, name string) float64 {
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

// dtCorpus returns the path of a shared-corpus capture, skipping the test
// when the corpus is absent.
func dtCorpus(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("H2SCOPE_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "corpus")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared corpus capture %s not found (set H2SCOPE_CORPUS): skipping", p)
	}
	return p
}

// dtOnly returns the findings of kind.
func dtOnly(res Result, kind string) []Finding {
	var out []Finding
	for _, f := range res.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

// resetConn adds n resets sent by dir with code, every gap from start,
// each after its request HEADERS by delay (no request when delay < 0);
// frames from frame, two per stream.
func resetConn(c *Conn, dir event.Dir, code string, n int, start, gap time.Duration, frame uint64, stream uint32, delay time.Duration) {
	for i := range n {
		at := start + time.Duration(i)*gap
		s := stream + uint32(2*i)
		f := frame + uint64(2*i)
		if delay >= 0 {
			c.Exchanges = append(c.Exchanges, Exchange{Proto: event.ProtoHTTP2, Stream: s, Request: dtRefp(f, at-delay)})
		}
		c.Resets = append(c.Resets, Reset{Dir: dir, Stream: s, Code: code, Ref: dtRef(f+1, at)})
	}
}

func TestRSTStormSynthetic(t *testing.T) {
	cfg := defaultRSTStorm()
	detect := func(in *Input) []Finding { return detectRSTStorm(in, cfg) }
	tests := []struct {
		name      string
		conns     func() []*Conn
		want      int
		sev       Severity
		summary   string
		frame     uint64 // evidence that must be there
		metrics   map[string]float64
		remedyHas string
	}{
		{
			name: "client cancels",
			conns: func() []*Conn {
				c := dtConn(3, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 10*time.Second)
				resetConn(c, event.C2S, "CANCEL", 30, time.Second, 20*time.Millisecond, 100, 1, 200*time.Millisecond)
				return []*Conn{c}
			},
			want: 1, sev: Warning, summary: "Client cancelled 30 streams in 1 s on connection 3 (CANCEL), 3.0/s over the connection",
			frame:     101,
			metrics:   map[string]float64{"resets": 30, "peak_resets": 30, "rapid_resets": 0, "client_resets": 30, "resets_CANCEL": 30, "median_reset_delay_ms": 200},
			remedyHas: "context.WithTimeout",
		},
		{
			name: "rapid reset",
			conns: func() []*Conn {
				c := dtConn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 2*time.Second)
				resetConn(c, event.C2S, "CANCEL", 40, 100*time.Millisecond, time.Millisecond, 10, 1, time.Millisecond)
				return []*Conn{c}
			},
			want: 1, sev: Critical, summary: "Rapid reset (CVE-2023-44487 pattern): client reset 40 streams within 10 ms",
			frame:     10, // the first HEADERS
			metrics:   map[string]float64{"rapid_resets": 40, "resets": 40},
			remedyHas: "CVE-2023-44487",
		},
		{
			name: "server refuses, gRPC",
			conns: func() []*Conn {
				c := dtConn(2, "10.0.0.1:40000", "10.0.0.2:50051", 1, 0, time.Second)
				c.App = &dissect.App{Calls: []grpc.Call{{Stream: 1}}}
				resetConn(c, event.S2C, "REFUSED_STREAM", 15, 0, 10*time.Millisecond, 10, 1, -1)
				return []*Conn{c}
			},
			want: 1, sev: Warning, summary: "Server refused 15 streams", frame: 11,
			metrics:   map[string]float64{"server_resets": 15, "grpc_UNAVAILABLE": 15},
			remedyHas: "MaxConcurrentStreams",
		},
		{
			name: "very high rate is critical",
			conns: func() []*Conn {
				c := dtConn(2, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, time.Second)
				resetConn(c, event.S2C, "PROTOCOL_ERROR", 150, 0, time.Millisecond, 10, 1, -1)
				return []*Conn{c}
			},
			want: 1, sev: Critical, summary: "Server reset 150 streams", frame: 11,
			metrics: map[string]float64{"peak_resets": 150},
		},
		{
			name: "NO_ERROR resets are benign",
			conns: func() []*Conn {
				c := dtConn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, time.Second)
				resetConn(c, event.S2C, "NO_ERROR", 50, 0, time.Millisecond, 10, 1, 100*time.Millisecond)
				return []*Conn{c}
			},
		},
		{
			name: "a few cancels",
			conns: func() []*Conn {
				c := dtConn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, time.Second)
				resetConn(c, event.C2S, "CANCEL", 9, 0, time.Millisecond, 10, 1, 100*time.Millisecond)
				return []*Conn{c}
			},
		},
		{
			name: "spread out over time",
			conns: func() []*Conn {
				c := dtConn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, time.Minute)
				resetConn(c, event.C2S, "CANCEL", 30, 0, 2*time.Second, 10, 1, 100*time.Millisecond)
				return []*Conn{c}
			},
		},
		{
			name: "per server across connections",
			conns: func() []*Conn {
				var cs []*Conn
				for i := range 3 {
					c := dtConn(event.ConnID(i), "10.0.0.1:4000"+string(rune('0'+i)), "10.0.0.2:443", uint64(1000*i+1), 0, 5*time.Second)
					resetConn(c, event.C2S, "CANCEL", 4, time.Second+time.Duration(i)*time.Millisecond, 50*time.Millisecond, uint64(1000*i+10), 1, 100*time.Millisecond)
					cs = append(cs, c)
				}
				return cs
			},
			want: 1, sev: Warning, summary: "Client cancelled 12 streams in 1 s to server 10.0.0.2:443 across 3 connections",
			frame: 2011, metrics: map[string]float64{"connections": 3, "resets": 12},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := dtRun(detect, tt.conns()...)
			if len(fs) != tt.want {
				t.Fatalf("got %d findings, want %d: %+v", len(fs), tt.want, fs)
			}
			if tt.want == 0 {
				return
			}
			f := fs[0]
			if f.Kind != KindRSTStorm || f.Severity != tt.sev {
				t.Errorf("kind %s severity %s, want rst_storm %s", f.Kind, f.Severity, tt.sev)
			}
			if !strings.Contains(f.Summary, tt.summary) {
				t.Errorf("summary %q does not contain %q", f.Summary, tt.summary)
			}
			if !dtHasFrame(f, tt.frame) {
				t.Errorf("no evidence on frame %d: %+v", tt.frame, f.Evidence)
			}
			for k, v := range tt.metrics {
				if got := dtMetric(t, f, k); got != v {
					t.Errorf("metric %s = %v, want %v", k, got, v)
				}
			}
			if !strings.Contains(f.Remedy, tt.remedyHas) {
				t.Errorf("remedy %q does not name %q", f.Remedy, tt.remedyHas)
			}
			if f.Evidence[0].Filter == "" || len(f.Streams) == 0 {
				t.Errorf("evidence filter or streams missing: %+v", f)
			}
		})
	}
}

// The generated captures: a few gRPC cancellations are no storm.
func TestRSTStormCaptures(t *testing.T) {
	for _, name := range []string{"grpc-unary-h2c", "grpc-streaming-h2c", "http1-keepalive", "h2c-large-slow", "tcp-impaired"} {
		res, _ := analyzeCapture(t, name)
		if fs := dtOnly(res, KindRSTStorm); len(fs) > 0 {
			t.Errorf("%s: unexpected rst_storm %+v", name, fs)
		}
	}
}

// dns-over-http2-limit has 8 STREAM_CLOSED resets in one frame and one
// NO_ERROR: below a storm.
func TestRSTStormCorpus(t *testing.T) {
	p := dtCorpus(t, "sv/dns-over-http2-limit/input.pcap")
	res := dtAnalyzeFile(t, p, "")
	if fs := dtOnly(res, KindRSTStorm); len(fs) > 0 {
		t.Errorf("unexpected rst_storm: %+v", fs)
	}
}

// dtAnalyzeFile analyses a capture outside testdata/pcaps, with a key log
// when keys is not "".
func dtAnalyzeFile(t *testing.T, path, keys string) Result {
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
