package tcp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
)

var (
	cli = netip.MustParseAddrPort("10.0.0.1:40000")
	srv = netip.MustParseAddrPort("10.0.0.2:80")
	t0  = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// seg is a scripted segment: direction, flags, seq/ack relative to ISNs
// 1000 (client) and 5000 (server), payload, window and time offset in ms.
type seg struct {
	dir   event.Dir
	flags layer.Flags
	seq   uint32
	ack   uint32
	data  string
	win   uint16
	ms    int
	ws    int8 // window scale option, 0 = none
	trunc int  // bytes of data cut by the snap length
	zero  bool // advertise a zero window (win 0 otherwise means 1000)
	// summed carries the payload's fingerprint in the segment, as Run
	// computes it ahead of the tracker.
	summed bool
}

const (
	syn    = layer.SYN
	ack    = layer.ACK
	fin    = layer.FIN | layer.ACK
	rst    = layer.RST
	psh    = layer.PSH | layer.ACK
	synack = layer.SYN | layer.ACK
)

// recorder is a StreamHandler that logs what it is told.
type recorder struct{ log []string }

func (r *recorder) Data(d event.Dir, b []byte, at event.Ref) {
	r.log = append(r.log, fmt.Sprintf("%s data %q @%d", d, b, at.Frame))
}
func (r *recorder) Gap(d event.Dir, n int, at event.Ref) {
	r.log = append(r.log, fmt.Sprintf("%s gap %d @%d", d, n, at.Frame))
}
func (r *recorder) Close(d event.Dir, reset bool, at event.Ref) {
	r.log = append(r.log, fmt.Sprintf("%s close reset=%v @%d", d, reset, at.Frame))
}

// play feeds segs to a fresh tracker and returns the finished connections,
// the per-frame analysis and the handler logs by connection.
func play(t testing.TB, opts Options, segs []seg) ([]*Conn, []Analysis, map[event.ConnID]*recorder) {
	t.Helper()
	recs := map[event.ConnID]*recorder{}
	var done []*Conn
	opts.NewHandler = func(c *Conn) StreamHandler {
		r := &recorder{}
		recs[c.ID] = r
		return r
	}
	opts.OnFinish = func(c *Conn) { done = append(done, c) }
	tr := NewTracker(opts)
	var flags []Analysis
	for i, g := range segs {
		s := toSegment(g, uint64(i+1))
		_, _, a := tr.Add(&s)
		flags = append(flags, a)
	}
	tr.Flush()
	return done, flags, recs
}

func toSegment(g seg, frame uint64) layer.Segment {
	s := layer.Segment{
		Ref:        event.Ref{Frame: frame, TS: t0.Add(time.Duration(g.ms) * time.Millisecond)},
		Flags:      g.flags,
		Win:        g.win,
		WScale:     -1,
		PayloadLen: len(g.data) + g.trunc,
		Payload:    []byte(g.data),
	}
	if s.Win == 0 && !g.zero {
		s.Win = 1000
	}
	if g.summed && len(s.Payload) > 0 {
		s.Sum, s.Summed = Fingerprint(s.Payload), true
	}
	if g.ws > 0 {
		s.WScale = g.ws
	}
	if g.dir == event.C2S {
		s.Src, s.Dst = cli, srv
		s.Seq, s.Ack = 1000+g.seq, 5000+g.ack
	} else {
		s.Src, s.Dst = srv, cli
		s.Seq, s.Ack = 5000+g.seq, 1000+g.ack
	}
	return s
}

const c2s, s2c = event.C2S, event.S2C

// handshake is a three-way handshake with ISNs 1000 and 5000.
var handshake = []seg{
	{dir: c2s, flags: syn, seq: 0},
	{dir: s2c, flags: synack, seq: 0, ack: 1, ms: 10},
	{dir: c2s, flags: ack, seq: 1, ack: 1, ms: 20},
}

func withHandshake(s ...seg) []seg { return append(append([]seg(nil), handshake...), s...) }

func TestReassembly(t *testing.T) {
	tests := []struct {
		name   string
		segs   []seg
		want   []string
		missed uint64
		anom   string
	}{{
		name: "in order",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "GET "},
			seg{dir: c2s, flags: psh, seq: 5, ack: 1, data: "/"},
			seg{dir: s2c, flags: psh, seq: 1, ack: 6, data: "200"},
			seg{dir: c2s, flags: fin, seq: 6, ack: 4},
			seg{dir: s2c, flags: fin, seq: 4, ack: 7},
		),
		want: []string{`c2s data "GET " @4`, `c2s data "/" @5`, `s2c data "200" @6`, `c2s close reset=false @7`, `s2c close reset=false @8`},
	}, {
		name: "out of order is reordered, each chunk keeps its frame",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 4, ack: 1, data: "def"},
			seg{dir: c2s, flags: psh, seq: 7, ack: 1, data: "ghi"},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc"},
		),
		want: []string{`c2s data "abc" @6`, `c2s data "def" @4`, `c2s data "ghi" @5`, `c2s close reset=false @6`, `s2c close reset=false @6`},
	}, {
		name: "retransmission is delivered once",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc"},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 300},
			seg{dir: c2s, flags: psh, seq: 2, ack: 1, data: "bcde", ms: 400},
		),
		want: []string{`c2s data "abc" @4`, `c2s data "de" @6`, `c2s close reset=false @6`, `s2c close reset=false @6`},
	}, {
		name: "conflicting retransmission: first seen wins and is counted",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc"},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "XYZ", ms: 300},
		),
		want: []string{`c2s data "abc" @4`, `c2s close reset=false @5`, `s2c close reset=false @5`},
		anom: "conflicting_overlap",
	}, {
		name: "conflicting overlap in the out-of-order buffer",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 4, ack: 1, data: "def"},
			seg{dir: c2s, flags: psh, seq: 3, ack: 1, data: "cXef"},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "ab"},
		),
		want: []string{`c2s data "ab" @6`, `c2s data "c" @5`, `c2s data "def" @4`, `c2s close reset=false @6`, `s2c close reset=false @6`},
		anom: "conflicting_overlap",
	}, {
		name: "bytes acknowledged but never captured become a gap",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc"},
			seg{dir: c2s, flags: psh, seq: 9, ack: 1, data: "xyz"},
			seg{dir: s2c, flags: ack, seq: 1, ack: 12},
		),
		want:   []string{`c2s data "abc" @4`, `c2s gap 5 @6`, `c2s data "xyz" @5`, `c2s close reset=false @6`, `s2c close reset=false @6`},
		missed: 5,
	}, {
		name: "acknowledged with nothing buffered",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc"},
			seg{dir: s2c, flags: ack, seq: 1, ack: 10},
			seg{dir: c2s, flags: psh, seq: 10, ack: 1, data: "z"},
		),
		want:   []string{`c2s data "abc" @4`, `c2s gap 6 @5`, `c2s data "z" @6`, `c2s close reset=false @6`, `s2c close reset=false @6`},
		missed: 6,
	}, {
		name: "snap length cut is a gap",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "ab", trunc: 3},
			seg{dir: c2s, flags: psh, seq: 6, ack: 1, data: "f"},
		),
		want:   []string{`c2s data "ab" @4`, `c2s gap 3 @4`, `c2s data "f" @5`, `c2s close reset=false @5`, `s2c close reset=false @5`},
		missed: 3,
		anom:   "snaplen_truncated",
	}, {
		name: "reset flushes the buffer with gaps and closes both sides",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 5, ack: 1, data: "efg"},
			seg{dir: s2c, flags: rst | layer.ACK, seq: 1, ack: 1},
			seg{dir: c2s, flags: psh, seq: 8, ack: 1, data: "late"},
		),
		want:   []string{`s2c close reset=true @5`, `c2s gap 4 @5`, `c2s data "efg" @4`, `c2s close reset=true @5`},
		missed: 4,
	}, {
		name: "capture starts mid-stream",
		segs: []seg{
			{dir: c2s, flags: psh, seq: 100, ack: 50, data: "mid"},
			{dir: s2c, flags: psh, seq: 50, ack: 103, data: "ok"},
		},
		want: []string{`c2s data "mid" @1`, `s2c data "ok" @2`, `c2s close reset=false @2`, `s2c close reset=false @2`},
	}, {
		name: "FIN waits for missing data, then the end of input reports the gap",
		segs: withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "a"},
			seg{dir: c2s, flags: fin, seq: 4, ack: 1, data: "d"},
		),
		want:   []string{`c2s data "a" @4`, `c2s gap 2 @5`, `c2s data "d" @5`, `c2s close reset=false @5`, `s2c close reset=false @5`},
		missed: 2,
	}}
	for _, tt := range tests {
		for _, summed := range []bool{false, true} {
			name, segs := tt.name, tt.segs
			if summed {
				// The same with the fingerprints computed ahead, as Run
				// does.
				name += " (summed)"
				segs = append([]seg(nil), segs...)
				for i := range segs {
					segs[i].summed = true
				}
			}
			t.Run(name, func(t *testing.T) {
				conns, _, recs := play(t, Options{}, segs)
				if len(conns) != 1 {
					t.Fatalf("got %d connections, want 1", len(conns))
				}
				got := recs[conns[0].ID].log
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("handler saw\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
				}
				if conns[0].MissedBytes != tt.missed {
					t.Errorf("missed_bytes = %d, want %d", conns[0].MissedBytes, tt.missed)
				}
				if tt.anom != "" && conns[0].Anomalies[tt.anom] == 0 {
					t.Errorf("anomaly %s not counted: %v", tt.anom, conns[0].Anomalies)
				}
			})
		}
	}
}

