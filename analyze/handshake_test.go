package analyze

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tls"
)

// hsConns returns one connection per TCP handshake time (ms); SYN at
// frame 100*i+1, SYN-ACK at 100*i+2.
func hsConns(rtts ...float64) []*Conn {
	var cs []*Conn
	for i, v := range rtts {
		c := conn(event.ConnID(i), fmt.Sprintf("10.0.0.1:%d", 40000+i), "10.0.0.2:443", uint64(100*i+1), time.Duration(i)*time.Second, time.Duration(i+1)*time.Second)
		v := v
		c.TCP.HandshakeRTTMS = &v
		cs = append(cs, c)
	}
	return cs
}

// withTLS adds a TLS handshake of ms milliseconds (ClientHello at frame
// 100*i+4, ServerHello at 100*i+6).
func withTLS(cs []*Conn, hs ...float64) []*Conn {
	for i, v := range hs {
		c := cs[i]
		v := v
		ch := ref(uint64(100*i+4), c.TCP.FirstTS.Sub(t0)+2*time.Millisecond)
		sh := ref(uint64(100*i+6), ch.TS.Sub(t0)+time.Duration(v/2*float64(time.Millisecond)))
		half := v / 2
		c.App = &dissect.App{TLS: &tls.Summary{HandshakeMS: &v, Timing: tls.Timing{ClientHello: &ch, ServerHello: &sh},
			Durations: tls.Durations{ClientHelloToServerHello: &half}}}
	}
	return cs
}

func TestHandshakeLatencySynthetic(t *testing.T) {
	cfg := defaultHandshakeLatency()
	cfg.CriticalLatency = time.Second // --handshake-critical 1s: the default is never
	detect := func(in *Input) []Finding { return detectHandshakeLatency(in, cfg) }
	fast := []float64{1, 1.2, 0.9, 1.1, 1, 1.3, 0.8, 1}
	tests := []struct {
		name  string
		conns func() []*Conn
		want  *findingWant // nil: no finding
	}{
		{
			name:  "one slow TCP handshake",
			conns: func() []*Conn { return hsConns(append(slices.Clone(fast), 250)...) },
			want: &findingWant{sev: Warning, summary: "1 of 9 TCP handshakes to 10.0.0.2:443 took over 200 ms (slowest 250 ms on connection 8) against a median of 1.0 ms",
				frames:  []uint64{801, 802},
				metrics: map[string]float64{"samples": 9, "median_ms": 1, "slow": 1, "slowest_ms": 250, "threshold_ms": 200}},
		},
		{
			name: "slow TLS handshake, critical",
			conns: func() []*Conn {
				return withTLS(hsConns(1, 1, 1, 1, 1, 1), 10, 12, 11, 9, 10, 1500)
			},
			want: &findingWant{sev: Critical, summary: "1 of 6 TLS handshakes to 10.0.0.2:443 took over 200 ms (slowest 1.5 s on connection 5)",
				frames:  []uint64{504, 506},
				metrics: map[string]float64{"slowest_ms": 1500, "client_hello_to_server_hello_ms": 750}},
		},
		{
			name:  "too few samples",
			conns: func() []*Conn { return hsConns(1, 1, 1, 500) },
		},
		{
			name:  "slow but below the floor",
			conns: func() []*Conn { return hsConns(0.1, 0.1, 0.1, 0.1, 0.1, 5) },
		},
		{
			name:  "uniformly slow: the network",
			conns: func() []*Conn { return hsConns(300, 310, 290, 305, 295, 320) },
			want: &findingWant{sev: Info, summary: "All 6 TCP handshakes to 10.0.0.2:443 are slow alike (median 303 ms",
				metrics: map[string]float64{"slow": 0, "samples": 6}},
		},
		{
			name: "SYN retransmission left to syn_retransmit",
			conns: func() []*Conn {
				cs := hsConns(append(slices.Clone(fast), 1)...)
				c := cs[8]
				c.SYNs = []event.Ref{ref(801, c.TCP.FirstTS.Sub(t0)), ref(803, c.TCP.FirstTS.Sub(t0)+time.Second)}
				v := 1001.0
				c.TCP.HandshakeRTTMS = &v
				return cs
			},
		},
		{
			// A full accept queue (nginx backlog=1 deferred, frozen)
			// drops the client's ACK and request: the client's side of
			// the handshake took 0.03 ms, the server's lasted until
			// its SYN-ACK sent again 1.39 s after the SYN, and beyond.
			name: "SYN-ACK sent again after the client's ACK and request: the server's handshake",
			conns: func() []*Conn {
				cs := hsConns(append(slices.Clone(fast), 0.03)...)
				c := cs[8]
				at := c.TCP.FirstTS.Sub(t0)
				c.SYNACKs = []event.Ref{ref(802, at+20*time.Microsecond), ref(805, at+1390*time.Millisecond)}
				c.Records.Exchanges = []Exchange{{Proto: event.ProtoHTTP1, Seq: 1, Method: "GET", Path: "/index.html",
					Request: refp(ref(804, at+45*time.Millisecond))}}
				return cs
			},
			want: &findingWant{sev: Critical, summary: "1 of 9 TCP handshakes to 10.0.0.2:443 took over 200 ms (slowest 1.39 s on connection 8)",
				frames:  []uint64{801, 802, 805},
				metrics: map[string]float64{"slowest_ms": 1390, "synack_retransmitted": 1}},
		},
		{
			// The same SYN-ACK sent again with no request before it
			// (a preconnect to a TCP_DEFER_ACCEPT listener): nobody
			// waited.
			name: "SYN-ACK sent again after the client's ACK, no request yet",
			conns: func() []*Conn {
				cs := hsConns(append(slices.Clone(fast), 0.03)...)
				c := cs[8]
				at := c.TCP.FirstTS.Sub(t0)
				c.SYNACKs = []event.Ref{ref(802, at+20*time.Microsecond), ref(805, at+1390*time.Millisecond)}
				c.Records.Exchanges = []Exchange{{Proto: event.ProtoHTTP1, Seq: 1, Method: "GET", Path: "/index.html",
					Request: refp(ref(806, at+1500*time.Millisecond))}}
				return cs
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detect, tt.conns()...), KindHandshakeLatency, tt.want)
		})
	}
}

