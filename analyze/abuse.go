package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

// ProtocolAbuseConfig holds protocol_abuse's thresholds.
type ProtocolAbuseConfig struct {
	// FloodFrames is the least number of one control frame type (PING,
	// SETTINGS, WINDOW_UPDATE, CONTINUATION) a client sends on one
	// connection that is a flood, FloodPerStream the least number of
	// them per stream it opened (normal use sends a handful per
	// request).
	FloodFrames    int
	FloodPerStream int
	// FloodRate is the least rate of those frames, per second over the
	// connection's life, that is a flood (a long download's window
	// updates or keepalive PINGs over hours are none).
	FloodRate float64
	// SYNFlood is the least number of unanswered SYNs to one server, and
	// SYNFloodSources the least number of distinct sources they come
	// from, that are a SYN flood.
	SYNFlood        int
	SYNFloodSources int
}

func defaultProtocolAbuse() ProtocolAbuseConfig {
	return ProtocolAbuseConfig{FloodFrames: 1000, FloodPerStream: 100, FloodRate: 200, SYNFlood: 1000, SYNFloodSources: 100}
}

func (c *ProtocolAbuseConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.FloodFrames, "abuse-flood-frames", c.FloodFrames, "protocol_abuse: control frames of one type from a client on one connection that are a flood")
	fs.IntVar(&c.FloodPerStream, "abuse-flood-per-stream", c.FloodPerStream, "protocol_abuse: least such frames per stream the client opened")
	fs.Float64Var(&c.FloodRate, "abuse-flood-rate", c.FloodRate, "protocol_abuse: least rate of such frames, per second over the connection, that is a flood")
	fs.IntVar(&c.SYNFlood, "abuse-syn-flood", c.SYNFlood, "protocol_abuse: unanswered SYNs to one server that are a SYN flood")
	fs.IntVar(&c.SYNFloodSources, "abuse-syn-sources", c.SYNFloodSources, "protocol_abuse: least distinct sources of a SYN flood")
}

// Causes of protocol_abuse.
const (
	CauseSYNFlood          = "syn_flood"           // unanswered SYNs from many sources
	CausePingFlood         = "ping_flood"          // PING frames far beyond keepalive use
	CauseSettingsFlood     = "settings_flood"      // SETTINGS frames far beyond negotiation
	CauseWindowUpdateFlood = "window_update_flood" // WINDOW_UPDATE frames far beyond flow control's needs
	CauseContinuationFlood = "continuation_flood"  // CONTINUATION frames, an endless header block (CVE-2024-27316 and kin)
	CauseHPACKBomb         = "hpack_bomb"          // header lists decoding far beyond the limit from small blocks
	CauseEmptyFramesFlood  = "empty_frames_flood"  // DATA, HEADERS or CONTINUATION frames with nothing in them (CVE-2019-9518)
)

// floodTypes are the floods of client frames protocol_abuse reports:
// what the frames are, the cause, and how many the client sent.
var floodTypes = []struct {
	what, cause string
	count       func(h *http2.Summary) int
}{
	{http2.FramePing.String(), CausePingFlood, clientFrames(http2.FramePing)},
	{http2.FrameSettings.String(), CauseSettingsFlood, clientFrames(http2.FrameSettings)},
	{http2.FrameWindowUpdate.String(), CauseWindowUpdateFlood, clientFrames(http2.FrameWindowUpdate)},
	{http2.FrameContinuation.String(), CauseContinuationFlood, clientFrames(http2.FrameContinuation)},
	{"empty DATA, HEADERS or CONTINUATION", CauseEmptyFramesFlood, func(h *http2.Summary) int { return h.Anomalies[http2.AnomalyClientEmptyFrames] }},
}

// clientFrames counts the client's frames of type t.
func clientFrames(t http2.FrameType) func(h *http2.Summary) int {
	return func(h *http2.Summary) int { return int(h.Frames.C2S[t.String()]) }
}