func TestBufferCap(t *testing.T) {
	segs := withHandshake()
	// A hole at byte 1, then 5 chunks of 10 bytes beyond it; the cap of 200
	// bytes, each chunk charged 64 bytes of bookkeeping too, forces the hole
	// to be given up as a gap on the third chunk.
	for i := range 5 {
		segs = append(segs, seg{dir: c2s, flags: psh, seq: uint32(11 + 10*i), ack: 1, data: strings.Repeat(string(rune('a'+i)), 10)})
	}
	conns, _, recs := play(t, Options{MaxBufferPerConn: 200}, segs)
	log := recs[conns[0].ID].log
	if len(log) == 0 || log[0] != "c2s gap 10 @6" {
		t.Fatalf("first event %v, want the 10-byte hole given up at frame 6", log)
	}
	if conns[0].Anomalies["reassembly_buffer_overflow"] == 0 {
		t.Errorf("overflow not counted: %v", conns[0].Anomalies)
	}
	var data int
	for _, l := range log {
		if strings.Contains(l, " data ") {
			data++
		}
	}
	if data != 5 {
		t.Errorf("delivered %d chunks, want 5: %v", data, log)
	}
}

func TestPortReuse(t *testing.T) {
	segs := withHandshake(
		seg{dir: c2s, flags: fin, seq: 1, ack: 1, ms: 30},
		seg{dir: s2c, flags: fin, seq: 1, ack: 2, ms: 31},
		seg{dir: c2s, flags: ack, seq: 2, ack: 2, ms: 32},
		seg{dir: c2s, flags: syn, seq: 0, ms: 1000},      // same ISN: a retransmitted SYN
		seg{dir: c2s, flags: syn, seq: 777777, ms: 2000}, // new ISN: a new connection
		seg{dir: s2c, flags: synack, seq: 90000, ack: 777778, ms: 2001},
	)
	conns, flags, _ := play(t, Options{}, segs)
	if len(conns) != 2 {
		t.Fatalf("got %d connections, want 2", len(conns))
	}
	if !flags[6].Has(Retransmission) {
		t.Errorf("SYN with the same ISN: flags %v, want retransmission", flags[6])
	}
	if !flags[7].Has(ReusedPorts) {
		t.Errorf("SYN with a new ISN: flags %v, want reused_ports", flags[7])
	}
	if c := conns[1]; c.ID != 1 || c.FirstFrame != 8 || c.Packets.C2S != 1 || c.Packets.S2C != 1 {
		t.Errorf("second connection %+v", c)
	}
	if c := conns[0]; c.ConnState != "SF" || c.Close != CloseFINClient || c.SYNs != 2 {
		t.Errorf("first connection state %s close %s syns %d", c.ConnState, c.Close, c.SYNs)
	}
}

