package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
	"github.com/h2scope/h2scope/dissect/http2"
)

// RSTStormConfig holds the rst_storm thresholds.
type RSTStormConfig struct {
	// Window is the sliding window over which resets are counted.
	Window time.Duration
	// MinResets is the fewest resets in one window (on one connection,
	// or to one server) that make a storm.
	MinResets int
	// RapidReset is the longest HEADERS-to-RST_STREAM delay of a client
	// reset counted as a rapid reset.
	RapidReset time.Duration
	// CriticalResets is the number of resets in one window that makes a
	// storm critical.
	CriticalResets int
}

func defaultRSTStorm() RSTStormConfig {
	return RSTStormConfig{Window: time.Second, MinResets: 10, RapidReset: 10 * time.Millisecond, CriticalResets: 100}
}

func (c *RSTStormConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Window, "rst-window", c.Window, "rst_storm: sliding window over which RST_STREAM frames are counted")
	fs.IntVar(&c.MinResets, "rst-min", c.MinResets, "rst_storm: RST_STREAM frames in one window that make a storm")
	fs.DurationVar(&c.RapidReset, "rst-rapid", c.RapidReset, "rst_storm: longest HEADERS-to-RST_STREAM delay counted as a rapid reset")
	fs.IntVar(&c.CriticalResets, "rst-critical", c.CriticalResets, "rst_storm: RST_STREAM frames in one window that make a storm critical")
}

// stormReset is one counted RST_STREAM with its connection.
type stormReset struct {
	conn *stormRef
	Reset
}

// stormRef is what rst_storm keeps of a connection besides its resets.
type stormRef struct {
	id     event.ConnID
	server netip.AddrPort
	// span is the connection's lifetime when observed; reasons its
	// confidence reasons, those of its final summary once it finished.
	span    time.Duration
	reasons connReasons
}

// ID returns the connection's id.
func (r *stormRef) ID() event.ConnID { return r.id }

// rstStorm reports bursts of HTTP/2 RST_STREAM frames.
//
// Signal: every RST_STREAM of a connection (Conn.Resets), counted over a
// sliding window of RSTStormConfig.Window, first per connection, then per
// server address (ip:port) across its connections. A window holding at
// least MinResets resets is a storm: one finding per connection, and one
// per server whose storm only shows when its connections are added up
// (none of them is a storm alone). The finding gives the error-code mix,
// the side that sent the resets, and for gRPC connections the status
// each code surfaces as (CANCEL→CANCELLED, REFUSED_STREAM→UNAVAILABLE,
// ENHANCE_YOUR_CALM→RESOURCE_EXHAUSTED, ...).
//
// Rapid reset (CVE-2023-44487): a client RST_STREAM that follows the
// stream's request HEADERS (Exchange.Request) within RapidReset. At least
// MinResets of them on a connection make the finding critical, as does a
// window holding CriticalResets resets; otherwise it is a warning.
//
// False positives avoided: RST_STREAM(NO_ERROR) is never counted — a
// server sends it after it ended the stream (trailers, END_STREAM) to
// stop the client's upload, as RFC 9113 §8.1 allows; a few cancellations
// (deadlines, a user giving up) stay below MinResets per window.
//
// Metrics: resets (counted), resets_no_error (left out), peak_resets and
// window_ms (the busiest window), rate_per_s (over the connection's life,
// or the server's span of resets), client_resets, server_resets,
// rapid_resets, median_reset_delay_ms (request HEADERS to the client's
// RST_STREAM), resets_CODE per error code, grpc_STATUS per status the gRPC clients saw
// (from the reset calls; DEADLINE_EXCEEDED when a deadline fired)
// (gRPC connections only), connections (server findings), resets_dropped
// (past the collector's bound).
//
// Memory: each connection's own storm is found when it is observed. For the
// servers it keeps the counted resets of the connections that were not
// storms, with their rapid resets and reset delays, until a connection
// to that server is one (its server is then never reported, and its
// resets are dropped).
type rstStorm struct {
	cfg RSTStormConfig
	// found holds the connections' storms.
	found []pending
	// servers holds, per server, the connections with resets.
	servers map[netip.AddrPort]*stormServer
	// unfinished holds the connections kept in servers that did not
	// finish yet: final brings their reasons up to date.
	unfinished map[event.ConnID]*stormRef
}

