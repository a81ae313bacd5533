package analyze

import (
	"net/netip"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
)

// resetConn adds n resets sent by dir with code, every gap from start,
// each after its request HEADERS by delay (no request when delay < 0);
// frames from frame, two per stream.
func resetConn(c *Conn, dir event.Dir, code string, n int, start, gap time.Duration, frame uint64, stream uint32, delay time.Duration) {
	for i := range n {
		at := start + time.Duration(i)*gap
		s := stream + uint32(2*i)
		f := frame + uint64(2*i)
		if delay >= 0 {
			c.Records.Exchanges = append(c.Records.Exchanges, Exchange{Proto: event.ProtoHTTP2, Stream: s, Request: refp(ref(f, at-delay))})
		}
		c.Records.Resets = append(c.Records.Resets, Reset{Dir: dir, Stream: s, Code: errCode(code), Ref: ref(f+1, at)})
	}
}

func TestRSTStormSynthetic(t *testing.T) {
	cfg := defaultRSTStorm()
	detect := func(in *Input) []Finding { return detectRSTStorm(in, cfg) }
	tests := []struct {
		name  string
		conns func() []*Conn
		want  *findingWant // nil: no finding
	}{
		{
			name: "client cancels",
			conns: func() []*Conn {
				c := conn(3, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 10*time.Second)
				resetConn(c, event.C2S, "CANCEL", 30, time.Second, 20*time.Millisecond, 100, 1, 200*time.Millisecond)
				return []*Conn{c}
			},
			want: &findingWant{sev: Warning, summary: "Client cancelled 30 streams within 1 s on connection 3 (CANCEL), 3.0/s over the connection",
				frames:    []uint64{101},
				metrics:   map[string]float64{"resets": 30, "peak_resets": 30, "rapid_resets": 0, "client_resets": 30, "resets_CANCEL": 30, "median_reset_delay_ms": 200},
				remedyHas: "context.WithTimeout", cause: CauseClientCancel},
		},
		{
			name: "rapid reset",
			conns: func() []*Conn {
				c := conn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 2*time.Second)
				resetConn(c, event.C2S, "CANCEL", 40, 100*time.Millisecond, time.Millisecond, 10, 1, time.Millisecond)
				return []*Conn{c}
			},
			want: &findingWant{sev: Critical, summary: "Rapid reset (CVE-2023-44487 pattern): client reset 40 streams within 10 ms",
				frames:    []uint64{10}, // the first HEADERS
				metrics:   map[string]float64{"rapid_resets": 40, "resets": 40, "resets_before_response": 40},
				remedyHas: "CVE-2023-44487", cause: CauseRapidReset},
		},
		{
			// The same timing, but each reset follows the server's
			// response HEADERS: cancellations (a fast server on a short
			// path), not the attack.
			name: "fast cancels after the response started",
			conns: func() []*Conn {
				c := conn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 2*time.Second)
				resetConn(c, event.C2S, "CANCEL", 40, 100*time.Millisecond, time.Millisecond, 10, 1, time.Millisecond)
				for i := range c.Records.Exchanges {
					x := &c.Records.Exchanges[i]
					r := *x.Request // the response HEADERS: any frame before the reset's
					r.TS = r.TS.Add(time.Millisecond / 2)
					x.Response = &r
				}
				return []*Conn{c}
			},
			want: &findingWant{sev: Warning, summary: "Client cancelled 40 streams within 1 s on connection 1 (CANCEL)",
				metrics:   map[string]float64{"rapid_resets": 0, "resets_after_response": 40, "resets_before_response": 0},
				remedyHas: "context.WithTimeout", cause: CauseClientCancel},
		},
		{
			name: "server refuses, gRPC",
			conns: func() []*Conn {
				c := conn(2, "10.0.0.1:40000", "10.0.0.2:50051", 1, 0, time.Second)
				c.App = &dissect.App{}
				c.Records.Calls = []grpc.Call{{Stream: 1}}
				resetConn(c, event.S2C, "REFUSED_STREAM", 15, 0, 10*time.Millisecond, 10, 1, -1)
				return []*Conn{c}
			},
			want: &findingWant{sev: Warning, summary: "Server refused 15 streams", frames: []uint64{11},
				metrics:   map[string]float64{"server_resets": 15, "grpc_UNAVAILABLE": 15},
				remedyHas: "MaxConcurrentStreams", cause: CauseRefusedStream},
		},
		{
			name: "very high rate is critical",
			conns: func() []*Conn {
				c := conn(2, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, time.Second)
				resetConn(c, event.S2C, "PROTOCOL_ERROR", 150, 0, time.Millisecond, 10, 1, -1)
				return []*Conn{c}
			},
			want: &findingWant{sev: Critical, summary: "Server reset 150 streams", frames: []uint64{11},
				metrics: map[string]float64{"peak_resets": 150}, cause: CauseServerReset},
		},
		{
			name: "NO_ERROR resets are benign",
			conns: func() []*Conn {
				c := conn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, time.Second)
				resetConn(c, event.S2C, "NO_ERROR", 50, 0, time.Millisecond, 10, 1, 100*time.Millisecond)
				return []*Conn{c}
			},
		},
		{
			name: "a few cancels",
			conns: func() []*Conn {
				c := conn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, time.Second)
				resetConn(c, event.C2S, "CANCEL", 9, 0, time.Millisecond, 10, 1, 100*time.Millisecond)
				return []*Conn{c}
			},
		},
		{
			name: "spread out over time",
			conns: func() []*Conn {
				c := conn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, time.Minute)
				resetConn(c, event.C2S, "CANCEL", 30, 0, 2*time.Second, 10, 1, 100*time.Millisecond)
				return []*Conn{c}
			},
		},
		{
			name: "per server across connections",
			conns: func() []*Conn {
				var cs []*Conn
				for i := range 3 {
					c := conn(event.ConnID(i), "10.0.0.1:4000"+string(rune('0'+i)), "10.0.0.2:443", uint64(1000*i+1), 0, 5*time.Second)
					resetConn(c, event.C2S, "CANCEL", 4, time.Second+time.Duration(i)*time.Millisecond, 50*time.Millisecond, uint64(1000*i+10), 1, 100*time.Millisecond)
					cs = append(cs, c)
				}
				return cs
			},
			want: &findingWant{sev: Warning, summary: "Client cancelled 12 streams within 1 s to server 10.0.0.2:443 across 3 connections",
				frames: []uint64{2011}, metrics: map[string]float64{"connections": 3, "resets": 12}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := checkFindings(t, run(detect, tt.conns()...), KindRSTStorm, tt.want)
			if tt.want != nil && (f.Evidence[0].Filter == "" || len(f.Streams) == 0) {
				t.Errorf("evidence filter or streams missing: %+v", f)
			}
		})
	}
}