// protocolAbuse reports traffic shaped as an attack on the server:
// floods of HTTP/2 control frames from a client, header lists that decode
// beyond the limit (HPACK bombs), and SYN floods. Rapid reset stays with
// rst_storm.
//
// Signal: per connection, the client's HTTP/2 frames by type and the
// dissector's anomalies (header_list_too_large); per server, the
// connections that were SYNs alone, never answered (Zeek's S0) or
// answered by SYN-ACKs only and never completed (half-open), and how
// many sources sent them.
//
// Thresholds: FloodFrames frames of one type, FloodPerStream per stream
// the client opened; three header lists over the limit; SYNFlood
// unanswered SYNs from SYNFloodSources sources. All are critical: an
// attack at scale, or one the server's limits exist for.
//
// Metrics: frames and per_stream (floods), header_lists_over_limit,
// syns, sources (estimated, see sourceSketch), rate_per_s.
type protocolAbuse struct {
	cfg   ProtocolAbuseConfig
	found []pending
	syns  map[netip.AddrPort]*synFlood
	last  lastEntry[netip.AddrPort, synFlood] // syns'
}

// synFlood is a server's unanswered SYNs and half-open handshakes.
type synFlood struct {
	n           int
	halfOpen    int // of n, answered by SYN-ACK but never completed
	sources     sourceSketch
	first, last event.Ref
	// sample holds the lowest ids, at most maxEvidence.
	sample []floodSYN
}

// floodSYN is one flood connection kept as evidence.
type floodSYN struct {
	id       event.ConnID
	ref      event.Ref
	reasons  connReasons
	halfOpen bool
}

// sourceSketch counts distinct source addresses in 512 bytes, by linear
// counting: exact in all but name up to a few hundred, within a few
// percent up to ~20,000, a lower bound past that; merging is a bitwise
// or, so shards merge exactly.
type sourceSketch [sketchBits / 64]uint64

const sketchBits = 4096

func (k *sourceSketch) add(a netip.Addr) {
	b := a.As16()
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	i := h % sketchBits
	k[i/64] |= 1 << (i % 64)
}

func (k *sourceSketch) merge(o *sourceSketch) {
	for i := range k {
		k[i] |= o[i]
	}
}

// count estimates the distinct sources added.
func (k *sourceSketch) count() int {
	zeros := 0
	for _, w := range k {
		zeros += 64 - bits.OnesCount64(w)
	}
	if zeros == 0 {
		zeros = 1 // saturated: a lower bound
	}
	return int(math.Round(-sketchBits * math.Log(float64(zeros)/sketchBits)))
}

func (d *protocolAbuse) observe(c *Conn) {
	if c.App == nil || c.App.HTTP2 == nil {
		return
	}
	h := c.App.HTTP2
	streams := 0
	for i := range c.Records.Streams {
		if c.Records.Streams[i].Initiator == "client" {
			streams++
		}
	}
	streams = max(streams, h.Streams/2) // records may be capped
	span := max(c.TCP.LastTS.Sub(c.TCP.FirstTS), time.Second)
	for _, ft := range floodTypes {
		n := ft.count(h)
		if n < d.cfg.FloodFrames || n < d.cfg.FloodPerStream*max(streams, 1) || float64(n)/span.Seconds() < d.cfg.FloodRate {
			continue
		}
		f := Finding{Kind: KindProtocolAbuse, Cause: ft.cause, Severity: Critical, Connections: []event.ConnID{c.ID()}}
		article := "a"
		if strings.ContainsRune("aeiou", rune(ft.cause[0])) {
			article = "an"
		}
		f.Summary = fmt.Sprintf("Client %s sent %d %s frames on connection %s to %s, %d per stream it opened (%d): %s %s",
			c.Client(), n, ft.what, connText(c.ID()), c.Server(), n/max(streams, 1), streams, article, spaced(ft.cause))
		f.Metrics = map[string]any{"frames": n, "streams": streams, "per_stream": n / max(streams, 1)}
		f.Metrics["rate_per_s"] = roundTo(float64(n)/span.Seconds(), 1)
		f.Evidence = append(f.Evidence, evidence(c.ID(), 0, event.Ref{Frame: c.TCP.FirstFrame, TS: c.TCP.FirstTS}, "the connection opens"))
		f.Confidence = confidence(nil, c)
		f.Remedy = abuseRemedy[ft.cause]
		d.found = append(d.found, newPending(f, c))
	}
	if n := max(h.Anomalies[http2.AnomalyHeaderListTooLarge], h.Anomalies[http2.AnomalyHeaderListAmplified]); n >= 3 {
		f := Finding{Kind: KindProtocolAbuse, Cause: CauseHPACKBomb, Severity: Critical, Connections: []event.ConnID{c.ID()}}
		f.Summary = fmt.Sprintf("Client %s sent %d header lists on connection %s to %s that decode beyond the header list limit: an HPACK bomb's shape",
			c.Client(), n, connText(c.ID()), c.Server())
		f.Metrics = map[string]any{"header_lists_over_limit": n}
		f.Evidence = append(f.Evidence, evidence(c.ID(), 0, event.Ref{Frame: c.TCP.FirstFrame, TS: c.TCP.FirstTS}, "the connection opens"))
		f.Confidence = confidence(nil, c)
		f.Remedy = abuseRemedy[CauseHPACKBomb]
		d.found = append(d.found, newPending(f, c))
	}
}

