package analyze

import (
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

// h2Conn returns an HTTP/2 connection lasting 10 s with one client
// stream 1 (HEADERS at frame 10, 100 ms) whose server side ended at
// serverEnd (nil: unfinished).
func h2Conn(serverEnd *event.Ref) *Conn {
	c := conn(4, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 10*time.Second)
	c.App = &dissect.App{HTTP2: &http2.Summary{}, Streams: []http2.Stream{{
		ID: 1, Initiator: "client", FirstHeaders: refp(ref(10, 100*time.Millisecond)),
		ClientEnd: refp(ref(10, 100*time.Millisecond)), ServerEnd: serverEnd,
	}}}
	c.Records.takeRecords(c.App)
	return c
}

func stall(dir event.Dir, stream uint32, start uint64, from time.Duration, end uint64, to time.Duration, by string) http2.Stall {
	s := http2.Stall{Dir: dir, Stream: stream, Start: ref(start, from), EndedBy: by}
	if end > 0 {
		s.End = refp(ref(end, to))
	}
	return s
}

func TestWindowStallSynthetic(t *testing.T) {
	cfg := defaultWindowStall()
	cfg.CriticalStall = 2 * time.Second // --stall-critical 2s: the default is never
	detect := func(in *Input) []Finding { return detectWindowStall(in, cfg) }
	tests := []struct {
		name string
		conn func() *Conn
		want *findingWant // nil: no finding
	}{
		{
			name: "stream window, one long stall",
			conn: func() *Conn {
				c := h2Conn(refp(ref(90, 2*time.Second)))
				c.Records.Streams[0].Stalls = []http2.Stall{stall(event.S2C, 1, 20, time.Second, 30, 1500*time.Millisecond, "WINDOW_UPDATE")}
				return c
			},
			want: &findingWant{sev: Warning, summary: "Server blocked by the client's HTTP/2 stream window for 500 ms on stream 1 of connection 4",
				frames:  []uint64{20, 30},
				metrics: map[string]float64{"longest_stall_ms": 500, "stalls": 1, "window_update_latency_ms": 500}},
		},
		{
			name: "critical stall",
			conn: func() *Conn {
				c := h2Conn(refp(ref(90, 5*time.Second)))
				c.Records.Streams[0].Stalls = []http2.Stall{stall(event.S2C, 1, 20, time.Second, 30, 4*time.Second, "WINDOW_UPDATE")}
				return c
			},
			want: &findingWant{sev: Critical, frames: []uint64{20, 30},
				metrics: map[string]float64{"longest_stall_ms": 3000}},
		},
		{
			name: "many short stalls add up",
			conn: func() *Conn {
				c := h2Conn(refp(ref(900, 500*time.Millisecond)))
				for i := range 40 {
					at := 100*time.Millisecond + time.Duration(i)*10*time.Millisecond
					c.Records.Streams[0].Stalls = append(c.Records.Streams[0].Stalls,
						stall(event.S2C, 1, uint64(20+2*i), at, uint64(21+2*i), at+5*time.Millisecond, "WINDOW_UPDATE"))
				}
				return c
			},
			want: &findingWant{sev: Warning, summary: "40 times on stream 1 of connection 4, 200 ms in all (50% of the time)",
				frames:  []uint64{20, 21},
				metrics: map[string]float64{"stalls": 40, "total_stall_ms": 200, "stall_share": 0.5}},
		},
		{
			name: "client upload held by the server's connection window",
			conn: func() *Conn {
				c := h2Conn(refp(ref(90, 5*time.Second)))
				c.Records.Stalls = []http2.Stall{stall(event.C2S, 0, 20, time.Second, 30, 1300*time.Millisecond, "WINDOW_UPDATE")}
				return c
			},
			want: &findingWant{sev: Warning, summary: "Client blocked by the server's HTTP/2 connection window for 300 ms on connection 4",
				frames: []uint64{20, 30}},
		},
		{
			name: "open at the end of the capture, stream unfinished",
			conn: func() *Conn {
				c := h2Conn(nil)
				c.Records.Stalls = []http2.Stall{stall(event.S2C, 0, 20, 9*time.Second, 0, 0, "")}
				return c
			},
			want: &findingWant{sev: Warning, summary: "still stalled when the capture ended", frames: []uint64{20},
				metrics: map[string]float64{"longest_stall_ms": 1000, "open_stalls": 1}},
		},
		{
			name: "connection window at zero at the end, every stream done",
			conn: func() *Conn {
				c := h2Conn(refp(ref(20, 5*time.Second)))
				c.Records.Stalls = []http2.Stall{stall(event.S2C, 0, 20, 5*time.Second, 0, 0, "")}
				return c
			},
		},
		{
			name: "ended by END_STREAM: window exhausted by the last byte",
			conn: func() *Conn {
				c := h2Conn(refp(ref(30, 5*time.Second)))
				c.Records.Streams[0].Stalls = []http2.Stall{stall(event.S2C, 1, 20, time.Second, 30, 5*time.Second, "END_STREAM")}
				return c
			},
		},
		{
			name: "ended by RST_STREAM or a capture gap",
			conn: func() *Conn {
				c := h2Conn(nil)
				c.Records.Streams[0].Stalls = []http2.Stall{
					stall(event.S2C, 1, 20, time.Second, 30, 5*time.Second, "RST_STREAM"),
					stall(event.C2S, 1, 40, time.Second, 50, 5*time.Second, "capture_gap"),
				}
				return c
			},
		},
		{
			name: "below MinStall",
			conn: func() *Conn {
				c := h2Conn(refp(ref(90, 5*time.Second)))
				c.Records.Streams[0].Stalls = []http2.Stall{stall(event.S2C, 1, 20, time.Second, 30, 1050*time.Millisecond, "WINDOW_UPDATE")}
				return c
			},
		},
		{
			name: "short stalls, small share of a long transfer",
			conn: func() *Conn {
				c := h2Conn(refp(ref(900, 9*time.Second)))
				for i := range 30 {
					at := time.Second + time.Duration(i)*200*time.Millisecond
					c.Records.Streams[0].Stalls = append(c.Records.Streams[0].Stalls,
						stall(event.S2C, 1, uint64(20+2*i), at, uint64(21+2*i), at+5*time.Millisecond, "WINDOW_UPDATE"))
				}
				return c
			},
		},
		{
			name: "TCP zero window with probes",
			conn: func() *Conn {
				c := conn(5, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 10*time.Second)
				c.TCP.ZeroWindows, c.TCP.ZeroWindowProbes, c.TCP.WindowFull = 3, 2, 1
				c.ZeroWindows[event.C2S] = []event.Ref{ref(50, time.Second), ref(52, 1300*time.Millisecond), ref(54, 1900*time.Millisecond)}
				c.WindowFulls[event.S2C] = []event.Ref{ref(49, time.Second-time.Millisecond)}
				return c
			},
			want: &findingWant{sev: Warning, summary: "Client advertised a zero TCP receive window on connection 5: the server could not send for at least 900 ms, 2 zero-window probes",
				frames:  []uint64{49, 50, 54},
				metrics: map[string]float64{"zero_windows": 3, "zero_window_probes": 2, "longest_stall_ms": 900, "episodes": 1}},
		},
		{
			name: "lone TCP zero window",
			conn: func() *Conn {
				c := conn(5, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 10*time.Second)
				c.TCP.ZeroWindows = 1
				c.ZeroWindows[event.S2C] = []event.Ref{ref(50, time.Second)}
				return c
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detect, tt.conn()), KindWindowStall, tt.want)
		})
	}
}