func TestAnalysisFlags(t *testing.T) {
	tests := []struct {
		name  string
		segs  []seg
		frame int // 1-based frame to check
		want  Analysis
	}{
		{"retransmission after RTO", withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 300}), 5, Retransmission},
		{"out of order within the initial RTT", withHandshake(
			seg{dir: c2s, flags: psh, seq: 4, ack: 1, data: "def", ms: 30},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 31}), 5, OutOfOrder},
		{"previous segment not captured", withHandshake(
			seg{dir: c2s, flags: psh, seq: 4, ack: 1, data: "def", ms: 30}), 4, LostSegment},
		{"ACKed unseen segment", withHandshake(
			seg{dir: s2c, flags: ack, seq: 1, ack: 50, ms: 30}), 4, AckLostSegment},
		{"duplicate ACK", withHandshake(
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, ms: 30},
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, ms: 31}), 5, DuplicateACK},
		{"zero window", withHandshake(
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, zero: true, ms: 30}), 4, ZeroWindow},
		{"keep-alive", withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "a", ms: 30},
			seg{dir: c2s, flags: ack, seq: 1, ack: 1, ms: 60000}), 5, KeepAlive},
		{"window full", []seg{
			{dir: c2s, flags: syn, seq: 0, win: 4},
			{dir: s2c, flags: synack, seq: 0, ack: 1, win: 4, ms: 1},
			{dir: c2s, flags: ack, seq: 1, ack: 1, win: 4, ms: 2},
			{dir: s2c, flags: ack, seq: 1, ack: 1, win: 4, ms: 3},
			{dir: c2s, flags: psh, seq: 1, ack: 1, win: 4, data: "abcd", ms: 4}}, 5, WindowFull},
		{"fast retransmission after two duplicate ACKs", withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30},
			seg{dir: c2s, flags: psh, seq: 4, ack: 1, data: "def", ms: 31},
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, ms: 100},
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, ms: 101},
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, ms: 102},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 103}), 9, FastRetransmission},
		{"the latest segment captured twice", withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30}), 5, Retransmission | CaptureDuplicate},
		{"a segment captured twice after its ACKs captured thrice", withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30},
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, ms: 30},
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, ms: 30},
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, ms: 30},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30}), 8, FastRetransmission | CaptureDuplicate},
		{"the latest segment again after 2 ms is a retransmission, even within a slow handshake's RTT", []seg{
			{dir: c2s, flags: syn, seq: 0},
			{dir: s2c, flags: synack, seq: 0, ack: 1, ms: 450},
			{dir: c2s, flags: ack, seq: 1, ack: 1, ms: 451},
			{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 500},
			{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 710}}, 5, Retransmission},
		{"an older segment again within the RTT is out of order, not a duplicate", withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30},
			seg{dir: c2s, flags: psh, seq: 4, ack: 1, data: "def", ms: 30},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30}), 6, OutOfOrder},
		{"spurious retransmission of acknowledged data", withHandshake(
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 30},
			seg{dir: s2c, flags: ack, seq: 1, ack: 4, ms: 40},
			seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "abc", ms: 300}), 6, SpuriousRetransmission},
	}
	if got := (Retransmission | CaptureDuplicate).String(); got != "retransmission" {
		t.Errorf("String names %q: CaptureDuplicate is not a tshark flag", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, flags, _ := play(t, Options{}, tt.segs)
			if got := flags[tt.frame-1]; got != tt.want {
				t.Errorf("frame %d flags %q, want %q", tt.frame, got, tt.want)
			}
		})
	}
}

