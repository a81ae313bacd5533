package analyze

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// attemptConn returns an attempt to server with SYNs at the given offsets
// (frames first, first+1, ...); answered says a SYN-ACK came 10 ms after
// the last SYN, refused that a RST came instead (else: nothing).
func attemptConn(id event.ConnID, server string, first uint64, answered, refused bool, syns ...time.Duration) *Conn {
	c := conn(id, fmt.Sprintf("10.0.0.1:%d", 40000+id), server, first, syns[0], syns[len(syns)-1]+10*time.Millisecond)
	c.SYNs = nil
	for i, at := range syns {
		c.SYNs = append(c.SYNs, ref(first+uint64(i), at))
	}
	c.TCP.SYNs = len(syns)
	last := syns[len(syns)-1] + 10*time.Millisecond
	switch {
	case answered:
		c.SYNACKs = []event.Ref{ref(first+uint64(len(syns)), last)}
	case refused:
		c.SYNACKs, c.TCP.SYNACKs, c.TCP.HandshakeRTTMS = nil, 0, nil
		c.TCP.Packets, c.TCP.Bytes = event.Pair{C2S: uint64(len(syns)), S2C: 1}, event.Pair{}
		c.RST[event.S2C] = refp(ref(first+uint64(len(syns)), last))
	default:
		c.SYNACKs, c.TCP.SYNACKs, c.TCP.HandshakeRTTMS = nil, 0, nil
		c.TCP.Packets, c.TCP.Bytes = event.Pair{C2S: uint64(len(syns))}, event.Pair{}
	}
	return c
}