// stormServer is what rst_storm keeps of one server's connections.
type stormServer struct {
	// stormy is set once a connection to the server was a storm alone;
	// conns is then dropped.
	stormy bool
	conns  []*stormConn
	over   int
}

// maxStormConns bounds the connections with resets a server keeps for
// its cross-connection storm: those of the lowest ids, whatever the
// order they finish in; over counts the others.
const maxStormConns = 4096

// add keeps scs, trimming past twice maxStormConns.
func (s *stormServer) add(scs ...*stormConn) {
	s.conns = append(s.conns, scs...)
	if len(s.conns) >= 2*maxStormConns {
		s.trim()
	}
}

// trim orders the connections kept by id and keeps the first
// maxStormConns.
func (s *stormServer) trim() {
	slices.SortFunc(s.conns, func(a, b *stormConn) int { return cmp.Compare(a.c.ID(), b.c.ID()) })
	if len(s.conns) > maxStormConns {
		s.over += len(s.conns) - maxStormConns
		clear(s.conns[maxStormConns:])
		s.conns = s.conns[:maxStormConns]
	}
}

// stormConn is what rst_storm keeps of one connection with resets.
type stormConn struct {
	c *stormRef
	// rs are its counted resets in frame order; noErr counts the
	// NO_ERROR ones left out, dropped those past the Collector's bound.
	rs             []stormReset
	noErr, dropped int
	// grpc is set when it carried gRPC calls; grpcStatus counts the
	// statuses the clients of its reset calls ended with (a CANCEL is
	// DEADLINE_EXCEEDED for a call whose deadline fired).
	grpc       bool
	grpcStatus map[string]int
	// rapids are its rapid resets; delays every client reset's delay
	// after its request HEADERS, in milliseconds, in frame order.
	rapids []rapid
	delays []float64
	// replied and unreplied count the client's counted resets of
	// streams the server had answered (response HEADERS) and had not.
	replied, unreplied int
	// frames and streams are the dissector's exact counts, by sender, of
	// RST_STREAM frames and of the streams they reset (all codes).
	frames, streams [2]uint64
}

// rapid is a client RST_STREAM right after its stream's HEADERS.
type rapid struct {
	conn    *stormRef
	stream  uint32
	code    string
	req     event.Ref
	rst     event.Ref
	delayed time.Duration
}

func (d *rstStorm) observe(c *Conn) {
	if len(c.Records.Resets) == 0 {
		return
	}
	cfg := d.cfg
	cfg.MinResets = max(cfg.MinResets, 1)
	sc := newStormConn(cfg, c)
	stormy := false
	if len(sc.rs) >= cfg.MinResets {
		if lo, hi := peakWindow(sc.rs, cfg.Window); hi-lo >= cfg.MinResets {
			stormy = true
			d.found = append(d.found, newPending(stormFinding(nil, cfg, []*stormConn{sc}, sc.rs, lo, hi, sc.noErr), c))
		}
	}
	srv := d.servers[c.Server()]
	if srv == nil {
		srv = &stormServer{}
		d.servers[c.Server()] = srv
	}
	switch {
	case stormy:
		srv.stormy, srv.conns = true, nil
	case !srv.stormy:
		srv.add(sc)
		if d.unfinished == nil {
			d.unfinished = map[event.ConnID]*stormRef{}
		}
		d.unfinished[sc.c.id] = sc.c
	}
}

func (d *rstStorm) findings(in *capture) []Finding {
	cfg := d.cfg
	cfg.MinResets = max(cfg.MinResets, 1)
	out := finishAll(in, d.found)
	// Servers whose storm only shows across connections.
	for _, addr := range sortedAddrPorts(d.servers) {
		srv := d.servers[addr]
		srv.trim()
		if srv.stormy || len(srv.conns) < 2 {
			continue
		}
		conns := srv.conns
		var rs []stormReset
		noErr := 0
		for _, sc := range conns {
			rs = append(rs, sc.rs...)
			noErr += sc.noErr
		}
		slices.SortStableFunc(rs, func(a, b stormReset) int {
			return cmp.Or(a.Ref.TS.Compare(b.Ref.TS), cmp.Compare(a.Ref.Frame, b.Ref.Frame))
		})
		lo, hi := peakWindow(rs, cfg.Window)
		if hi-lo < cfg.MinResets {
			continue
		}
		f := stormFinding(in, cfg, conns, rs, lo, hi, noErr)
		if srv.over > 0 {
			f.Metrics["connections_not_examined"] = srv.over
			f.Confidence = f.Confidence.with(fmt.Sprintf("resets of %d connections to the server past the first %d not examined", srv.over, maxStormConns))
		}
		out = append(out, f)
	}
	return out
}