func TestConnState(t *testing.T) {
	tests := []struct {
		name    string
		segs    []seg
		state   string
		history string
		close   Close
	}{
		{"unanswered SYN", []seg{{dir: c2s, flags: syn}, {dir: c2s, flags: syn, ms: 1000}}, "S0", "S", CloseOpen},
		{"rejected", []seg{{dir: c2s, flags: syn}, {dir: s2c, flags: rst | layer.ACK, ack: 1}}, "REJ", "Sr", CloseRSTServer},
		{"established, still open", withHandshake(seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "x"}), "S1", "ShAD", CloseOpen},
		{"normal close", withHandshake(seg{dir: s2c, flags: fin, seq: 1, ack: 1}, seg{dir: c2s, flags: fin, seq: 1, ack: 2}), "SF", "ShAfF", CloseFINServer},
		{"client reset", withHandshake(seg{dir: c2s, flags: rst, seq: 1}), "RSTO", "ShAR", CloseRSTClient},
		{"server half close", withHandshake(seg{dir: s2c, flags: fin, seq: 1, ack: 1}), "S3", "ShAf", CloseFINServer},
		{"midstream", []seg{{dir: c2s, flags: psh, seq: 10, ack: 10, data: "x"}}, "OTH", "D", CloseOpen},
		{"zero window and retransmissions on a log scale", withHandshake(
			seg{dir: s2c, flags: ack, seq: 1, ack: 1, zero: true, ms: 30}), "S1", "ShAaw", CloseOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns, _, _ := play(t, Options{}, tt.segs)
			c := conns[0]
			if c.ConnState != tt.state || c.History != tt.history || c.Close != tt.close {
				t.Errorf("got state %s history %q close %s, want %s %q %s", c.ConnState, c.History, c.Close, tt.state, tt.history, tt.close)
			}
		})
	}
}