// h2c-large-slow: the client reads its 1 MB download 8 KB every 3 ms, so
// the server's stream window reaches 0 again and again (its truth file
// expects window_stall).
func TestWindowStallLargeSlow(t *testing.T) {
	res, in := analyzeCapture(t, "h2c-large-slow")
	fs := only(res, KindWindowStall)
	if len(fs) == 0 {
		t.Fatalf("no window_stall; findings %+v", res.Findings)
	}
	f := fs[0]
	if f.Severity < Warning {
		t.Errorf("severity %s, want at least warning", f.Severity)
	}
	if !strings.Contains(f.Summary, "Server blocked by the client's HTTP/2 stream window") {
		t.Errorf("summary %q", f.Summary)
	}
	if got := metric(t, f, "total_stall_ms"); got < 100 {
		t.Errorf("total_stall_ms %v, want ≥ 100", got)
	}
	last := in.Conns[0].TCP.LastFrame
	for _, e := range f.Evidence {
		if e.Frame == 0 || e.Frame > last || e.Stream == 0 {
			t.Errorf("evidence off the capture's stream frames: %+v", e)
		}
	}
	var on9 bool
	for _, s := range f.Streams {
		on9 = on9 || s.Stream == 9
	}
	if !on9 {
		t.Errorf("stream 9 (the 1 MB download) not among %v", f.Streams)
	}
}

// Healthy controls, and tcp-impaired (reordered, retransmitted and lost
// data segments, no window trouble): no stall at warning or above.
func TestWindowStallControls(t *testing.T) {
	checkControls(t, KindWindowStall, Warning, "grpc-unary-h2c", "grpc-streaming-h2c", "http1-keepalive", "tcp-impaired")
}

// mqtt-limit-2 has one zero-window segment, answered by a window update
// without a probe: too brief to time, no finding.
func TestWindowStallCorpus(t *testing.T) {
	res := analyzeFile(t, corpus(t, "sv/mqtt-limit-2/input.pcap"), "")
	if fs := only(res, KindWindowStall); len(fs) > 0 {
		t.Errorf("unexpected window_stall %+v", fs)
	}
}