// newStormConn gathers what rst_storm keeps of c, which has resets.
func newStormConn(cfg RSTStormConfig, c *Conn) *stormConn {
	ref := &stormRef{id: c.ID(), server: c.Server(), span: c.TCP.LastTS.Sub(c.TCP.FirstTS), reasons: reasonsOf(c)}
	sc := &stormConn{c: ref, dropped: c.Records.ResetsDropped, grpc: len(c.Records.Calls) > 0}
	if sc.grpc {
		for i := range c.Records.Calls {
			call := &c.Records.Calls[i]
			if call.Reset && call.ResetCode != "NO_ERROR" && call.ClientStatus != "" {
				if sc.grpcStatus == nil {
					sc.grpcStatus = map[string]int{}
				}
				sc.grpcStatus[call.ClientStatus]++
			}
		}
	}
	sc.rs, sc.noErr = countedResets(c, ref)
	if c.App != nil && c.App.HTTP2 != nil {
		h := c.App.HTTP2
		rst := http2.FrameRSTStream.String()
		sc.frames = [2]uint64{h.Frames.C2S[rst], h.Frames.S2C[rst]}
		sc.streams = [2]uint64{h.StreamsReset.C2S, h.StreamsReset.S2C}
	}
	// Rapid resets: the client's RST_STREAM right after its HEADERS,
	// before the server answered.
	type asked struct{ req, reply *event.Ref }
	reqs := map[uint32]asked{}
	for _, x := range c.Records.Exchanges {
		if x.Proto == event.ProtoHTTP2 && x.Request != nil {
			reqs[x.Stream] = asked{x.Request, x.Response}
		}
	}
	for _, r := range c.Records.Resets {
		if r.Dir != event.C2S || r.noError() {
			continue
		}
		q, ok := reqs[r.Stream]
		if !ok {
			sc.unreplied++
			continue
		}
		if q.reply != nil && q.reply.Frame < r.Ref.Frame {
			sc.replied++
		} else {
			sc.unreplied++
		}
		d := r.Ref.TS.Sub(q.req.TS)
		sc.delays = append(sc.delays, ms(d))
		if d >= 0 && d <= cfg.RapidReset && (q.reply == nil || q.reply.Frame > r.Ref.Frame) {
			sc.rapids = append(sc.rapids, rapid{ref, r.Stream, codeOf(c, r.Stream, r.Ref), *q.req, r.Ref, d})
		}
	}
	return sc
}

// countedResets returns c's resets other than NO_ERROR, and how many
// NO_ERROR resets it left out.
func countedResets(c *Conn, ref *stormRef) (rs []stormReset, noErr int) {
	for _, r := range c.Records.Resets {
		if r.noError() {
			noErr++
			continue
		}
		rs = append(rs, stormReset{conn: ref, Reset: r})
	}
	return rs, noErr
}

// peakWindow returns the bounds [lo, hi) of the first window of length w
// holding the most resets; rs is in time order.
func peakWindow(rs []stormReset, w time.Duration) (lo, hi int) {
	j := 0
	for i := range rs {
		if j < i {
			j = i
		}
		for j < len(rs) && rs[j].Ref.TS.Sub(rs[i].Ref.TS) < w {
			j++
		}
		if j-i > hi-lo {
			lo, hi = i, j
		}
	}
	return lo, hi
}

