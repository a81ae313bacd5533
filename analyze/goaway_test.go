package analyze

import (
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

// gaConn returns an HTTP/2 connection 2 with client streams 1 (answered
// at 1 s), 3 and 5 (unanswered; HEADERS at frames 30 and 50), and the
// GOAWAYs gs.
func gaConn(gs ...http2.GoAway) *Conn {
	c := conn(2, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 10*time.Second)
	c.App = &dissect.App{HTTP2: &http2.Summary{GoAways: gs}, Streams: []http2.Stream{
		{ID: 1, Initiator: "client", FirstHeaders: refp(ref(10, 100*time.Millisecond)), ClientEnd: refp(ref(10, 100*time.Millisecond)), ServerEnd: refp(ref(20, time.Second))},
		{ID: 3, Initiator: "client", FirstHeaders: refp(ref(30, 2*time.Second)), ClientEnd: refp(ref(30, 2*time.Second))},
		{ID: 5, Initiator: "client", FirstHeaders: refp(ref(50, 3*time.Second)), ClientEnd: refp(ref(50, 3*time.Second))},
	}}
	c.Records.takeRecords(c.App)
	return c
}

func gaFrame(dir event.Dir, last uint32, code, debug string, frame uint64, at time.Duration) http2.GoAway {
	return http2.GoAway{Dir: dir, LastStreamID: last, Code: errCode(code), Debug: debug, Ref: ref(frame, at)}
}

func TestGoAwaySynthetic(t *testing.T) {
	cfg := defaultGoAway()
	detect := func(in *Input) []Finding { return detectGoAway(in, cfg) }
	tests := []struct {
		name  string
		conns func() []*Conn
		want  findingWant
	}{
		{
			name: "graceful drain, streams finished",
			conns: func() []*Conn {
				c := gaConn(gaFrame(event.S2C, maxStreamID, "NO_ERROR", "", 100, 4*time.Second), gaFrame(event.S2C, 5, "NO_ERROR", "", 110, 4100*time.Millisecond))
				for i := range c.Records.Streams {
					c.Records.Streams[i].ServerEnd = refp(ref(25, 1500*time.Millisecond))
				}
				return []*Conn{c}
			},
			want: findingWant{sev: Info, summary: "Server drained connection 2 gracefully: GOAWAY(NO_ERROR, 2^31-1) then GOAWAY(NO_ERROR, last stream 5) 100 ms later",
				frames:  []uint64{100, 110},
				metrics: map[string]float64{"graceful": 1, "goaways": 2, "last_stream_id": 5, "streams_cut": 0, "drain_ms": 100}},
		},
		{
			// Go's client resets each stream above last-stream-id once it
			// reads the GOAWAY: they were still cut.
			name: "streams the client reset in answer to the GOAWAY were cut",
			conns: func() []*Conn {
				c := gaConn(gaFrame(event.S2C, 1, "NO_ERROR", "", 100, 4*time.Second))
				for i := 1; i < 3; i++ {
					c.Records.Streams[i].Reset = &http2.Reset{Dir: event.C2S, Code: errCode("CANCEL"), Ref: ref(101, 4001*time.Millisecond)}
				}
				return []*Conn{c}
			},
			want: findingWant{sev: Warning, metrics: map[string]float64{"streams_cut": 2, "last_stream_id": 1}},
		},
		{
			// A rapid reset's streams, written after the GOAWAY with their
			// RST_STREAM in the same segment, were given up, not cut.
			name: "streams reset in the segment that opened them were not cut",
			conns: func() []*Conn {
				c := gaConn(gaFrame(event.S2C, 1, "NO_ERROR", "", 20, 1500*time.Millisecond))
				for i := 1; i < 3; i++ {
					st := &c.Records.Streams[i]
					st.Reset = &http2.Reset{Dir: event.C2S, Code: errCode("CANCEL"), Ref: *st.FirstHeaders}
				}
				return []*Conn{c}
			},
			want: findingWant{sev: Info, metrics: map[string]float64{"streams_cut": 0, "last_stream_id": 1}},
		},
		{
			name: "abrupt NO_ERROR with streams above last-stream-id",
			conns: func() []*Conn {
				return []*Conn{gaConn(gaFrame(event.S2C, 1, "NO_ERROR", "", 100, 4*time.Second))}
			},
			want: findingWant{sev: Warning, summary: "with no graceful drain while streams above it were in flight; 2 client stream(s) above it were not processed",
				frames:    []uint64{100, 30, 50},
				metrics:   map[string]float64{"streams_cut": 2, "last_stream_id": 1, "graceful": 0},
				remedyHas: "Shutdown"},
		},
		{
			name: "too_many_pings",
			conns: func() []*Conn {
				return []*Conn{gaConn(gaFrame(event.S2C, 5, "ENHANCE_YOUR_CALM", "too_many_pings", 100, 4*time.Second))}
			},
			want: findingWant{sev: Critical, summary: `Server sent GOAWAY(ENHANCE_YOUR_CALM, last stream 5) on connection 2, debug "too_many_pings"; 2 stream(s) were still in flight`,
				frames:    []uint64{100},
				metrics:   map[string]float64{"streams_unfinished": 2},
				remedyHas: "EnforcementPolicy.MinTime"},
		},
		{
			name: "client closing",
			conns: func() []*Conn {
				c := gaConn(gaFrame(event.C2S, 0, "NO_ERROR", "client transport shutdown", 100, 4*time.Second))
				c.Records.Streams = c.Records.Streams[:1]
				return []*Conn{c}
			},
			want: findingWant{sev: Info, summary: "Client sent GOAWAY(NO_ERROR, last stream 0)", frames: []uint64{100}},
		},
		{
			name: "reconnect",
			conns: func() []*Conn {
				c := gaConn(gaFrame(event.S2C, 5, "NO_ERROR", "", 100, 4*time.Second))
				c.Records.Streams = c.Records.Streams[:1]
				d := conn(7, "10.0.0.1:40002", "10.0.0.2:443", 500, 6*time.Second, 8*time.Second)
				other := conn(6, "10.0.0.9:40002", "10.0.0.2:443", 400, 5*time.Second, 8*time.Second)
				return []*Conn{c, other, d}
			},
			want: findingWant{sev: Info, summary: "the client reconnected 2 s later (connection 7)", frames: []uint64{100, 500},
				metrics: map[string]float64{"reconnect_ms": 2000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detect, tt.conns()...), KindGoAway, &tt.want)
		})
	}
}