func TestHistoryLogScale(t *testing.T) {
	var h history
	for range 100 {
		h.logLetter(event.S2C, histLogRetrans, 't')
	}
	if got := h.String(); got != "ttt" {
		t.Errorf("100 retransmissions give %q, want ttt (1, 10, 100)", got)
	}
}

func TestIdleClosedConnectionsAreFreed(t *testing.T) {
	var finished []event.ConnID
	tr := NewTracker(Options{ClosedTimeout: time.Minute, OnFinish: func(c *Conn) { finished = append(finished, c.ID) }})
	segs := withHandshake(seg{dir: c2s, flags: rst, seq: 1, ms: 30})
	for i, g := range segs {
		s := toSegment(g, uint64(i+1))
		tr.Add(&s)
	}
	if tr.Active() != 1 {
		t.Fatalf("active = %d before the timeout", tr.Active())
	}
	late := toSegment(seg{dir: c2s, flags: syn, seq: 0, ms: 2 * 60 * 1000}, 9)
	late.Src = netip.MustParseAddrPort("10.0.0.9:1234")
	tr.Add(&late)
	if len(finished) != 1 || finished[0] != 0 || tr.Active() != 1 {
		t.Errorf("finished %v active %d, want the reset connection freed", finished, tr.Active())
	}
}

func TestMaxConnsEvictsLeastRecent(t *testing.T) {
	var finished []event.ConnID
	tr := NewTracker(Options{MaxConns: 2, OnFinish: func(c *Conn) { finished = append(finished, c.ID) }})
	for i := range 3 {
		s := toSegment(seg{dir: c2s, flags: syn, ms: i}, uint64(i+1))
		s.Src = netip.AddrPortFrom(cli.Addr(), uint16(50000+i))
		tr.Add(&s)
	}
	if len(finished) != 1 || finished[0] != 0 || tr.Active() != 2 {
		t.Errorf("finished %v active %d, want connection 0 evicted", finished, tr.Active())
	}
}

// TestFuzzBytesBeyondFINAreReleased is the regression test for the
// FuzzTracker input 8a24671f925116fc: bytes buffered beyond a FIN were never
// returned to the shared buffer budget.
func TestFuzzBytesBeyondFINAreReleased(t *testing.T) {
	tr := NewTracker(Options{})
	segs := withHandshake(
		seg{dir: c2s, flags: fin, seq: 1, ack: 1},
		seg{dir: c2s, flags: psh, seq: 10, ack: 1, data: "beyond"},
	)
	for i, g := range segs {
		s := toSegment(g, uint64(i+1))
		tr.Add(&s)
	}
	tr.Flush()
	if tr.r.used != 0 {
		t.Errorf("%d bytes still counted as buffered after Flush", tr.r.used)
	}
}

func TestIdleOpenConnectionsAreFinished(t *testing.T) {
	var finished []event.ConnID
	tr := NewTracker(Options{IdleTimeout: 10 * time.Minute, OnFinish: func(c *Conn) { finished = append(finished, c.ID) }})
	for i, g := range handshake {
		s := toSegment(g, uint64(i+1))
		tr.Add(&s)
	}
	// Another connection keeps packets flowing for 15 minutes, one a
	// minute: the clock catches up and the silent one is finished.
	other := netip.MustParseAddrPort("10.0.0.7:999")
	for m := 1; m <= 15; m++ {
		s := toSegment(seg{dir: c2s, flags: ack, ms: m * 60000}, uint64(3+m))
		s.Src = other
		tr.Add(&s)
	}
	if len(finished) != 1 || finished[0] != 0 {
		t.Errorf("finished %v, want the idle connection 0", finished)
	}
}