// The generated captures: a few gRPC cancellations are no storm.
func TestRSTStormCaptures(t *testing.T) {
	checkControls(t, KindRSTStorm, Info, "grpc-unary-h2c", "grpc-streaming-h2c", "http1-keepalive", "h2c-large-slow", "tcp-impaired")
}

// dns-over-http2-limit has 8 STREAM_CLOSED resets in one frame and one
// NO_ERROR: below a storm.
func TestRSTStormCorpus(t *testing.T) {
	res := analyzeFile(t, corpus(t, "sv/dns-over-http2-limit/input.pcap"), "")
	if fs := only(res, KindRSTStorm); len(fs) > 0 {
		t.Errorf("unexpected rst_storm: %+v", fs)
	}
}

// TestRSTStormServerBounded: a server whose connections each reset a
// stream or two, none a storm alone, keeps a bounded number of them
// (the lowest ids), however many there are.
func TestRSTStormServerBounded(t *testing.T) {
	d := &rstStorm{cfg: defaultRSTStorm(), servers: map[netip.AddrPort]*stormServer{}}
	n := 3*maxStormConns + 17
	for i := range n {
		c := conn(event.ConnID(n-i), "10.0.0.1:40000", "10.0.0.2:443", uint64(10*(n-i)), 0, time.Second)
		resetConn(c, event.C2S, "CANCEL", 1, time.Duration(n-i)*time.Second, 0, uint64(10*(n-i)+2), 1, 100*time.Millisecond)
		c.summarize()
		d.observe(c)
		d.final(c)
	}
	srv := d.servers[netip.MustParseAddrPort("10.0.0.2:443")]
	if len(srv.conns) >= 2*maxStormConns {
		t.Fatalf("%d connections kept", len(srv.conns))
	}
	srv.trim()
	if len(srv.conns) != maxStormConns || srv.over != n-maxStormConns || srv.conns[0].c.ID() != 1 {
		t.Errorf("kept %d (first %d), over %d; want %d from 1, over %d", len(srv.conns), srv.conns[0].c.ID(), srv.over, maxStormConns, n-maxStormConns)
	}
	if len(d.unfinished) != 0 {
		t.Errorf("%d connections left unfinished", len(d.unfinished))
	}
}