// stormFinding builds the finding of a storm over conns: rs are their
// counted resets in time order, [lo, hi) the busiest window.
func stormFinding(in *capture, cfg RSTStormConfig, scs []*stormConn, rs []stormReset, lo, hi, noErr int) Finding {
	conns := make([]*stormRef, len(scs))
	reasons := make([]connReasons, len(scs))
	for i, sc := range scs {
		conns[i], reasons[i] = sc.c, sc.c.reasons
	}
	m := map[string]any{
		"resets":      len(rs),
		"peak_resets": hi - lo,
		"window_ms":   ms(cfg.Window),
	}
	if noErr > 0 {
		m["resets_no_error"] = noErr
	}
	codes := map[string]int{}
	var side [2]int
	isGRPC := false
	dropped := 0
	for _, sc := range scs {
		dropped += sc.dropped
		isGRPC = isGRPC || sc.grpc
	}
	for _, r := range rs {
		codes[r.CodeName()]++
		side[r.Dir&1]++
	}
	if dropped > 0 {
		m["resets_dropped"] = dropped
	}
	for code, n := range codes {
		m["resets_"+code] = n
	}
	// What the gRPC clients saw: the reset calls' own statuses when the
	// calls were dissected, else the statuses the codes map to.
	grpcSaw := map[string]int{}
	for _, sc := range scs {
		for st, n := range sc.grpcStatus {
			grpcSaw[st] += n
		}
	}
	if isGRPC && len(grpcSaw) == 0 {
		for _, r := range rs {
			if st, ok := grpc.ResetStatus(r.Code); ok && !r.Lost {
				grpcSaw[st.String()]++
			}
		}
	}
	for s, n := range grpcSaw {
		m["grpc_"+s] = n
	}
	m["client_resets"], m["server_resets"] = side[event.C2S], side[event.S2C]

	var rapids []rapid
	var delays []float64
	var frames, streams [2]uint64
	replied, unreplied := 0, 0
	for _, sc := range scs {
		rapids = append(rapids, sc.rapids...)
		delays = append(delays, sc.delays...)
		replied += sc.replied
		unreplied += sc.unreplied
		for d := range 2 {
			frames[d] += sc.frames[d]
			streams[d] += sc.streams[d]
		}
	}
	m["rapid_resets"] = len(rapids)
	m["rst_frames"] = frames[0] + frames[1]
	m["streams_reset"] = streams[0] + streams[1]
	if replied+unreplied > 0 {
		m["resets_after_response"], m["resets_before_response"] = replied, unreplied
	}
	if len(delays) > 0 {
		m["median_reset_delay_ms"] = medianOf(delays)
	}
	span := rs[len(rs)-1].Ref.TS.Sub(rs[0].Ref.TS)
	if len(conns) == 1 {
		span = conns[0].span
	}
	span = max(span, cfg.Window)
	rate := float64(len(rs)) / span.Seconds()
	if dropped > 0 && len(conns) == 1 {
		// Past the collector's bound, the exact count of frames over
		// the connection's life.
		rate = float64(frames[0]+frames[1]) / span.Seconds()
	}
	m["rate_per_s"] = roundTo(rate, 1)
	m["peak_rate_per_s"] = roundTo(float64(hi-lo)/cfg.Window.Seconds(), 1)

	f := Finding{Kind: KindRSTStorm, Severity: Warning, Metrics: m}
	f.Cause = stormCause(cfg, side, codes, len(rs), len(rapids))
	isRapid := f.Cause == CauseRapidReset
	switch f.Cause {
	case CauseRapidReset, CauseServerReset:
		f.Severity = Critical // an attack; requests the server failed
	case CauseClientCancel:
		// Cancellations are the client's choice, unless its deadlines
		// fired: those requests failed.
		if grpcSaw["DEADLINE_EXCEEDED"] >= cfg.MinResets {
			f.Severity = Critical
		}
	}
	if hi-lo >= cfg.CriticalResets {
		f.Severity = Critical // at that scale, whatever the cause
	}
	for _, c := range conns {
		f.Connections = append(f.Connections, c.ID())
	}
	// Streams and evidence: the busiest window's resets, then the
	// rapid resets' request HEADERS.
	for i := lo; i < hi && len(f.Streams) < 100; i++ {
		f.Streams = append(f.Streams, StreamRef{Conn: rs[i].conn.ID(), Stream: rs[i].Stream})
	}
	nev := maxEvidence
	if isRapid {
		nev = maxEvidence / 2
		for _, r := range rapids[:min(len(rapids), maxEvidence/4)] {
			f.Evidence = append(f.Evidence,
				evidence(r.conn.ID(), r.stream, r.req, "client HEADERS opens the stream"),
				evidence(r.conn.ID(), r.stream, r.rst, fmt.Sprintf("client RST_STREAM(%s) %.3f ms after its HEADERS", r.code, ms(r.delayed))).decisive())
		}
	}
	for i := lo; i < hi && i-lo < nev; i++ {
		r := rs[i]
		what := fmt.Sprintf("%s RST_STREAM(%s)", dirWho(r.Dir), r.Code)
		if i == lo {
			what += fmt.Sprintf(": first of %d resets within %s", hi-lo, fmtDur(cfg.Window))
		}
		f.Evidence = append(f.Evidence, evidence(r.conn.ID(), r.Stream, r.Ref, what))
	}

	// Summary.
	top := topCodes(codes)
	who := "Client"
	switch {
	case side[event.C2S] > 0 && side[event.S2C] > 0 && min(side[0], side[1])*4 >= max(side[0], side[1]):
		who = "Both sides"
	case side[event.S2C] > side[event.C2S]:
		who = "Server"
	}
	verb := "reset"
	switch {
	case who == "Client" && codes[http2.ErrCodeCancel.String()]*2 > len(rs):
		verb = "cancelled"
	case who == "Server" && codes[http2.ErrCodeRefusedStream.String()]*2 > len(rs):
		verb = "refused"
	}
	where := "on connection " + connText(conns[0].ID())
	if len(conns) > 1 {
		where = fmt.Sprintf("to server %s across %d connections", conns[0].server, len(conns))
		m["connections"] = len(conns)
	}
	over := "over the connection"
	if len(conns) > 1 {
		over = "over the resets' span"
	}
	f.Summary = fmt.Sprintf("%s %s %d streams within %s %s (%s), %s/s %s",
		who, verb, hi-lo, fmtDur(cfg.Window), where, top, fmtRate(rate), over)
	switch {
	case isRapid:
		if dropped > 0 && int(streams[event.C2S]) > len(rapids) {
			f.Summary = fmt.Sprintf("Rapid reset (CVE-2023-44487 pattern): client reset %d streams %s, %d of the first %d client resets examined within %s of their HEADERS, before any response; %s",
				streams[event.C2S], where, len(rapids), side[event.C2S], fmtDur(cfg.RapidReset), f.Summary)
		} else {
			f.Summary = fmt.Sprintf("Rapid reset (CVE-2023-44487 pattern): client reset %d streams within %s of their HEADERS, before any response, %s; %s",
				len(rapids), fmtDur(cfg.RapidReset), where, f.Summary)
		}
	case f.Cause == CauseClientCancel && replied > 0:
		f.Summary += fmt.Sprintf("; %d of the %d client resets came after the server's response had started", replied, replied+unreplied)
	}
	if len(grpcSaw) > 0 {
		var parts []string
		for _, st := range sortedKeys(grpcSaw) {
			parts = append(parts, fmt.Sprintf("%s %d", st, grpcSaw[st]))
		}
		f.Summary += "; gRPC clients saw " + strings.Join(parts, ", ")
	}
	f.Confidence = confidenceOf(in, reasons...)
	if dropped > 0 {
		f.Confidence = f.Confidence.with(fmt.Sprintf("%d RST_STREAM frames past the collector's bound not examined", dropped))
	}
	f.Remedy = stormRemedy(f.Cause, codes, len(rs))
	return f
}