// spaced returns a cause with spaces for underscores.
func spaced(cause string) string {
	b := []byte(cause)
	for i := range b {
		if b[i] == '_' {
			b[i] = ' '
		}
	}
	return string(b)
}

func (d *protocolAbuse) final(c *Conn) {
	t := c.TCP
	// A flood's connection: the client sent SYNs and nothing else, and
	// the server nothing (unanswered: a capture upstream, or a server
	// dropping them) or only SYN-ACKs (half-open: a server answering,
	// with SYN cookies or from its backlog, sources that never complete
	// the handshake, as spoofed ones cannot).
	if t == nil || t.SYNs == 0 || t.Packets.C2S > uint64(t.SYNs) || t.Packets.S2C > uint64(t.SYNACKs) {
		return
	}
	if d.syns == nil {
		d.syns = map[netip.AddrPort]*synFlood{}
	}
	s := d.flood(c.Server())
	s.n++
	if t.SYNACKs > 0 {
		s.halfOpen++
	}
	s.sources.add(c.Client())
	s.span(event.Ref{Frame: t.FirstFrame, TS: t.FirstTS})
	s.keep(floodSYN{c.ID(), event.Ref{Frame: t.FirstFrame, TS: t.FirstTS}, reasonsOf(c), t.SYNACKs > 0})
}

// flood returns the unanswered SYNs of srv; past maxPools servers (a
// scan), new ones share one entry, anyServer, so that a flood is still
// seen whatever came first.
func (d *protocolAbuse) flood(srv netip.AddrPort) *synFlood {
	if d.syns == nil {
		d.syns = map[netip.AddrPort]*synFlood{}
	}
	s := d.last.get(d.syns, srv)
	if s == nil {
		if len(d.syns) >= maxPools {
			srv = anyServer
			if s = d.last.get(d.syns, srv); s != nil {
				return s
			}
		}
		s = &synFlood{}
		d.last.set(d.syns, srv, s)
	}
	return s
}

// anyServer is the server of the SYNs folded past maxPools servers.
var anyServer netip.AddrPort

// span widens the flood's span to ref.
func (s *synFlood) span(ref event.Ref) {
	if ref.Frame == 0 {
		return
	}
	if s.first.Frame == 0 || ref.Frame < s.first.Frame {
		s.first = ref
	}
	if ref.Frame > s.last.Frame {
		s.last = ref
	}
}

// keep keeps f if it is among the lowest ids.
func (s *synFlood) keep(f floodSYN) {
	i, _ := slices.BinarySearchFunc(s.sample, f.id, func(x floodSYN, id event.ConnID) int { return cmp.Compare(x.id, id) })
	if i >= maxEvidence {
		return
	}
	s.sample = slices.Insert(s.sample, i, f)
	if len(s.sample) > maxEvidence {
		s.sample = s.sample[:maxEvidence]
	}
}

func (d *protocolAbuse) merge(o detector) {
	od := o.(*protocolAbuse)
	d.found = append(d.found, od.found...)
	for _, srv := range sortedAddrPorts(od.syns) {
		os := od.syns[srv]
		s := d.flood(srv)
		s.n += os.n
		s.halfOpen += os.halfOpen
		s.sources.merge(&os.sources)
		s.span(os.first)
		s.span(os.last)
		for _, f := range os.sample {
			s.keep(f)
		}
	}
}

