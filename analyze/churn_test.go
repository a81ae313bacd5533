package analyze

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

func TestChurnSynthetic(t *testing.T) {
	detect := func(in *Input) []Finding { return detectReconnectChurn(in, defaultChurn()) }
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
			var want *findingWant
			if tt.want {
				want = &findingWant{sev: tt.sev, metrics: map[string]float64{"one_request_conns": float64(len(tt.conns))}}
			}
			f := checkFindings(t, run(detect, tt.conns...), KindReconnectChurn, want)
			if !tt.want {
				return
			}
			if got := f.Metrics["time_wait_side"]; got != tt.timeWait {
				t.Errorf("time_wait_side = %v, want %s", got, tt.timeWait)
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
			if len(f.Connections) != len(tt.conns) || f.Confidence.Level != "high" {
				t.Errorf("connections %v, confidence %+v", f.Connections, f.Confidence)
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
	checkControls(t, KindReconnectChurn, Warning, "http1-keepalive", "grpc-unary-h2c", "grpc-streaming-h2c", "h2c-large-slow", "tls12-resume", "tls13-resume")
}

// ja4/http1.pcapng kept only the clients' data segments: one request per
// connection (UniFi informs every 15 s, UPnP description fetches), but no
// SYN, FIN or RST, so nothing shows the connections were short-lived.
func TestChurnCorpusNoOpenOrClose(t *testing.T) {
	res := analyzeFile(t, corpus(t, "ja4/http1.pcapng"), "")
	fs := only(res, KindReconnectChurn)
	if len(fs) == 0 {
		t.Fatal("no reconnect_churn finding (want info)")
	}
	for _, f := range fs {
		if f.Severity != Info || !slices.Contains(f.Confidence.Reasons, "no connection's opening or closing captured: how long they lived is unknown") {
			t.Errorf("%s %q, confidence %+v", f.Severity, f.Summary, f.Confidence)
		}
	}
}

// TestChurnCauses checks reconnect_churn's cause on pools that differ
// only in how their connections end and overlap. Leaked connections are
// told from the server's idle timeout by what the client did while they
// were idle: it dialled new connections and left them open (the stack
// capture nginx-python-leak: Python closes none, nginx closes each after
// keepalive_timeout, so every one ends with the server's FIN).
func TestChurnCauses(t *testing.T) {
	detect := func(in *Input) []Finding { return detectReconnectChurn(in, defaultChurn()) }
	pool := func(n int, every, life time.Duration, close tcp.Close, closeReq string) []*Conn {
		var cs []*Conn
		for i := range n {
			cs = append(cs, synConn{id: event.ConnID(i), port: uint16(40000 + i), start: time.Duration(i) * every,
				life: life, reqs: []time.Duration{500 * time.Microsecond}, close: close, closeReq: closeReq}.build())
		}
		return cs
	}
	tests := []struct {
		name  string
		conns []*Conn
		want  string
	}{
		{"client closes after each response", pool(12, 10*time.Millisecond, 5*time.Millisecond, tcp.CloseFINClient, ""), CauseClientClosesAfterResponse},
		{"concurrent, client closes right after each response", pool(12, time.Millisecond, 1520*time.Microsecond, tcp.CloseFINClient, ""), CauseClientClosesAfterResponse},
		{"Connection: close from the client", pool(12, 10*time.Millisecond, 5*time.Millisecond, tcp.CloseFINClient, "client"), CauseClientConnectionClose},
		{"client resets with the body unread", pool(12, 10*time.Millisecond, 5*time.Millisecond, tcp.CloseRSTClient, ""), CauseBodyNotDrained},
		{"server closes each idle connection before the next request", pool(12, 1500*time.Millisecond, time.Second, tcp.CloseFINServer, ""), CauseServerIdleTimeout},
		{"leaked: open and idle while new ones are dialled, the server closes them later", pool(12, 100*time.Millisecond, 2*time.Second, tcp.CloseFINServer, ""), CauseConnectionsLeaked},
		{"leaked: still open at the end of the capture", pool(12, 100*time.Millisecond, 50*time.Millisecond, tcp.CloseOpen, ""), CauseConnectionsLeaked},
		{"leaked: the client closes them all at exit", pool(12, 100*time.Millisecond, 2*time.Second, tcp.CloseFINClient, ""), CauseConnectionsLeaked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := checkFindings(t, run(detect, tt.conns...), KindReconnectChurn, &findingWant{sev: Warning})
			if f.Cause != tt.want {
				t.Errorf("cause %s, want %s (metrics %v)", f.Cause, tt.want, f.Metrics)
			}
			if !strings.Contains(f.Remedy, churnCauseRemedy[tt.want]) {
				t.Errorf("remedy %q does not start with the cause's", f.Remedy)
			}
		})
	}
}
