package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

// GoAwayConfig holds the goaway thresholds.
type GoAwayConfig struct {
	// ReconnectWindow is how long after a GOAWAY a new connection to the
	// same server counts as the client reconnecting.
	ReconnectWindow time.Duration
}

func defaultGoAway() GoAwayConfig {
	return GoAwayConfig{ReconnectWindow: 30 * time.Second}
}

func (c *GoAwayConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ReconnectWindow, "goaway-reconnect-window", c.ReconnectWindow, "goaway: how long after a GOAWAY a new connection counts as the reconnect")
}

// maxStreamID is the largest HTTP/2 stream identifier, the last-stream-id
// of the first GOAWAY of a graceful shutdown (RFC 9113 §6.8).
const maxStreamID = 1<<31 - 1

// goAway reports GOAWAY frames.
//
// Signal: the GOAWAY frames of each connection (App.HTTP2.GoAways), one
// finding per connection and sending side. A graceful shutdown — a
// NO_ERROR GOAWAY with last-stream-id 2^31-1, then one with the real last
// stream — gives one finding for both. The streams it affected come from
// the connection's stream records: streams opened by the receiver of the
// GOAWAY with an id above the (final) last-stream-id that got no complete
// response were not processed ("cut"; safe to retry); streams at or below
// it that neither finished nor were reset were in flight when the
// connection went away ("unfinished"). The reconnect is the next
// connection from the same client IP to the same server address starting
// within ReconnectWindow after the GOAWAY (other Conns of the Input).
//
// Severity: critical for ENHANCE_YOUR_CALM, PROTOCOL_ERROR,
// INTERNAL_ERROR or debug data "too_many_pings" (gRPC keepalive
// enforcement); warning for any other error code, for streams cut or
// left unfinished, and for an abrupt NO_ERROR GOAWAY (a real
// last-stream-id with streams above it in flight); info for a graceful
// GOAWAY that cut nothing (a server draining, or a client closing its
// connection).
//
// False positives avoided: a graceful drain that completes every stream
// stays info; streams that ended before the GOAWAY, or were reset by
// either side before it, or by their opener in the segment that opened
// them (a rapid reset's), are not counted as cut; when the capture started mid-
// connection the streams before it are unknown, and confidence says so.
//
// Metrics: goaways, last_stream_id, graceful (1 or 0), streams_cut,
// streams_unfinished, max_stream_id (highest stream the receiver
// opened), reconnect_ms (when the client reconnected), drain_ms (first
// to last GOAWAY of a graceful shutdown).
//
// Each connection's findings are made when it is observed, but for the
// client's reconnect, looked up at the end among the connection starts
// kept per (client, server) pair: the latest goAwayStarts of each, for
// up to goAwayPairs pairs. Where some were not kept, a GOAWAY without a
// reconnect found does not claim there was none.
type goAway struct {
	cfg   GoAwayConfig
	found []goAwayPending
	// starts holds, per (client IP, server), the connections' first
	// frames, for the reconnect after a GOAWAY.
	starts map[kaKey]*pairStarts
	// dropped is set when the starts of some pair were not kept.
	dropped bool
}

// Bounds of goAway's connection starts.
const (
	goAwayStarts = 256
	goAwayPairs  = 10000
)

// pairStarts are the latest connection starts of one (client, server)
// pair; partial is set when earlier ones were dropped.
type pairStarts struct {
	starts  []connStart
	partial bool
}

func (p *pairStarts) add(ss ...connStart) {
	if len(ss) == 1 {
		// One start per connection finalised: a store, not a copy of a
		// slice with its write barriers.
		p.starts = append(p.starts, ss[0])
	} else {
		p.starts = append(p.starts, ss...)
	}
	var cut bool
	p.starts, cut = trimLowest(p.starts, goAwayStarts, func(a, b connStart) int { return cmp.Or(b.ts.Compare(a.ts), cmp.Compare(a.id, b.id)) })
	p.partial = p.partial || cut
}

// pair returns the starts of k, nil when its pair is not kept. c, when
// not nil, is the connection being finalised, k its own pair: a full
// map skips the lookup when c.newClient says k cannot be there, and
// c.ownsKey is set when k is added.
func (d *goAway) pair(k kaKey, c *Conn) *pairStarts {
	if d.starts == nil {
		d.starts = map[kaKey]*pairStarts{}
	}
	full := len(d.starts) >= goAwayPairs
	if full && c != nil && c.newClient {
		return nil // c's client has no pair of its own (clientSet)
	}
	p := d.starts[k]
	if p == nil && !full {
		p = &pairStarts{}
		d.starts[k] = p
		if c != nil {
			c.ownsKey = true
		}
	}
	return p
}

