package analyze

import (
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
)

func TestKeepaliveSynthetic(t *testing.T) {
	detect := func(in *Input) []Finding { return detectKeepaliveMismatch(in, defaultKeepalive()) }
	const s = time.Second
	// idleClose: one request, then the server closes after 5 s idle.
	idleClose := synConn{id: 0, port: 40000, life: 5*s + 2*time.Millisecond, reqs: []time.Duration{time.Millisecond}, close: tcp.CloseFINServer}
	// raced: a request 3 ms after the server's FIN (life), unanswered,
	// and the server's RST.
	raced := func() *Conn {
		c := synConn{id: 1, port: 40001, start: 10 * s, life: 5 * s, reqs: []time.Duration{time.Millisecond, 5*s + 3*time.Millisecond}, close: tcp.CloseFINServer}.build()
		c.RST[event.S2C] = &event.Ref{Frame: 1999, TS: t0.Add(15*s + 4*time.Millisecond)}
		return c
	}
	// reused: the client reuses a connection after 8 s idle, then closes.
	reused := synConn{id: 2, port: 40002, start: 20 * s, life: 9 * s, reqs: []time.Duration{time.Millisecond, 8 * s}, close: tcp.CloseFINClient}
	tests := []struct {
		name   string
		conns  []*Conn
		sev    Severity
		none   bool
		races  int
		lost   int
		frames []uint64
	}{
		{"idle close only is info", []*Conn{idleClose.build()}, Info, false, 0, 0, []uint64{5, 4}},                                                       // the decisive close first
		{"request after the server FIN, lost", []*Conn{idleClose.build(), raced()}, Critical, false, 1, 1, []uint64{1005, 4, 5, 1004, 1006, 1006, 1999}}, // the decisive race first
		{"reuse gap above the server's idle timeout", []*Conn{idleClose.build(), reused.build()}, Warning, false, 0, 0, nil},
		{"client closes first", []*Conn{synConn{id: 0, port: 40000, life: 5 * s, reqs: []time.Duration{time.Millisecond}, close: tcp.CloseFINClient}.build()}, 0, true, 0, 0, nil},
		{"server closes after Connection: close", []*Conn{synConn{id: 0, port: 40000, life: 5 * s, reqs: []time.Duration{time.Millisecond}, close: tcp.CloseFINServer, closeReq: "client"}.build()}, 0, true, 0, 0, nil},
		{"server closes right after the response", []*Conn{synConn{id: 0, port: 40000, life: 10 * time.Millisecond, reqs: []time.Duration{time.Millisecond}, close: tcp.CloseFINServer}.build()}, 0, true, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want *findingWant
			if !tt.none {
				idle := 5000.0
				if tt.races > 0 {
					idle = 4998 // the raced connection idled 4.998 s
				}
				want = &findingWant{sev: tt.sev, metrics: map[string]float64{
					"races": float64(tt.races), "requests_lost": float64(tt.lost), "server_idle_timeout_min_ms": idle}}
			}
			f := checkFindings(t, run(detect, tt.conns...), KindKeepaliveMismatch, want)
			if tt.none {
				return
			}
			for i, fr := range tt.frames {
				if i >= len(f.Evidence) || f.Evidence[i].Frame != fr {
					t.Errorf("evidence = %+v, want frames %v", f.Evidence, tt.frames)
					break
				}
			}
			if len(f.Evidence) == 0 {
				t.Error("no evidence")
			}
		})
	}
}

func TestKeepaliveCaptures(t *testing.T) {
	checkControls(t, KindKeepaliveMismatch, Warning, "http1-keepalive", "http1-nokeepalive", "grpc-unary-h2c", "grpc-streaming-h2c", "h2c-large-slow", "h2-tls", "tls12-resume", "tls13-resume")
}

// TestKeepaliveHeadOpen: a request begun before the server's close whose
// head the client never finished sending (an HTTP/2 header block with no
// END_HEADERS, as a CONTINUATION flood's) is no request that crossed the
// close: the server closed on what it was reading, not on an idle
// connection. The same request with its head complete, or one begun
// after the server's FIN, is a race.
func TestKeepaliveHeadOpen(t *testing.T) {
	detect := func(in *Input) []Finding { return detectKeepaliveMismatch(in, defaultKeepalive()) }
	tests := []struct {
		name string
		open bool
		// before: the request's frame precedes the server's FIN (crossed
		// in flight); else it follows it.
		before bool
		want   *findingWant
	}{
		{"complete head just before the close", false, true, &findingWant{sev: Critical, metrics: map[string]float64{"races": 1, "requests_lost": 1}}},
		{"complete head after the close", false, false, &findingWant{sev: Critical, metrics: map[string]float64{"races": 1, "requests_lost": 1}}},
		{"head never ended, before the close", true, true, nil},
		// Begun after the server's FIN, it could not have made the server
		// close: a race, cut mid-head or not.
		{"head never ended, after the close", true, false, &findingWant{sev: Critical, metrics: map[string]float64{"races": 1, "requests_lost": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := synConn{id: 1, port: 40001, life: 20 * time.Millisecond, reqs: []time.Duration{time.Millisecond}, close: tcp.CloseFINServer}.build()
			c.App = &dissect.App{Proto: event.ProtoHTTP2, HTTP2: &http2.Summary{}}
			for i := range c.Records.Exchanges {
				c.Records.Exchanges[i].Proto, c.Records.Exchanges[i].Stream = event.ProtoHTTP2, 1
			}
			fin := ref(1900, 20*time.Millisecond)
			req := ref(1800, 20*time.Millisecond-300*time.Microsecond)
			if !tt.before {
				req = ref(1950, 20*time.Millisecond+100*time.Microsecond)
			}
			c.FIN[event.S2C] = &fin
			rst := ref(1999, 20*time.Millisecond+200*time.Microsecond)
			c.RST[event.S2C] = &rst
			c.TCP.LastTS = rst.TS
			c.Records.Exchanges = append(c.Records.Exchanges, Exchange{Proto: event.ProtoHTTP2, Stream: 3,
				Request: refp(req), RequestEnd: refp(req), HeadOpen: tt.open})
			checkFindings(t, run(detect, c), KindKeepaliveMismatch, tt.want)
		})
	}
}
