package analyze

import (
	"net/netip"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// t0 is the synthetic captures' start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

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
	ref := func(d time.Duration) event.Ref {
		r := event.Ref{Frame: frame, TS: t0.Add(d)}
		frame++
		return r
	}
	tc := &tcp.Conn{ID: s.id, Client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.5"), s.port),
		Server: netip.MustParseAddrPort("10.0.0.9:8080"), FirstTS: t0.Add(s.start), LastTS: t0.Add(s.start + s.life),
		Close: s.close, SYNs: 1, SYNACKs: 1, StreamBytes: tcp.Pair{C2S: 100, S2C: 200}}
	ws := 7
	tc.WindowScale = tcp.WindowScale{C2S: &ws, S2C: &ws}
	c := &Conn{TCP: tc, App: &dissect.App{Proto: event.ProtoHTTP1, HTTP1: &http1.Summary{Requests: len(s.reqs), CloseRequestedBy: s.closeReq}}}
	c.SYNs = []event.Ref{ref(s.start)}
	c.SYNACKs = []event.Ref{ref(s.start + 100*time.Microsecond)}
	for i, at := range s.reqs {
		req := ref(s.start + at)
		x := Exchange{Proto: event.ProtoHTTP1, Seq: i + 1, Method: "GET", Authority: "api.test", Path: "/x", Request: refp(req), RequestEnd: refp(req)}
		if at < s.life {
			resp := ref(s.start + at + time.Millisecond)
			x.Status, x.Response, x.ResponseEnd, x.KeepAlive = 200, refp(resp), refp(resp), true
		}
		c.Exchanges = append(c.Exchanges, x)
	}
	end := ref(s.start + s.life)
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

func findKind(fs []Finding, kind string) *Finding {
	for i := range fs {
		if fs[i].Kind == kind {
			return &fs[i]
		}
	}
	return nil
}

func TestChurnSynthetic(t *testing.T) {
	oneReq := func(n int, close tcp.Close, samePort bool) []*Conn {
		var cs []*Conn
		for i := range n {
			port := uint16(40000 + i)
			if samePort {
				port = 40000
			}
			cs = append(cs, synConn{id: event.ConnID(i), port: port, start: time.Duration(i) * 10 * time.Millisecond,
				life: 5 * time.Millisecond, reqs: []time.Duration{time.Millisecond}, close: close, closeReq: "client"}.build())
		}
		return cs
	}
	manyReq := func() []*Conn {
		var cs []*Conn
		for i := range 12 {
			var reqs []time.Duration
			for j := range 20 {
				reqs = append(reqs, time.Duration(j+1)*time.Millisecond*2)
			}
			cs = append(cs, synConn{id: event.ConnID(i), port: uint16(40000 + i), start: time.Duration(i) * 100 * time.Millisecond,
				life: 50 * time.Millisecond, reqs: reqs, close: tcp.CloseFINClient}.build())
		}
		return cs
	}
	longStreams := func() []*Conn {
		var cs []*Conn
		for i := range 12 {
			cs = append(cs, synConn{id: event.ConnID(i), port: uint16(40000 + i), start: time.Duration(i) * time.Second,
				life: 30 * time.Second, reqs: []time.Duration{time.Millisecond}, close: tcp.CloseFINClient}.build())
		}
		return cs
	}
	tests := []struct {
		name     string
		conns    []*Conn
		want     bool
		sev      Severity
		timeWait string
	}{
		{"one request each, client closes", oneReq(12, tcp.CloseFINClient, false), true, Warning, "client"},
		{"one request each, server closes", oneReq(12, tcp.CloseFINServer, false), true, Warning, "server"},
		{"4-tuple reused within TIME_WAIT", oneReq(12, tcp.CloseFINClient, true), true, Critical, "client"},
		{"few connections", oneReq(4, tcp.CloseFINClient, false), false, 0, ""},
		{"many requests per connection", manyReq(), false, 0, ""},
		{"long-lived single streams", longStreams(), false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Conns: tt.conns}
			fs := detectReconnectChurn(in, defaultChurn())
			if !tt.want {
				if len(fs) != 0 {
					t.Fatalf("got %d findings, want none: %s", len(fs), fs[0].Summary)
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("got %d findings, want 1", len(fs))
			}
			f := fs[0]
			f.normalize()
			if f.Severity != tt.sev {
				t.Errorf("severity = %v, want %v (%s)", f.Severity, tt.sev, f.Summary)
			}
			if got := f.Metrics["time_wait_side"]; got != tt.timeWait {
				t.Errorf("time_wait_side = %v, want %s", got, tt.timeWait)
			}
			if got := f.Metrics["one_request_conns"]; got != len(tt.conns) {
				t.Errorf("one_request_conns = %v, want %d", got, len(tt.conns))
			}
			if h := f.Metrics["requests_hist"].(map[string]int); h["1"] != len(tt.conns) {
				t.Errorf("requests_hist = %v", h)
			}
			if _, ok := f.Metrics["fin_to_syn_median_ms"]; !ok {
				t.Errorf("no fin_to_syn_median_ms in %v", f.Metrics)
			}
			// The first evidence is conn 0's SYN (frame 1), then its request.
			if len(f.Evidence) < 3 || f.Evidence[0].Frame != 1 || f.Evidence[0].Filter != "tcp.stream eq 0" || f.Evidence[1].Frame != 3 {
				t.Errorf("evidence = %+v", f.Evidence)
			}
			if len(f.Connections) != len(tt.conns) || f.Remedy == "" || f.Confidence.Level != "high" {
				t.Errorf("connections %v, remedy %q, confidence %+v", f.Connections, f.Remedy, f.Confidence)
			}
		})
	}
}

func TestChurnCaptures(t *testing.T) {
	res, _ := analyzeCapture(t, "http1-nokeepalive")
	f := findKind(res.Findings, KindReconnectChurn)
	if f == nil || f.Severity < Warning {
		t.Fatalf("http1-nokeepalive: no reconnect_churn at warning+: %+v", res.Findings)
	}
	if f.Metrics["connections"] != 15 || f.Metrics["requests"] != 15 || f.Metrics["one_request_conns"] != 15 {
		t.Errorf("metrics = %v", f.Metrics)
	}
	if len(f.Evidence) == 0 || f.Evidence[0].Frame != 1 {
		t.Errorf("evidence = %+v", f.Evidence)
	}
	for _, name := range []string{"http1-keepalive", "grpc-unary-h2c", "grpc-streaming-h2c", "h2c-large-slow", "tls12-resume", "tls13-resume"} {
		t.Run(name, func(t *testing.T) {
			res, _ := analyzeCapture(t, name)
			if n := kindsAtLeast(res, Warning)[KindReconnectChurn]; n > 0 {
				t.Errorf("%s: %d reconnect_churn findings at warning+", name, n)
			}
		})
	}
}