func TestSYNRetransmitSynthetic(t *testing.T) {
	cfg := defaultSYNRetransmit()
	detect := func(in *Input) []Finding { return detectSYNRetransmit(in, cfg) }
	const srv = "10.0.0.2:443"
	const dialRemedy = "net.Dialer.Timeout" // every finding names it
	s := time.Second
	tests := []struct {
		name  string
		conns func() []*Conn
		want  *findingWant // nil: no finding
	}{
		{
			name: "connected after two retries",
			conns: func() []*Conn {
				return []*Conn{attemptConn(1, srv, 10, true, false, 0, s, 3*s)}
			},
			want: &findingWant{remedyHas: dialRemedy, sev: Warning, summary: "1 connection attempt to 10.0.0.2:443 failed or needed retries: 2 SYN retransmission(s), 1 connected only after retrying (up to 3.01 s)",
				frames:  []uint64{10, 11, 12, 13},
				metrics: map[string]float64{"attempts": 1, "retransmitted_syns": 2, "connected_after_retry": 1, "first_retry_delay_ms": 1000, "max_connect_delay_ms": 3010, "max_retries": 2}},
		},
		{
			name: "refused and unanswered",
			conns: func() []*Conn {
				return []*Conn{
					attemptConn(1, srv, 10, false, true, 0),
					attemptConn(2, srv, 20, false, false, 0, s, 3*s, 7*s),
					conn(3, "10.0.0.1:50000", "10.0.0.9:80", 30, 0, 20*s), // keeps the capture going
				}
			},
			// Connects that failed: the requests behind them failed.
			want: &findingWant{remedyHas: dialRemedy, sev: Critical, summary: "2 connection attempts to 10.0.0.2:443 failed or needed retries: 3 SYN retransmission(s), 1 refused with RST, 1 never answered",
				frames:  []uint64{10, 11, 20, 23},
				metrics: map[string]float64{"attempts": 2, "refused": 1, "unanswered": 1, "retransmitted_syns": 3}},
		},
		{
			// nginx-curl-refused: curl does not retry a refused connect.
			name: "refused, nothing else to connect to",
			conns: func() []*Conn {
				return []*Conn{attemptConn(1, srv, 10, false, true, 0), attemptConn(2, srv, 20, false, true, 100*time.Millisecond)}
			},
			want: &findingWant{remedyHas: dialRemedy, sev: Critical, summary: "2 connection attempts to 10.0.0.2:443 failed or needed retries: 2 refused with RST",
				frames: []uint64{10, 11, 20, 21}, metrics: map[string]float64{"attempts": 2, "refused": 2, "failed_connects": 2}},
		},
		{
			// nginx-python-accept-queue: most connected after retrying,
			// one gave up.
			name: "retried, one gave up",
			conns: func() []*Conn {
				return []*Conn{
					attemptConn(1, srv, 10, true, false, 0, s, 2*s, 3*s),
					attemptConn(2, srv, 20, true, false, 0, s, 2*s, 3*s),
					attemptConn(3, srv, 30, false, false, 0, s),
					conn(4, "10.0.0.1:50000", "10.0.0.2:80", 40, 0, 20*s),
				}
			},
			want: &findingWant{remedyHas: dialRemedy, sev: Critical, metrics: map[string]float64{"attempts": 3, "unanswered": 1, "connected_after_retry": 2, "failed_connects": 1}},
		},
		{
			name: "critical",
			conns: func() []*Conn {
				var cs []*Conn
				for i := range 10 {
					cs = append(cs, attemptConn(event.ConnID(i), srv, uint64(10*i+1), true, false, time.Duration(i)*s, time.Duration(i)*s+s))
				}
				return cs
			},
			want: &findingWant{remedyHas: dialRemedy, sev: Critical, metrics: map[string]float64{"attempts": 10, "retransmitted_syns": 10}},
		},
		{
			name: "refused, then the client fell back to another address",
			conns: func() []*Conn {
				return []*Conn{attemptConn(0, "[::1]:443", 1, false, true, 0), conn(1, "127.0.0.1:40001", "127.0.0.1:443", 3, 20*time.Millisecond, s)}
			},
			want: &findingWant{remedyHas: dialRemedy, sev: Info, summary: "1 refused with RST (1 then fell back to another address)",
				frames: []uint64{1, 2}, metrics: map[string]float64{"fallbacks": 1}},
		},
		{
			name: "capture duplicates of one SYN",
			conns: func() []*Conn {
				return []*Conn{attemptConn(1, srv, 10, true, false, 0, 5*time.Microsecond, time.Millisecond)}
			},
		},
		{
			name: "one SYN just before the capture ended",
			conns: func() []*Conn {
				return []*Conn{attemptConn(1, srv, 10, false, false, 0)}
			},
		},
		{
			name: "one unanswered SYN in a capture holding nothing from that host",
			conns: func() []*Conn {
				return []*Conn{attemptConn(1, srv, 10, false, false, 0), conn(2, "10.0.0.1:50000", "10.0.0.9:80", 30, 0, 20*s)}
			},
		},
		{
			name: "one unanswered SYN to a host that answers other connections",
			conns: func() []*Conn {
				return []*Conn{attemptConn(1, srv, 10, false, false, 0), conn(2, "10.0.0.1:50000", "10.0.0.2:80", 30, 0, 20*s)}
			},
			want: &findingWant{remedyHas: dialRemedy, sev: Critical, summary: "1 connection attempt to 10.0.0.2:443 failed or needed retries: 1 never answered",
				frames: []uint64{10}, metrics: map[string]float64{"attempts": 1, "unanswered": 1}},
		},
		{
			name: "the client went on after its SYN: the SYN-ACK was not captured",
			conns: func() []*Conn {
				c := attemptConn(1, srv, 10, false, false, 0)
				c.TCP.Packets.C2S, c.TCP.Bytes.C2S = 6, 500
				return []*Conn{c, conn(2, "10.0.0.1:50000", "10.0.0.2:80", 30, 0, 20*s)}
			},
		},
		{
			name: "port scan: five ports refused, no payload",
			conns: func() []*Conn {
				var cs []*Conn
				for i, port := range []int{22, 80, 443, 445, 3389} {
					cs = append(cs, attemptConn(event.ConnID(i), fmt.Sprintf("10.0.0.2:%d", port), uint64(10*i+1), false, true, time.Duration(i)*s))
				}
				return cs
			},
		},
		{
			name: "the SYN-ACK before the retry never reached the client",
			conns: func() []*Conn {
				c := attemptConn(1, srv, 10, true, false, 0, 2*s)
				c.SYNACKs = []event.Ref{ref(11, 10*time.Millisecond), ref(13, 2*s+5*time.Millisecond)}
				c.SYNs[1] = ref(12, 2*s)
				return []*Conn{c}
			},
			want: &findingWant{remedyHas: dialRemedy, sev: Warning, summary: "1 SYN retransmission(s), 1 connected only after retrying (up to 2 s)",
				frames: []uint64{10, 12, 13}, metrics: map[string]float64{"max_connect_delay_ms": 2005}},
		},
		{
			name: "SYN-ACK missed but the server sent data",
			conns: func() []*Conn {
				c := attemptConn(1, srv, 10, false, false, 0)
				c.TCP.Packets.S2C, c.TCP.LastTS = 5, t0.Add(5*s)
				return []*Conn{c}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detect, tt.conns()...), KindSYNRetransmit, tt.want)
		})
	}
}