func (d *protocolAbuse) findings(in *capture) []Finding {
	out := finishAll(in, d.found)
	srvs := make([]netip.AddrPort, 0, len(d.syns))
	for srv := range d.syns {
		srvs = append(srvs, srv)
	}
	slices.SortFunc(srvs, func(a, b netip.AddrPort) int { return a.Compare(b) })
	for _, srv := range srvs {
		s := d.syns[srv]
		sources := s.sources.count()
		if s.n < d.cfg.SYNFlood || sources < d.cfg.SYNFloodSources {
			continue
		}
		f := Finding{Kind: KindProtocolAbuse, Cause: CauseSYNFlood, Severity: Critical}
		span := s.last.TS.Sub(s.first.TS)
		rate := float64(s.n) / max(span, time.Millisecond).Seconds()
		to := srv.String()
		if srv == anyServer {
			to = fmt.Sprintf("servers past the first %d", maxPools)
		}
		fate := "were never answered"
		switch {
		case s.halfOpen == s.n:
			fate = "were answered (SYN-ACK) but never completed: half-open"
		case s.halfOpen > 0:
			fate = fmt.Sprintf("never completed a handshake (%d unanswered, %d half-open)", s.n-s.halfOpen, s.halfOpen)
		}
		f.Summary = fmt.Sprintf("%d SYNs to %s from about %d sources %s, %s/s over %s: a SYN flood",
			s.n, to, sources, fate, fmtRate(rate), fmtDur(span))
		f.Metrics = map[string]any{"syns": s.n, "sources": sources, "rate_per_s": roundTo(rate, 1),
			"estimated": "sources is estimated by linear counting (exact to a few percent up to about 20,000)"}
		if s.halfOpen > 0 {
			f.Metrics["half_open"] = s.halfOpen
		}
		var reasons []connReasons
		for _, x := range s.sample {
			f.Connections = append(f.Connections, x.id)
			what := "SYN, never answered"
			if x.halfOpen {
				what = "SYN answered by SYN-ACK, never completed"
			}
			f.Evidence = append(f.Evidence, evidence(x.id, 0, x.ref, what))
			reasons = append(reasons, x.reasons)
		}
		f.Confidence = confidenceOf(in, reasons...)
		f.Remedy = abuseRemedy[CauseSYNFlood]
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return cmp.Compare(a.Cause, b.Cause) })
	return out
}

var abuseRemedy = map[string]string{
	CauseSYNFlood: "A SYN flood from many (likely spoofed) sources: enable SYN cookies (net.ipv4.tcp_syncookies=1), " +
		"raise the SYN backlog (net.ipv4.tcp_max_syn_backlog, the listen backlog and net.core.somaxconn), and filter " +
		"upstream (a DDoS scrubbing service, firewall rate limits per source).",
	CausePingFlood: "A PING flood: limit PINGs per connection (Go x/net/http2 and grpc-go enforce keepalive " +
		"EnforcementPolicy.MinTime and answer with GOAWAY ENHANCE_YOUR_CALM; nginx and Envoy have flood protection " +
		"in current versions, CVE-2019-9512): update the server and block the client.",
	CauseSettingsFlood: "A SETTINGS flood (CVE-2019-9515): update the HTTP/2 server (Go x/net/http2 ≥ 0.0.0-2019-08, " +
		"nginx ≥ 1.17.3, Envoy ≥ 1.11.1 limit queued SETTINGS ACKs) and block the client.",
	CauseWindowUpdateFlood: "A WINDOW_UPDATE flood: a client granting tiny windows over and over (CVE-2019-9511/9517 " +
		"kin); update the server and cap control frames per connection (Envoy max_outbound_control_frames, nginx " +
		"http2 flood checks).",
	CauseContinuationFlood: "A CONTINUATION flood (CVE-2024-27316 and related, 2024): a header block that never ends. " +
		"Update the server (Go ≥ 1.22.2 / x/net ≥ 0.23.0, nginx ≥ 1.25.5, Envoy ≥ 1.29.3, h2o, nghttp2 ≥ 1.61.0) and " +
		"keep header size limits small (http2.Server.MaxHeaderBytes, large_client_header_buffers).",
	CauseHPACKBomb: "An HPACK bomb (CVE-2016-6581): small blocks that decode into huge header lists. Enforce " +
		"SETTINGS_MAX_HEADER_LIST_SIZE while decoding (current Go, nginx, Envoy do) and update the server.",
	CauseEmptyFramesFlood: "An empty frames flood (CVE-2019-9518): frames with nothing in them and no END_STREAM, each " +
		"costing the server work and no flow-control window. Update the server to a release that counts empty frames " +
		"and closes the connection (its advisory for CVE-2019-9518; Envoy ≥ 1.11.1), cap frames per stream where it " +
		"can be configured, and block the client.",
}