// connStart is a connection's id and first frame.
type connStart struct {
	id    event.ConnID
	frame uint64
	ts    time.Time
}

// goAwayPending is a GOAWAY finding waiting for the reconnect.
type goAwayPending struct {
	pending
	key kaKey
	dir event.Dir
	at  time.Time // the last GOAWAY
}

func (d *goAway) final(c *Conn) {
	if p := d.pair(kaKey{c.Client(), c.Server()}, c); p != nil {
		p.add(connStart{c.ID(), c.TCP.FirstFrame, c.TCP.FirstTS})
	} else {
		d.dropped = true
	}
}

func (d *goAway) merge(o detector) {
	od := o.(*goAway)
	d.found = append(d.found, od.found...)
	d.dropped = d.dropped || od.dropped
	for k, v := range od.starts {
		if p := d.pair(k, nil); p != nil {
			p.partial = p.partial || v.partial
			p.add(v.starts...)
		} else {
			d.dropped = true
		}
	}
}

func (d *goAway) observe(c *Conn) {
	if c.App == nil || c.App.HTTP2 == nil {
		return
	}
	for _, dir := range []event.Dir{event.S2C, event.C2S} {
		var gs []http2.GoAway
		for _, g := range c.App.HTTP2.GoAways {
			if g.Dir == dir {
				gs = append(gs, g)
			}
		}
		if len(gs) > 0 {
			f := goAwayFinding(c, dir, gs)
			d.found = append(d.found, goAwayPending{pending: newPending(f, c), key: kaKey{c.Client(), c.Server()}, dir: dir, at: gs[len(gs)-1].Ref.TS})
		}
	}
}

func (d *goAway) findings(in *capture) []Finding {
	slices.SortStableFunc(d.found, func(a, b goAwayPending) int { return cmp.Compare(a.conn, b.conn) })
	var out []Finding
	for _, p := range d.found {
		// The reconnect: only meaningful when the server sent the GOAWAY.
		if p.dir == event.S2C {
			f := &p.f
			ps := d.starts[p.key]
			if ps == nil {
				ps = &pairStarts{partial: d.dropped}
			}
			if r := reconnectAfter(ps.starts, p.conn, p.at, d.cfg.ReconnectWindow); r != nil {
				delay := r.ts.Sub(p.at)
				f.Metrics["reconnect_ms"] = ms(delay)
				f.Connections = append(f.Connections, r.id)
				f.Summary += fmt.Sprintf("; the client reconnected %s later (connection %s)", fmtDur(delay), connText(r.id))
				f.Evidence = append(f.Evidence, evidence(r.id, 0, event.Ref{Frame: r.frame, TS: r.ts},
					fmt.Sprintf("client's next connection to %s, %s after the GOAWAY", p.key.server, fmtDur(delay))))
			} else if in.conns > 1 && !ps.partial {
				f.Summary += fmt.Sprintf("; no new connection from the client within %s", fmtDur(d.cfg.ReconnectWindow))
			}
		}
		out = append(out, p.finish(in))
	}
	return out
}