func TestSYNRetransmitCaptures(t *testing.T) {
	checkControls(t, KindSYNRetransmit, Info, "grpc-unary-h2c", "grpc-streaming-h2c", "http1-keepalive", "h2c-large-slow", "tcp-impaired")
}

func TestSYNRetransmitCorpus(t *testing.T) {
	tests := []struct {
		file string
		want []string // summaries, in order
		sev  []Severity
	}{
		// One SYN to 127.0.0.1:80 and 3 retransmissions, never answered.
		// The connect failed: critical.
		{"zeek/tcp/option-sack.pcap", []string{"1 connection attempt to 127.0.0.1:80 failed or needed retries: 3 SYN retransmission(s), 1 never answered"}, []Severity{Critical}},
		// A port scan (SYN, FIN, NULL and Xmas probes to 7 ports, no
		// payload): the RSTs to its SYNs are no refused connections.
		{"ndpi/tcp_scan.pcapng", nil, nil},
		// The capture holds only what 192.168.56.10 sent: its SSH client
		// ACKs the server's data, the single SYNs to ports 8, 12, 13 and
		// 14 may well have been answered.
		{"tcpdump/ipoib.pcap", nil, nil},
		{"pcapplusplus/unidirectional_tcp_stream_with_missing_packet.pcap", nil, nil},
		// Connection 2's SYN-ACK is missing, but the client ACKs and sends
		// five requests.
		{"pcapplusplus/raw_ip.pcap", nil, nil},
		// The SYN-ACK 10 ms after the SYN never reached the client, which
		// retried 2.07 s later and was answered at once.
		{"ndpi/heuristic_tcp_ack_payload.pcap", []string{"1 SYN retransmission(s), 1 connected only after retrying (up to 2.07 s)"}, []Severity{Warning}},
		// Duplicated packets (same IP id, µs apart), not retransmissions.
		{"zeek/nflog-http.pcap", nil, nil},
		{"arkime/wireshark-retrans.pcap", nil, nil},
		{"zeek/http/vnd.ms-cab-compressed-multi-conn.pcap", nil, nil},
		// The SYN-ACK is missing from the capture but the server answers.
		{"arkime/no-syn-ack.pcap", nil, nil},
		// 200 SYNs in 0.2 s, then the capture ends: too short to tell.
		{"sv/tcp-session-syn-flood-drop-precedence/input.pcap", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res := analyzeFile(t, corpus(t, tt.file), "")
			fs := only(res, KindSYNRetransmit)
			if len(fs) != len(tt.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(fs), len(tt.want), fs)
			}
			for i, f := range fs {
				if !strings.Contains(f.Summary, tt.want[i]) || f.Severity != tt.sev[i] {
					t.Errorf("finding %d: %s %q, want %s %q", i, f.Severity, f.Summary, tt.sev[i], tt.want[i])
				}
			}
		})
	}
	t.Run("http2-16-ssl", func(t *testing.T) {
		// nghttp tries [::1]:443 (refused), then 127.0.0.1:443.
		p := corpus(t, "wireshark-notes/http2-16-ssl.pcapng")
		fs := only(analyzeFile(t, p, corpus(t, "wireshark-notes/http2-16-ssl.keys.txt")), KindSYNRetransmit)
		if len(fs) != 1 || fs[0].Severity != Info || !hasFrame(fs[0], 2) || fs[0].Metrics["fallbacks"] != 1 {
			t.Errorf("want one info fallback finding with the RST of frame 2, got %+v", fs)
		}
	})
}