// stormCause tells why a storm happened from who sent its resets (side,
// counted by sender), their codes, and how many of the client's were
// rapid (before any response, right after the request): the client's
// rapid resets at volume are the attack's shape, its other resets
// cancellations; the server's are refusals when REFUSED_STREAM
// dominates, else failures.
func stormCause(cfg RSTStormConfig, side [2]int, codes map[string]int, n, rapids int) string {
	switch {
	case side[event.S2C] > side[event.C2S] && codes[http2.ErrCodeRefusedStream.String()]*2 > n:
		return CauseRefusedStream
	case side[event.S2C] > side[event.C2S]:
		return CauseServerReset
	case rapids >= cfg.MinResets && rapids*2 >= side[event.C2S]:
		return CauseRapidReset
	}
	return CauseClientCancel
}

// codeOf returns the error code of conn's reset of stream at ref.
func codeOf(c *Conn, stream uint32, ref event.Ref) string {
	for _, r := range c.Records.Resets {
		if r.Stream == stream && r.Ref.Frame == ref.Frame {
			return r.CodeName()
		}
	}
	return "?"
}

// stormRemedy names the settings to look at for a storm.
func stormRemedy(cause string, codes map[string]int, n int) string {
	if cause == CauseRapidReset {
		return "Rapid reset (CVE-2023-44487): patch the server side — Go ≥ 1.21.3 / golang.org/x/net ≥ 0.17.0 (http2.Server " +
			"stops reading new streams while handlers for reset ones still run; keep http2.Server.MaxConcurrentStreams small), " +
			"grpc-go ≥ 1.58.3 (grpc.MaxConcurrentStreams is then enforced on reset streams too); Envoy ≥ 1.27.1 with the " +
			"overload manager (envoy.resource_monitors.downstream_connections, premature-reset limits) and " +
			"http2_protocol_options.max_concurrent_streams; nginx ≥ 1.25.3 with keepalive_requests and " +
			"http2_max_concurrent_streams at their defaults or lower. Rate-limit or block the offending client."
	}
	dominant := func(code http2.ErrCode) bool { return codes[code.String()]*2 > n }
	switch {
	case cause == CauseClientCancel:
		return "The client gives up on requests: look for context deadlines shorter than the server's latency " +
			"(context.WithTimeout, http.Client.Timeout, grpc-go per-call deadlines and CallOptions, grpc-timeout), " +
			"contexts cancelled on early return, and hedged or first-response-wins requests; in gRPC these surface " +
			"as CANCELLED or DEADLINE_EXCEEDED. Fix the slow handler or raise the deadline; avoid retry loops that " +
			"cancel and reissue."
	case dominant(http2.ErrCodeRefusedStream):
		return "The server refuses streams beyond SETTINGS_MAX_CONCURRENT_STREAMS: raise it (x/net/http2 " +
			"Server.MaxConcurrentStreams, grpc.MaxConcurrentStreams server option, Envoy " +
			"http2_protocol_options.max_concurrent_streams, nginx http2_max_concurrent_streams) or spread requests over " +
			"more connections (client-side pooling; http2.Transport.StrictMaxConcurrentStreams false). Refused streams " +
			"were not processed and are safe to retry (gRPC UNAVAILABLE)."
	case dominant(http2.ErrCodeEnhanceYourCalm):
		return "The server is rate-limiting this client (ENHANCE_YOUR_CALM, gRPC RESOURCE_EXHAUSTED): lower the " +
			"client's request or ping rate, or raise the server's limits (Envoy overload manager, nginx limit_req)."
	case dominant(http2.ErrCodeStreamClosed):
		return "Frames arrive on streams the peer already closed (STREAM_CLOSED): usually a race between a cancel " +
			"and the last frames, or a proxy that mishandles half-closed streams; update the HTTP/2 library " +
			"(golang.org/x/net, grpc-go, Envoy) and look at the frames just before the first reset."
	}
	return "Protocol-level resets (PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR) mean one side's HTTP/2 " +
		"implementation or a proxy in between misbehaves: update golang.org/x/net/http2, grpc-go or the proxy " +
		"(Envoy, nginx), and inspect the frames preceding the first reset."
}