// goAwayFinding builds the finding of the GOAWAYs gs that dir sent on c.
func goAwayFinding(c *Conn, dir event.Dir, gs []http2.GoAway) Finding {
	first, last := gs[0], gs[len(gs)-1]
	lastID := uint32(maxStreamID)
	code, debug := http2.ErrCodeNo, ""
	for _, g := range gs {
		lastID = min(lastID, g.LastStreamID)
		if code == http2.ErrCodeNo && g.Code != http2.ErrCodeNo {
			code = g.Code
		}
		if debug == "" && g.Debug != "" {
			debug = g.Debug
		}
	}
	graceful := first.Code == http2.ErrCodeNo && first.LastStreamID == maxStreamID && len(gs) > 1

	// The streams the receiver of the GOAWAY opened.
	sender, receiver := dirWho(dir), dirWho(dir.Reverse())
	var cut, unfinished []uint32
	var maxOpened uint32
	for i := range c.Records.Streams {
		st := &c.Records.Streams[i]
		if initiatorDir(st) != dir.Reverse() {
			continue
		}
		maxOpened = max(maxOpened, st.ID)
		// The server's END_STREAM answers a client stream, and completes
		// a pushed one.
		answered := st.ServerEnd
		done := answered != nil && (st.ClientEnd != nil || dir == event.C2S)
		if done && answered.Frame < first.Ref.Frame || st.Reset != nil && st.Reset.Ref.Frame < first.Ref.Frame {
			continue // over before the GOAWAY
		}
		// A stream its opener reset in the very segment that opened it
		// (a rapid reset's, written on after the GOAWAY) was given up,
		// not cut. One it reset later may be the opener's answer to the
		// GOAWAY (Go's client resets each stream above last-stream-id):
		// that one was cut.
		abandoned := st.Reset != nil && st.Reset.Dir == dir.Reverse() && st.FirstHeaders != nil &&
			resetWithOpen(c, *st.FirstHeaders, st.Reset.Ref)
		switch {
		case st.ID > lastID && answered == nil && !abandoned:
			cut = append(cut, st.ID)
		case st.ID <= lastID && !done && st.Reset == nil:
			unfinished = append(unfinished, st.ID)
		}
	}
	abrupt := code == http2.ErrCodeNo && !graceful && lastID != maxStreamID && len(cut) > 0

	f := Finding{Kind: KindGoAway, Severity: Info, Connections: []event.ConnID{c.ID()}}
	calm := strings.Contains(debug, "too_many_pings")
	switch {
	case calm || code == http2.ErrCodeEnhanceYourCalm && strings.Contains(strings.ToLower(debug), "ping"):
		f.Cause = CauseTooManyPings
	case code != http2.ErrCodeNo:
		f.Cause = CauseGoAwayError
	case dir == event.C2S:
		f.Cause = CauseClientGoAway
	case len(cut) > 0 || abrupt:
		f.Cause = CauseStreamsRefused
	default:
		f.Cause = CauseGraceful
	}
	switch {
	case calm || code == http2.ErrCodeEnhanceYourCalm || code == http2.ErrCodeProtocol || code == http2.ErrCodeInternal:
		f.Severity = Critical
	case code != http2.ErrCodeNo || len(cut) > 0 || len(unfinished) > 0 || abrupt:
		f.Severity = Warning
	}
	m := map[string]any{
		"goaways":            len(gs),
		"last_stream_id":     lastID,
		"streams_cut":        len(cut),
		"streams_unfinished": len(unfinished),
		"max_stream_id":      maxOpened,
		"graceful":           b2i(graceful),
	}
	if graceful {
		m["drain_ms"] = ms(last.Ref.TS.Sub(first.Ref.TS))
	}
	f.Metrics = m

	// Summary.
	var b strings.Builder
	switch {
	case graceful:
		fmt.Fprintf(&b, "%s drained connection %s gracefully: GOAWAY(NO_ERROR, 2^31-1) then GOAWAY(%s, last stream %d) %s later",
			capital(sender), connText(c.ID()), last.Code, last.LastStreamID, fmtDur(last.Ref.TS.Sub(first.Ref.TS)))
	case abrupt:
		fmt.Fprintf(&b, "%s sent GOAWAY(NO_ERROR, last stream %d) on connection %s with no graceful drain while streams above it were in flight",
			capital(sender), lastID, connText(c.ID()))
	default:
		fmt.Fprintf(&b, "%s sent GOAWAY(%s, last stream %d) on connection %s", capital(sender), code, lastID, connText(c.ID()))
	}
	if debug != "" {
		fmt.Fprintf(&b, ", debug %q", clipString(debug, 64))
	}
	if len(cut) > 0 {
		fmt.Fprintf(&b, "; %d %s stream(s) above it were not processed", len(cut), receiver)
	}
	if len(unfinished) > 0 {
		fmt.Fprintf(&b, "; %d stream(s) were still in flight and never finished", len(unfinished))
	}

	// Evidence.
	for _, g := range gs {
		what := fmt.Sprintf("%s GOAWAY(%s), last-stream-id %d", sender, g.Code, g.LastStreamID)
		if g.Debug != "" {
			what += fmt.Sprintf(", debug %q", clipString(g.Debug, 64))
		}
		f.Evidence = append(f.Evidence, evidence(c.ID(), 0, g.Ref, what))
	}
	byID := map[uint32]*http2.Stream{}
	for i := range c.Records.Streams {
		byID[c.Records.Streams[i].ID] = &c.Records.Streams[i]
	}
	add := func(ids []uint32, what string) {
		for _, id := range ids {
			f.Streams = append(f.Streams, StreamRef{Conn: c.ID(), Stream: id})
			if st := byID[id]; st != nil && st.FirstHeaders != nil && len(f.Evidence) < maxEvidence/2 {
				f.Evidence = append(f.Evidence, evidence(c.ID(), id, *st.FirstHeaders, what))
			}
		}
	}
	add(cut, fmt.Sprintf("stream opened by the %s above last-stream-id %d, never answered", receiver, lastID))
	add(unfinished, "stream in flight at the GOAWAY, never finished")

	f.Summary = b.String()
	f.Confidence = confidence(nil, c)
	if c.App.HTTP2.MidConnection {
		f.Confidence = f.Confidence.with("capture started mid-connection: streams before it are unknown")
	}
	f.Remedy = goAwayRemedy(dir, code, debug, graceful, len(cut)+len(unfinished) > 0)
	return f
}