// TestCountedSYNs checks that capture duplicates (closer than the
// minimum gap after the previous SYN counted) are left out, and that a
// list without any is returned itself.
func TestCountedSYNs(t *testing.T) {
	const gap = 200 * time.Millisecond
	ms := time.Millisecond
	tests := []struct {
		name string
		at   []time.Duration
		want []time.Duration
	}{
		{"lone", []time.Duration{0}, []time.Duration{0}},
		{"retries", []time.Duration{0, time.Second, 3 * time.Second}, []time.Duration{0, time.Second, 3 * time.Second}},
		{"duplicate", []time.Duration{0, ms, time.Second}, []time.Duration{0, time.Second}},
		{"duplicates chained", []time.Duration{0, 150 * ms, 300 * ms, 450 * ms}, []time.Duration{0, 300 * ms}},
		{"duplicate last", []time.Duration{0, time.Second, time.Second + ms}, []time.Duration{0, time.Second}},
		{"exactly the gap", []time.Duration{0, gap}, []time.Duration{0, gap}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var syns []event.Ref
			for i, at := range tt.at {
				syns = append(syns, ref(uint64(i+1), at))
			}
			got := countedSYNs(syns, gap)
			var gotAt []time.Duration
			for _, s := range got {
				gotAt = append(gotAt, s.TS.Sub(syns[0].TS))
			}
			if fmt.Sprint(gotAt) != fmt.Sprint(tt.want) {
				t.Errorf("counted %v, want %v", gotAt, tt.want)
			}
			if shared := len(got) > 0 && &got[0] == &syns[0]; shared != (len(tt.at) == len(tt.want)) {
				t.Errorf("shares the list: %v, want %v", shared, len(tt.at) == len(tt.want))
			}
			if cap(got) != len(got) {
				t.Errorf("cap %d, len %d: not clipped", cap(got), len(got))
			}
		})
	}
}

// TestSYNRetransmitPastKeep checks syn_retransmit past synKeep attempts
// to one server, over several cuts: every attempt is counted once (the
// latest decided as they come, the rest at the end) and the first
// synKeep by id named, the same whatever order the connections finish
// in and however they are sharded. The attempts differ (one or two
// retransmissions) so that one counted twice or never shows.
func TestSYNRetransmitPastKeep(t *testing.T) {
	const n = 4*synKeep + 3001
	var conns []*Conn
	wantRetx := 0
	for i := range n {
		id := event.ConnID(i + 1)
		first := uint64(i)*10 + 1
		at := time.Duration(i) * time.Millisecond
		c := conn(id, fmt.Sprintf("10.%d.%d.%d:40000", i>>16&255, i>>8&255, i&255), "10.0.0.2:443", first, at, at+4*time.Second)
		// A SYN, one or two retransmissions a second apart, then the
		// SYN-ACK.
		retx := 1 + i%3/2
		wantRetx += retx
		c.SYNs = []event.Ref{ref(first, at)}
		for r := 1; r <= retx; r++ {
			c.SYNs = append(c.SYNs, ref(first+uint64(r), at+time.Duration(r)*time.Second))
		}
		c.SYNACKs = []event.Ref{ref(first+3, at+3*time.Second)}
		c.TCP.SYNs = len(c.SYNs)
		conns = append(conns, c)
	}
	shuffled := slices.Clone(conns)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	reversed := slices.Clone(conns)
	slices.Reverse(reversed)
	var want string
	for _, run := range []struct {
		name   string
		conns  []*Conn
		shards int
	}{{"in order", conns, 1}, {"shuffled", shuffled, 1}, {"reversed", reversed, 1}, {"shuffled, 3 shards", shuffled, 3}} {
		f := findKind(observeAll(run.conns, run.shards).Result(dissect.Stats{}).Findings, KindSYNRetransmit)
		if f == nil {
			t.Fatalf("%s: no syn_retransmit finding", run.name)
		}
		if got := f.Metrics["attempts"]; got != n {
			t.Errorf("%s: attempts = %v, want %d", run.name, got, n)
		}
		if got := f.Metrics["retransmitted_syns"]; got != wantRetx {
			t.Errorf("%s: retransmitted_syns = %v, want %d", run.name, got, wantRetx)
		}
		if len(f.Connections) != synKeep {
			t.Errorf("%s: %d connections named, want %d", run.name, len(f.Connections), synKeep)
		}
		for i, id := range f.Connections {
			if id != event.ConnID(i+1) {
				t.Fatalf("%s: connection %d named is %d, want the lowest ids in order", run.name, i, id)
			}
		}
		b, _ := json.Marshal(f)
		if want == "" {
			want = string(b)
		} else if string(b) != want {
			t.Errorf("%s: finding differs from the in-order run's", run.name)
		}
	}
}