// TestWildTimestampDoesNotExpireConnections: one packet stamped two years
// ahead (a corrupt or hostile capture) must not time out the others.
func TestWildTimestampDoesNotExpireConnections(t *testing.T) {
	var finished int
	tr := NewTracker(Options{OnFinish: func(*Conn) { finished++ }})
	segs := withHandshake(seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "a", ms: 30})
	for i, g := range segs {
		s := toSegment(g, uint64(i+1))
		tr.Add(&s)
	}
	wild := toSegment(seg{dir: c2s, flags: ack, seq: 2, ack: 1}, 10)
	wild.Ref.TS = t0.Add(2 * 365 * 24 * time.Hour)
	tr.Add(&wild)
	back := toSegment(seg{dir: c2s, flags: psh, seq: 2, ack: 1, data: "b", ms: 40}, 11)
	c, _, _ := tr.Add(&back)
	if finished != 0 || c.ID != 0 {
		t.Errorf("%d connections finished, segment after the wild one on connection %d; want none and 0", finished, c.ID)
	}
}

// TestEarlyResetThenRetriedHandshake: a challenge ACK with an unrelated
// number and a RST before any payload, then a retransmitted SYN on the same
// connection (sv/tls-subjectaltname): the data that follows is delivered.
// The retried SYN comes 13 s after the RST in sv/tls-subjectaltname, past
// StreamGrace: a reset before any payload does not end the streams.
func TestEarlyResetThenRetriedHandshake(t *testing.T) {
	for _, retry := range []int{3000, 13000} {
		segs := []seg{
			{dir: c2s, flags: syn},
			{dir: s2c, flags: ack, seq: 1, ack: 900000000, ms: 10},
			{dir: c2s, flags: rst, seq: 900000000, ms: 11},
			{dir: c2s, flags: syn, ms: retry},
			{dir: s2c, flags: synack, seq: 0, ack: 1, ms: retry + 10},
			{dir: c2s, flags: psh, seq: 1, ack: 1, data: "hello", ms: retry + 20},
		}
		conns, _, recs := play(t, Options{}, segs)
		if len(conns) != 1 {
			t.Fatalf("retry after %d ms: %d connections, want 1", retry, len(conns))
		}
		want := []string{`c2s data "hello" @6`, `c2s close reset=false @6`, `s2c close reset=false @6`}
		if got := recs[0].log; strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("retry after %d ms: handler saw %q, want %q", retry, got, want)
		}
		if conns[0].MissedBytes != 0 {
			t.Errorf("retry after %d ms: missed_bytes %d after a challenge ACK, want 0", retry, conns[0].MissedBytes)
		}
	}
}

// graceSegs closes a connection by FIN from both sides with a hole ("cd")
// in the client's stream, then, 6 s later, a packet of another connection
// moves the clock past StreamGrace, and then the hole's bytes arrive.
var graceSegs = withHandshake(
	seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "ab", ms: 30},
	seg{dir: c2s, flags: psh, seq: 5, ack: 1, data: "ef", ms: 31},
	seg{dir: c2s, flags: fin, seq: 7, ack: 1, ms: 32},
	seg{dir: s2c, flags: fin, seq: 1, ack: 3, ms: 40},
	seg{dir: c2s, flags: ack, seq: 8, ack: 2, ms: 50},
	seg{ms: 6100}, // another connection: see playGrace
	seg{dir: c2s, flags: psh, seq: 3, ack: 2, data: "cd", ms: 7000},
)