// topCodes renders the most frequent codes, "CANCEL 230, REFUSED_STREAM 10".
func topCodes(codes map[string]int) string {
	keys := sortedKeys(codes)
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(codes[b], codes[a]) })
	var parts []string
	for i, k := range keys {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("%d other codes", len(keys)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", k, codes[k]))
	}
	if len(keys) == 1 {
		return keys[0]
	}
	return strings.Join(parts, ", ")
}

// fmtRate renders a rate per second briefly.
func fmtRate(r float64) string {
	if r >= 10 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

func (d *rstStorm) final(c *Conn) {
	if r := d.unfinished[c.ID()]; r != nil {
		r.reasons = reasonsOf(c)
		delete(d.unfinished, c.ID())
	}
}

func (d *rstStorm) merge(o detector) {
	od := o.(*rstStorm)
	d.found = append(d.found, od.found...)
	for id, r := range od.unfinished {
		if d.unfinished == nil {
			d.unfinished = map[event.ConnID]*stormRef{}
		}
		d.unfinished[id] = r
	}
	for addr, os := range od.servers {
		srv := d.servers[addr]
		switch {
		case srv == nil:
			d.servers[addr] = os
		case srv.stormy || os.stormy:
			srv.stormy, srv.conns = true, nil
		default:
			srv.over += os.over
			srv.add(os.conns...)
		}
	}
}