func TestHandshakeLatencyCaptures(t *testing.T) {
	checkControls(t, KindHandshakeLatency, Info, "grpc-unary-h2c", "grpc-streaming-h2c", "http1-keepalive", "h2c-large-slow", "tcp-impaired", "h2-tls", "grpc-tls")
}

// Internet captures with handshakes to many servers (7.9 to 107 ms TCP,
// 13 to 107 ms TLS; 48-52 ms with a few 10-11 ms): spread, no outlier.
func TestHandshakeLatencyCorpus(t *testing.T) {
	for _, file := range []string{"ja4/latest.pcapng", "ndpi/tls_certificate_too_long.pcap", "pcapplusplus/http-packets2.pcap"} {
		t.Run(file, func(t *testing.T) {
			res := analyzeFile(t, corpus(t, file), "")
			if fs := only(res, KindHandshakeLatency); len(fs) > 0 {
				t.Errorf("unexpected %+v", fs)
			}
		})
	}
}

// Handshakes to different servers are not one baseline; a SYN-ACK
// retransmitted because the first was lost makes a handshake slow alone.
func TestHandshakeLatencyPerServer(t *testing.T) {
	cfg := defaultHandshakeLatency()
	cfg.CriticalLatency = time.Second // --handshake-critical 1s: the default is never
	ms := func(v float64) *float64 { return &v }
	var cs []*Conn
	for i, rtt := range []float64{0.5, 0.4, 0.6, 0.5, 0.5, 269} {
		srv := "10.0.0.2:443"
		if i == 5 {
			srv = "10.0.0.9:80" // another network
		}
		c := conn(event.ConnID(i), fmt.Sprintf("10.0.0.1:%d", 40000+i), srv, uint64(100*i+1), time.Duration(i)*time.Second, time.Duration(i+1)*time.Second)
		c.TCP.HandshakeRTTMS = ms(rtt)
		cs = append(cs, c)
	}
	detect := func(in *Input) []Finding { return detectHandshakeLatency(in, cfg) }
	if fs := run(detect, cs...); len(fs) != 0 {
		t.Fatalf("a lone handshake to another server: %+v", fs)
	}
	// The last server's SYN-ACK is retransmitted 1.5 s later.
	c := cs[5]
	c.TCP.HandshakeRTTMS = ms(1560)
	c.SYNACKs = []event.Ref{ref(502, c.TCP.FirstTS.Sub(t0)+10*time.Millisecond), ref(503, c.TCP.FirstTS.Sub(t0)+1550*time.Millisecond)}
	checkFindings(t, run(detect, cs...), KindHandshakeLatency, &findingWant{sev: Critical,
		summary: "1 TCP handshake(s) to 10.0.0.9:80 waited for a retransmitted SYN-ACK (slowest 1.56 s on connection 5)",
		frames:  []uint64{501, 502, 503}, metrics: map[string]float64{"synack_retransmitted": 1}})
}

// TestLatencyIsAWarning checks the severity rule's default for the
// latency findings: a slow handshake or a long stall is a cost, a
// warning, however long, unless --handshake-critical or --stall-critical
// is given.
func TestLatencyIsAWarning(t *testing.T) {
	if c := DefaultConfig(); c.HandshakeLatency.CriticalLatency != 0 || c.WindowStall.CriticalStall != 0 {
		t.Errorf("defaults: handshake-critical %v, stall-critical %v; want 0 (never)", c.HandshakeLatency.CriticalLatency, c.WindowStall.CriticalStall)
	}
	ms := func(v float64) *float64 { return &v }
	var cs []*Conn
	for i, rtt := range []float64{0.5, 0.4, 0.6, 0.5, 0.5, 5000} {
		c := conn(event.ConnID(i), fmt.Sprintf("10.0.0.1:%d", 40000+i), "10.0.0.2:443", uint64(i*10+1), time.Duration(i)*time.Second, time.Duration(i)*time.Second+time.Second)
		c.TCP.HandshakeRTTMS = ms(rtt)
		cs = append(cs, c)
	}
	cfg := defaultHandshakeLatency()
	fs := run(func(in *Input) []Finding { return detectHandshakeLatency(in, cfg) }, cs...)
	if f := findKind(fs, KindHandshakeLatency); f == nil || f.Severity != Warning {
		t.Errorf("a 5 s handshake among 0.5 ms ones: %+v, want a warning", f)
	}
}