// The gRPC captures end with the client's GOAWAY: info, never more.
func TestGoAwayCaptures(t *testing.T) {
	for _, name := range []string{"grpc-unary-h2c", "grpc-streaming-h2c", "http1-keepalive", "h2c-large-slow", "tcp-impaired"} {
		res, _ := analyzeCapture(t, name)
		for _, f := range only(res, KindGoAway) {
			if f.Severity >= Warning || !strings.HasPrefix(f.Summary, "Client sent GOAWAY(NO_ERROR") {
				t.Errorf("%s: unexpected %+v", name, f)
			}
		}
	}
}

func TestGoAwayCorpus(t *testing.T) {
	t.Run("http2-16-ssl", func(t *testing.T) {
		// nghttp over TLS: the client ends with GOAWAY(NO_ERROR, 0).
		p := corpus(t, "wireshark-notes/http2-16-ssl.pcapng")
		res := analyzeFile(t, p, corpus(t, "wireshark-notes/http2-16-ssl.keys.txt"))
		fs := only(res, KindGoAway)
		if len(fs) != 1 || fs[0].Severity != Info || !hasFrame(fs[0], 18) || fs[0].Connections[0] != 1 {
			t.Errorf("want one info goaway on frame 18 of connection 1, got %+v", fs)
		}
	})
	t.Run("http2-errorcode", func(t *testing.T) {
		// Two connections: each client sends GOAWAY(INTERNAL_ERROR), the
		// server GOAWAY(NO_ERROR, 1) after its one stream.
		res := analyzeFile(t, corpus(t, "sv/http2-errorcode/input.pcap"), "")
		sev := map[Severity]int{}
		for _, f := range only(res, KindGoAway) {
			sev[f.Severity]++
			if f.Severity == Critical && !strings.Contains(f.Summary, "INTERNAL_ERROR") {
				t.Errorf("critical without INTERNAL_ERROR: %q", f.Summary)
			}
		}
		if sev[Critical] != 2 || sev[Info] != 2 {
			t.Errorf("severities %v, want 2 critical and 2 info", sev)
		}
	})
}
