package tcp

import (
	"net/netip"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// Pair holds one count per direction.
type Pair = event.Pair

// Close says how a connection ended: who closed (FIN) or reset (RST) first.
type Close string

// Close values.
const (
	CloseOpen      Close = "open"
	CloseFINClient Close = "fin_client"
	CloseFINServer Close = "fin_server"
	CloseRSTClient Close = "rst_client"
	CloseRSTServer Close = "rst_server"
)

// WindowScale holds the window-scale shift each side announced in its SYN,
// or nil where it is unknown (no SYN seen from that side). A side that
// negotiated no scaling has 0.
type WindowScale struct {
	// C2S is the client's shift (applies to the windows the client sends).
	C2S *int `json:"c2s"`
	// S2C is the server's shift.
	S2C *int `json:"s2c"`
}

// Summary is the record of one TCP connection, as `h2scope conns --json`
// prints it. Copy it (a few hundred bytes) to keep a connection's record
// without its tracking state.
type Summary struct {
	// ID is the 0-based connection number in order of first frame, as
	// Wireshark's tcp.stream.
	ID event.ConnID `json:"id"`
	// Client is the endpoint that opened the connection ("ip:port").
	Client netip.AddrPort `json:"client"`
	// Server is the endpoint that accepted it.
	Server netip.AddrPort `json:"server"`
	// Proto is the application protocol recognised from the connection's
	// content ("http2", "http1", "tls"), empty when none was.
	Proto string `json:"proto,omitempty"`
	// ClientGuessed is true when no SYN or SYN-ACK was seen and the client
	// was chosen by port numbers.
	ClientGuessed bool `json:"client_guessed,omitempty"`
	// FirstFrame is the frame number of the connection's first packet.
	FirstFrame uint64 `json:"first_frame"`
	// LastFrame is the frame number of its last packet.
	LastFrame uint64 `json:"last_frame"`
	// FirstTS and LastTS are the capture times of the first and last packets.
	FirstTS time.Time `json:"first_ts"`
	LastTS  time.Time `json:"last_ts"`
	// DurationMS is LastTS-FirstTS in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// Packets counts TCP segments per direction.
	Packets Pair `json:"packets"`
	// Bytes counts TCP payload bytes per direction as the IP headers state
	// them (Wireshark's tcp.len), retransmissions included.
	Bytes Pair `json:"bytes"`
	// ConnState is Zeek's conn_state code (S0, S1, SF, REJ, S2, S3, RSTO,
	// RSTR, RSTOS0, RSTRH, SH, SHR, OTH).
	ConnState string `json:"conn_state"`
	// History is Zeek's history string: upper case for the client, lower
	// case for the server; s SYN, h SYN-ACK, a pure ACK, d data, f FIN,
	// r RST, g gap, t retransmission, w zero window, i inconsistent flags,
	// q multi-flag packet, ^ direction flipped by heuristic. g, t and w
	// repeat at 10, 100, 1000... occurrences.
	History string `json:"history"`
	// Close says who ended the connection first: fin_client, fin_server,
	// rst_client, rst_server, or open.
	Close Close `json:"close"`
	// HandshakeRTTMS is the time from the last SYN to the ACK that completed
	// the three-way handshake (Wireshark's tcp.analysis.initial_rtt), in
	// milliseconds; null when the handshake was not seen.
	HandshakeRTTMS *float64 `json:"handshake_rtt_ms"`
	// SYNs counts SYN segments sent by the client (retransmitted SYNs
	// included); SYNACKs those sent by the server.
	SYNs    int `json:"syns"`
	SYNACKs int `json:"synacks"`
	// WindowScale is each side's negotiated window-scale shift.
	WindowScale WindowScale `json:"window_scale"`
	// Retransmissions counts segments tshark marks
	// tcp.analysis.retransmission (fast and spurious included).
	Retransmissions int `json:"retransmissions"`
	// FastRetransmissions, SpuriousRetransmissions, OutOfOrder,
	// LostSegments, AckLostSegments, DupACKs, ZeroWindowProbes, WindowFull,
	// WindowUpdates and KeepAlives count segments with the tcp.analysis flag
	// of the same name.
	FastRetransmissions     int `json:"fast_retransmissions"`
	SpuriousRetransmissions int `json:"spurious_retransmissions"`
	OutOfOrder              int `json:"out_of_order"`
	LostSegments            int `json:"lost_segments"`
	AckLostSegments         int `json:"ack_lost_segments"`
	DupACKs                 int `json:"dup_acks"`
	// ZeroWindows counts segments advertising a zero receive window.
	ZeroWindows      int `json:"zero_windows"`
	ZeroWindowProbes int `json:"zero_window_probes"`
	WindowFull       int `json:"window_full"`
	WindowUpdates    int `json:"window_updates"`
	KeepAlives       int `json:"keep_alives"`
	// StreamBytes counts each direction's reassembled stream: bytes
	// delivered in order plus bytes lost to gaps, each byte once however
	// often it was retransmitted (Zeek's orig_bytes and resp_bytes).
	StreamBytes Pair `json:"stream_bytes"`
	// MissedBytes counts payload bytes the capture lost (reassembly gaps),
	// as Zeek's missed_bytes.
	MissedBytes uint64 `json:"missed_bytes"`
	// Anomalies counts named irregularities (snake_case tokens).
	Anomalies map[string]int `json:"anomalies,omitempty"`
}

// Conn is one TCP connection the Tracker follows: its Summary, up to date
// with the packets seen (final once the connection is handed to
// Options.OnFinish), and the tracking state.
//
// The tracking state lives apart from the Summary: a connection that
// waits with nothing to deliver (closed and its streams ended, waiting
// out ClosedTimeout; or one that has carried no payload, such as an
// unanswered SYN) keeps it encoded in about a hundred bytes (see
// compact), and it is decoded again when a packet arrives.
type Conn struct {
	Summary

	// User is the caller's: the Tracker never reads or changes it. The
	// dissect package keeps the connection's dissectors there.
	User any

	// state is the tracking state; nil while the connection is compact
	// (rec holds it then) and once it is finished.
	*state
	rec  []byte
	done bool
	// streamsDone is set once the streams were ended and the handler let
	// go (OnStreamsDone); graceQueued once c waits for StreamGrace (in
	// Tracker.grace).
	streamsDone bool
	graceQueued bool
	// youngQueued is set while c is in Tracker.young.
	youngQueued bool
	// gen counts the connections this Conn was before (see recycle):
	// the StreamGrace queue and the young ring note it with c, and skip
	// an entry whose connection finished and the Conn went on to another.
	gen    uint32
	cliSet bool // see cliHash
	list   *lru
	prev   *Conn // in list, less recently active
	next   *Conn
	hash   uint64 // of the endpoints, in the connection table
	// cliHash is the hash (table.hashEnd) of Client, if cliSet, as
	// newConn had it: hash less it is Server's.
	cliHash uint64
}

// state is a connection's tracking state: what the analysis of its next
// packets and its reassembly need.
type state struct {
	seq     [2]seqInfo
	streams [2]stream
	// handler receives the streams' bytes: nil until it is first needed
	// (Tracker.handler asks Options.NewHandler then), discard once the
	// streams ended or when there is none.
	handler StreamHandler
	hist    history
	synTS   time.Time // most recent SYN (no ACK), for the initial RTT
	irtt    time.Duration
	sawSYN  [2]bool // a SYN (client) / SYN-ACK (server) was seen
	fin     [2]bool
	rst     [2]bool
	ep      [2]epState
	lastRef event.Ref
	// earlyRST is set by a RST before any payload: the streams stay open
	// in case the handshake is retried on the same connection.
	earlyRST bool
	// first is the connection's first segment, if firstSet: the state
	// was made by initConn for it (not decoded). While it is the only
	// segment, it and the Conn's endpoints, ID and last frame are all
	// the state and the summary are made of (see replay).
	first    firstSeg
	firstSet bool
}

// Anomaly counts one occurrence of the named irregularity.
func (s *Summary) Anomaly(name string) {
	if s.Anomalies == nil {
		s.Anomalies = make(map[string]int)
	}
	s.Anomalies[name]++
}

// anomalyN counts n occurrences (or units) of the named irregularity.
func (s *Summary) anomalyN(name string, n int) {
	if s.Anomalies == nil {
		s.Anomalies = make(map[string]int)
	}
	s.Anomalies[name] += n
}

// endpoint returns the sender of dir.
func (c *Conn) endpoint(dir event.Dir) netip.AddrPort {
	if dir == event.C2S {
		return c.Client
	}
	return c.Server
}

// count adds a segment's analysis flags to the summary counters.
func (c *Conn) count(a Analysis) {
	if a.IsRetransmission() {
		c.Retransmissions++
	}
	inc := func(f Analysis, n *int) {
		if a&f != 0 {
			*n++
		}
	}
	inc(FastRetransmission, &c.FastRetransmissions)
	inc(SpuriousRetransmission, &c.SpuriousRetransmissions)
	inc(OutOfOrder, &c.OutOfOrder)
	inc(LostSegment, &c.LostSegments)
	inc(AckLostSegment, &c.AckLostSegments)
	inc(DuplicateACK, &c.DupACKs)
	inc(ZeroWindow, &c.ZeroWindows)
	inc(ZeroWindowProbe, &c.ZeroWindowProbes)
	inc(WindowFull, &c.WindowFull)
	inc(WindowUpdate, &c.WindowUpdates)
	inc(KeepAlive, &c.KeepAlives)
}

// finalize fills the derived summary fields. It is called when the
// streams end and again when the connection finishes; what did not change
// in between is not allocated again (copies of the Summary taken between
// the two share it, and it is never written through). History strings
// come from names.
func (c *Conn) finalize(names *interner) {
	c.DurationMS = float64(c.LastTS.Sub(c.FirstTS)) / float64(time.Millisecond)
	if c.irtt != 0 {
		v := float64(c.irtt) / float64(time.Millisecond)
		if c.HandshakeRTTMS == nil || *c.HandshakeRTTMS != v {
			c.HandshakeRTTMS = &v
		}
	}
	c.WindowScale.C2S = shiftOf(c.seq[0].winScale)
	c.WindowScale.S2C = shiftOf(c.seq[1].winScale)
	if c.History != string(c.hist.b) {
		c.History = names.str(c.hist.b)
	}
	c.ConnState = c.connState()
	if c.Close == "" {
		c.Close = CloseOpen
	}
}

// shifts holds the window-scale shifts WindowScale points to: a
// summary's fields point into it rather than to values of their own.
var shifts = [15]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

// shiftOf returns the WindowScale value of a side's winScale state.
func shiftOf(ws int8) *int {
	switch {
	case ws >= 0 && int(ws) < len(shifts):
		return &shifts[ws]
	case ws == wsNone:
		return &shifts[0]
	}
	return nil
}

// interner hands out one string per distinct short byte string, for the
// history strings: a capture of a million short connections has a
// handful of distinct histories, and each would otherwise cost every
// connection an allocation. It keeps at most maxInterned strings.
type interner struct {
	m map[string]string
}

// maxInterned bounds an interner's strings, and maxInternLen their length.
const (
	maxInterned  = 4096
	maxInternLen = 32
)

// str returns b as a string, the same one for the same bytes while the
// interner has room.
func (in *interner) str(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.m) < maxInterned && len(b) <= maxInternLen {
		if in.m == nil {
			in.m = make(map[string]string)
		}
		in.m[s] = s
	}
	return s
}