// initiatorDir returns the side that opened st.
func initiatorDir(st *http2.Stream) event.Dir {
	if st.ID%2 == 1 {
		return event.C2S
	}
	return event.S2C
}

// reconnectAfter returns the first of starts (the connections from one
// client IP to one server), other than connection self, that starts
// within window after at (the lowest id among equals), nil when none.
func reconnectAfter(starts []connStart, self event.ConnID, at time.Time, window time.Duration) *connStart {
	var best *connStart
	for i := range starts {
		d := &starts[i]
		if d.id == self || d.ts.Before(at) || d.ts.Sub(at) > window {
			continue
		}
		if best == nil || d.ts.Before(best.ts) || d.ts.Equal(best.ts) && d.id < best.id {
			best = d
		}
	}
	return best
}

// goAwayRemedy names what to change for a GOAWAY.
func goAwayRemedy(dir event.Dir, code http2.ErrCode, debug string, graceful, hurt bool) string {
	switch {
	case strings.Contains(debug, "too_many_pings"):
		return "gRPC keepalive enforcement: the client pings more often than the server permits. Keep the client's " +
			"keepalive.ClientParameters.Time at or above the server's keepalive.EnforcementPolicy.MinTime (default 5 min), " +
			"and set PermitWithoutStream the same on both sides (a client pinging without active streams needs " +
			"EnforcementPolicy.PermitWithoutStream=true on the server); or lower MinTime on the server."
	case code == http2.ErrCodeEnhanceYourCalm:
		return "The peer considers this side abusive (ENHANCE_YOUR_CALM): lower the rate of pings, SETTINGS, resets " +
			"or new streams, or raise the peer's limits (grpc-go keepalive.EnforcementPolicy, Envoy overload manager)."
	case code == http2.ErrCodeProtocol || code == http2.ErrCodeInternal || code == http2.ErrCodeCompression || code == http2.ErrCodeFlowControl || code == http2.ErrCodeFrameSize:
		return fmt.Sprintf("A connection error (%s): one side's HTTP/2 implementation, or a proxy in between, "+
			"broke the protocol or failed; look at the frames just before the GOAWAY, update golang.org/x/net, "+
			"grpc-go or the proxy (Envoy, nginx), and make clients retry idempotent requests on a new connection.", code)
	case dir == event.C2S && code == http2.ErrCodeNo:
		return "The client closed the connection (grpc.ClientConn.Close, http.Transport.CloseIdleConnections, idle " +
			"timeout): expected; nothing to change unless requests were still in flight, in which case close only " +
			"after they finish."
	case strings.Contains(debug, "max_age") || strings.Contains(debug, "max_idle") || graceful:
		s := "The server drains connections on purpose (grpc-go keepalive.ServerParameters.MaxConnectionAge / " +
			"MaxConnectionIdle, net/http Server.Shutdown, Envoy drain_timeout and " +
			"common_http_protocol_options.max_connection_duration)."
		if hurt {
			s += " Streams were cut: give the drain enough time (MaxConnectionAgeGrace, Shutdown context, drain_timeout " +
				"longer than the slowest request) and let clients retry idempotent requests above last-stream-id."
		}
		return s
	}
	return "The server closed the connection without a graceful drain: send GOAWAY(2^31-1) first and wait a round " +
		"trip (net/http Server.Shutdown, grpc-go GracefulStop, keepalive MaxConnectionAgeGrace, Envoy drain_timeout), " +
		"and let clients retry idempotent requests that were not processed (above last-stream-id)."
}

// b2i returns 1 for true, 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clipString bounds s to n bytes.
func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// resetWithOpen reports whether a stream opened at open was reset at rst
// by its opener in the same write: in the segment that opened it, or
// sooner after it than half the handshake's round trip (the next segment
// of one write), too soon to be an answer to anything its peer sent.
func resetWithOpen(c *Conn, open, rst event.Ref) bool {
	if rst.Frame == open.Frame {
		return true
	}
	rtt := c.TCP.HandshakeRTTMS
	return rtt != nil && rst.Frame > open.Frame && rst.TS.Sub(open.TS) < time.Duration(*rtt*float64(time.Millisecond)/2)
}