// playGrace plays graceSegs with grace as StreamGrace and returns the
// finished connection and one log of the handler's calls, OnStreamsDone
// and OnFinish.
func playGrace(t *testing.T, grace time.Duration) (*Conn, []string) {
	t.Helper()
	r := &recorder{}
	var done *Conn
	opts := Options{
		StreamGrace: grace,
		NewHandler: func(c *Conn) StreamHandler {
			if c.ID == 0 {
				return r
			}
			return nil
		},
		OnStreamsDone: func(c *Conn) {
			if c.ID == 0 {
				r.log = append(r.log, fmt.Sprintf("streams done @%d", c.LastFrame))
			}
		},
		OnFinish: func(c *Conn) {
			if c.ID == 0 {
				r.log = append(r.log, fmt.Sprintf("finish @%d", c.LastFrame))
				done = c
			}
		},
	}
	tr := NewTracker(opts)
	for i, g := range graceSegs {
		s := toSegment(g, uint64(i+1))
		if g.flags == 0 {
			s.Src, s.Dst, s.Flags = netip.MustParseAddrPort("10.0.0.9:1234"), srv, layer.SYN
		}
		tr.Add(&s)
	}
	tr.Flush()
	return done, r.log
}

// TestStreamGraceEndsStreamsOfClosedConnection: StreamGrace after both
// FINs the hole still pending is delivered as a gap, the streams are
// closed and OnStreamsDone called; the hole's bytes arriving later are
// accounted to the connection but not delivered, counted as
// late_payload_bytes.
func TestStreamGraceEndsStreamsOfClosedConnection(t *testing.T) {
	c, log := playGrace(t, 0)
	want := []string{
		`c2s data "ab" @4`,
		`s2c close reset=false @7`,
		`c2s gap 2 @8`,
		`c2s data "ef" @5`,
		`c2s close reset=false @8`,
		`streams done @8`,
		`finish @10`,
	}
	if strings.Join(log, "\n") != strings.Join(want, "\n") {
		t.Errorf("saw\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
	if c.Anomalies["late_payload_bytes"] != 2 || c.Bytes.C2S != 6 || c.MissedBytes != 2 || c.Packets.C2S != 7 {
		t.Errorf("anomalies %v, bytes %d, missed %d, packets %d; want late_payload_bytes 2, 6, 2, 7",
			c.Anomalies, c.Bytes.C2S, c.MissedBytes, c.Packets.C2S)
	}
}

// TestNegativeStreamGraceKeepsHandler: without StreamGrace the late bytes
// fill the hole, and the streams end when the connection finishes.
func TestNegativeStreamGraceKeepsHandler(t *testing.T) {
	c, log := playGrace(t, -1)
	want := []string{
		`c2s data "ab" @4`,
		`s2c close reset=false @7`,
		`c2s data "cd" @10`,
		`c2s data "ef" @5`,
		`c2s close reset=false @10`,
		`streams done @10`,
		`finish @10`,
	}
	if strings.Join(log, "\n") != strings.Join(want, "\n") {
		t.Errorf("saw\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
	if c.Anomalies["late_payload_bytes"] != 0 || c.MissedBytes != 0 {
		t.Errorf("anomalies %v, missed %d; want none", c.Anomalies, c.MissedBytes)
	}
}

func TestSegmentBeyondAnyWindowIsNotAGap(t *testing.T) {
	segs := withHandshake(
		seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "a"},
		seg{dir: c2s, flags: psh, seq: 1 << 31, ack: 1, data: "bogus"},
		seg{dir: c2s, flags: psh, seq: 2, ack: 1, data: "b"},
	)
	conns, _, recs := play(t, Options{}, segs)
	c := conns[0]
	if c.MissedBytes != 0 || c.Anomalies["segment_out_of_window"] != 1 {
		t.Errorf("missed %d anomalies %v, want 0 and one segment_out_of_window", c.MissedBytes, c.Anomalies)
	}
	if got := recs[0].log[:2]; got[0] != `c2s data "a" @4` || got[1] != `c2s data "b" @6` {
		t.Errorf("handler saw %q", got)
	}
}

// TestMaxClosedKeepsTombstones: past MaxClosed the oldest closed
// connection is finished at once; a SYN reusing its 4-tuple with another
// initial sequence number is still flagged ReusedPorts, within
// ClosedTimeout; another late packet starts a new connection; and the
// tombstones go at ClosedTimeout.
func TestMaxClosedKeepsTombstones(t *testing.T) {
	var finished []event.ConnID
	tr := NewTracker(Options{MaxClosed: 1, ClosedTimeout: time.Minute, OnFinish: func(c *Conn) { finished = append(finished, c.ID) }})
	frame := uint64(0)
	add := func(g seg, port uint16, isn uint32) (*Conn, Analysis) {
		frame++
		s := toSegment(g, frame)
		if g.dir == c2s {
			s.Src, s.Seq = netip.AddrPortFrom(cli.Addr(), port), s.Seq-1000+isn
		} else {
			s.Dst, s.Ack = netip.AddrPortFrom(cli.Addr(), port), s.Ack-1000+isn
		}
		c, _, a := tr.Add(&s)
		return c, a
	}
	// Three connections, each reset after its handshake.
	for i := range 3 {
		for _, g := range withHandshake(seg{dir: c2s, flags: rst, seq: 1, ms: 30}) {
			g.ms += 100 * i
			add(g, uint16(50000+i), 1000)
		}
	}
	if len(finished) != 2 || finished[0] != 0 || finished[1] != 1 || tr.Active() != 1 || tr.tombs.n != 2 {
		t.Fatalf("finished %v, active %d, tombstones %d; want 0 and 1 finished, one kept, two tombstones", finished, tr.Active(), tr.tombs.n)
	}
	// Port reuse on connection 0's 4-tuple: a new connection, flagged.
	if c, a := add(seg{dir: c2s, flags: syn, ms: 1000}, 50000, 7000); c.ID != 3 || a&ReusedPorts == 0 {
		t.Errorf("SYN with a new ISN: connection %d, analysis %v; want 3, reused_ports", c.ID, a)
	}
	// A late ACK on connection 1's: a new connection, not flagged.
	if c, a := add(seg{dir: c2s, flags: ack, seq: 1, ack: 1, ms: 1000}, 50001, 1000); c.ID != 4 || a&ReusedPorts != 0 {
		t.Errorf("late ACK: connection %d, analysis %v; want 4, no reused_ports", c.ID, a)
	}
	// Connection 2 was retired when 3 came: its tombstone is left.
	if tr.tombs.n != 1 || len(finished) != 3 {
		t.Errorf("%d tombstones, finished %v; want 1, 0 to 2", tr.tombs.n, finished)
	}
	tr.Sweep(t0.Add(2 * time.Minute))
	if tr.tombs.n != 0 {
		t.Errorf("%d tombstones after ClosedTimeout, want none", tr.tombs.n)
	}
}

// TestTombRing: the ring grows to its maximum, keeps the newest
// tombstones in order once full, finds them by either endpoint first, and
// drops dead ones as the oldest go.
func TestTombRing(t *testing.T) {
	ts := tombs{max: 2000}
	add := func(i int) { ts.add(tombEntry{cli: uint64(2*i + 1), srv: uint64(2*i + 2), sec: int64(i)}) }
	for i := range 3000 {
		add(i)
	}
	if ts.n != 2000 || len(ts.ring) != 2000 {
		t.Fatalf("%d tombstones in a ring of %d, want 2000, 2000", ts.n, len(ts.ring))
	}
	for _, i := range []int{0, 999} {
		if ts.get(uint64(2*i+1), uint64(2*i+2)) >= 0 {
			t.Errorf("tombstone %d still found past the maximum", i)
		}
	}
	for _, i := range []int{1000, 2500, 2999} {
		k := ts.get(uint64(2*i+2), uint64(2*i+1))
		if k < 0 || ts.ring[k].sec != int64(i) {
			t.Fatalf("tombstone %d not found", i)
		}
		ts.unlink(k)
		if ts.get(uint64(2*i+1), uint64(2*i+2)) >= 0 {
			t.Errorf("tombstone %d found once dead", i)
		}
	}
	if e := ts.oldest(); ts.n != 1997 || e == nil || e.sec != 1001 {
		t.Errorf("%d tombstones, oldest %v; want 1997, 1001 (1000 dead)", ts.n, e)
	}
	add(3000)
	if ts.n != 1998 || ts.get(6001, 6002) < 0 || ts.get(2003, 2004) < 0 {
		t.Errorf("%d tombstones after one more; want 1998 with 1001 and 3000", ts.n)
	}
}

// logDiff describes the first difference between two trackers' logs:
// the first line that differs, else their lengths; "" when they are the
// same.
func logDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("line %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d lines, want %d", len(got), len(want))
	}
	return ""
}
