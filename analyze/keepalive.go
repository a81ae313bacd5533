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
	"github.com/h2scope/h2scope/dissect/tcp"
)

// KeepaliveConfig holds the keepalive_mismatch thresholds.
type KeepaliveConfig struct {
	// MinIdle is the shortest idle gap before a server close that counts
	// as an idle timeout; RaceWindow the longest time between a request
	// and the server FIN or RST it crosses.
	MinIdle    time.Duration
	RaceWindow time.Duration
}

func defaultKeepalive() KeepaliveConfig {
	return KeepaliveConfig{MinIdle: 500 * time.Millisecond, RaceWindow: time.Second}
}

func (c *KeepaliveConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.MinIdle, "keepalive-min-idle", c.MinIdle, "keepalive_mismatch: shortest idle gap before a server close counted as an idle timeout")
	fs.DurationVar(&c.RaceWindow, "keepalive-race", c.RaceWindow, "keepalive_mismatch: longest request-to-server-close delay counted as a race")
}

// serverClose is how and when the server ended a connection: its first
// FIN or RST, or (HTTP/2) a GOAWAY that came after an idle gap.
type serverClose struct {
	ref  event.Ref
	what string // "FIN", "RST", "GOAWAY"
	// lastStream is the GOAWAY's last-stream-id (what == "GOAWAY").
	lastStream uint32
}

// serverCloseOf returns the server's first closing frame of c (false
// when the client closed first or the connection stayed open): the
// earlier of its FIN and RST, or an earlier GOAWAY. It returns a value:
// most connections keep none of it.
func serverCloseOf(c *Conn) (serverClose, bool) {
	if c.TCP.Close != tcp.CloseFINServer && c.TCP.Close != tcp.CloseRSTServer {
		return serverClose{}, false
	}
	var sc serverClose
	ok := false
	if r := c.FIN[event.S2C]; r != nil {
		sc, ok = serverClose{ref: *r, what: "FIN"}, true
	}
	if r := c.RST[event.S2C]; r != nil && (!ok || r.Frame < sc.ref.Frame) {
		sc, ok = serverClose{ref: *r, what: "RST"}, true
	}
	if c.App != nil && c.App.HTTP2 != nil {
		for _, g := range c.App.HTTP2.GoAways {
			if g.Dir == event.S2C && (!ok || g.Ref.Frame < sc.ref.Frame) {
				sc, ok = serverClose{ref: g.Ref, what: "GOAWAY", lastStream: g.LastStreamID}, true
				break
			}
		}
	}
	return sc, ok
}

// answered reports whether the server answered an exchange.
func answered(x *Exchange) bool {
	return x.Status != 0 || x.Response != nil || x.ResponseEnd != nil
}

// kaRef is what keepalive keeps of a connection it cites: its id, and
// the server's first RST and the confidence reasons, brought up to date
// when the connection finishes.
type kaRef struct {
	id      event.ConnID
	rst     *event.Ref
	reasons connReasons
}

// ID returns the connection's id.
func (r *kaRef) ID() event.ConnID { return r.id }

// kaRace is one request that crossed the server's close.
type kaRace struct {
	c     *kaRef
	x     *Exchange
	sc    *serverClose
	delta time.Duration // request time minus close time
	lost  bool          // not answered
}

// kaIdle is one server close after an idle gap.
type kaIdle struct {
	c    *kaRef
	sc   *serverClose
	last *event.Ref // end of the last exchange (or the handshake)
	gap  time.Duration
}

// kaGroup gathers one (client, server) pair's facts.
type kaGroup struct {
	client      netip.Addr
	server      netip.AddrPort
	idles       []kaIdle
	races       []kaRace
	reuseGaps   durSet    // idle time before a reused connection's next request
	reuseMax    *Exchange // the request after the longest reuse gap
	reuseConn   *kaRef
	reuseMaxGap time.Duration
	clientIdle  durSet // idle time before the client closed
	advertised  int    // Keep-Alive timeout= seconds (largest seen)
	closeAsked  int    // server closes after Connection: close
	goaway      int    // server closes with a GOAWAY and nothing lost
	pings       int    // client PINGs (HTTP/2 health checks)
	unknown     int    // connections whose requests are unknown
}

// keepalive reports servers that close idle connections
// while (or before) the client reuses them.
//
// Signal: per (client IP, server IP:port), connections the server closed
// first (FIN, RST, or an HTTP/2 GOAWAY) after an idle gap of at least
// MinIdle since the last exchange ended: the gaps estimate the server's
// idle timeout (min, median), as does an HTTP/1 Keep-Alive: timeout=
// header. It measures the client's reuse gaps (idle time before a
// request on a kept connection) and how long the client keeps idle
// connections before closing them itself, and looks for races: a request
// (HTTP/1 request, HTTP/2 stream) sent after the server's FIN, RST or
// idle GOAWAY, or within RaceWindow before it and never answered, which
// the server typically answers with a RST.
//
// Thresholds: a race is a warning, critical when a request was lost to
// it (no response); a client reuse gap at least the server's idle
// timeout (estimated or advertised) is a warning; idle closes without
// either are reported at info, with the estimated timeout.
//
// False positives avoided: closes after HTTP/1 Connection: close (the
// close was asked for, not an idle timeout); HTTP/2 GOAWAYs after which
// no stream was lost (graceful); connections the client closed first;
// TLS connections without a key log (their requests are unknown); an
// HTTP/2 request begun before the close whose header block never ended
// (a CONTINUATION flood's: the server closed on what it was reading);
// streams the client reset in the segment that opened them.
//
// Metrics: server_idle_closes, server_idle_timeout_{min,median}_ms,
// server_advertised_timeout_ms, client_reuse_gap_{median,max}_ms,
// client_idle_close_median_ms, races, requests_lost, close_requested,
// graceful_goaways, client_pings, unknown_request_conns.
//
// Each connection's facts are added to its group when it is observed
// (kaConn), in whatever order connections end; findings puts the idle
// closes and races back in connection id order, and the longest reuse gap
// goes to the lowest connection id among equals, so the result does not
// depend on that order.
type keepalive struct {
	cfg    KeepaliveConfig
	groups map[kaKey]*kaGroup
	// unfinished holds the connections cited that did not finish yet:
	// final brings their refs up to date.
	unfinished map[event.ConnID]*kaRef
	scratch    kaGroup // observe's, for the connection at hand
	scratchRef kaRef   // and its kaRef, moved to the heap when cited
}

// kaKey identifies a keepalive group.
type kaKey struct {
	client netip.Addr
	server netip.AddrPort
}

func (d *keepalive) observe(c *Conn) {
	if c.TCP == nil {
		return
	}
	// The connection's facts go to a group of their own first, so that
	// a pair with nothing to keep (a SYN that was never answered) gets
	// no group.
	k := kaKey{c.Client(), c.Server()}
	// The facts go to d's scratch group, moved to the heap only when
	// there are some: most connections (every unanswered SYN) have none.
	d.scratch = kaGroup{client: k.client, server: k.server}
	d.scratchRef = kaRef{id: c.ID(), rst: c.RST[event.S2C], reasons: reasonsOf(c)}
	kaConn(d.cfg, &d.scratch, c, &d.scratchRef)
	if d.scratch.empty() {
		d.scratch = kaGroup{}
		return
	}
	if s := &d.scratch; len(s.idles) > 0 || len(s.races) > 0 || s.reuseConn == &d.scratchRef {
		ref := new(kaRef)
		*ref = d.scratchRef
		ref.rst = ownRef(ref.rst) // c's own, which the Collector reuses
		s.cite(&d.scratchRef, ref)
		if d.unfinished == nil {
			d.unfinished = map[event.ConnID]*kaRef{}
		}
		d.unfinished[ref.id] = ref
	}
	if old := d.groups[k]; old != nil {
		old.merge(&d.scratch) // which keeps no pointer to it
		d.scratch = kaGroup{}
		return
	}
	if d.groups == nil {
		d.groups = map[kaKey]*kaGroup{}
	}
	g := new(kaGroup)
	*g, d.scratch = d.scratch, kaGroup{}
	d.groups[k] = g
}

// cite makes g's citations of connection from cite to.
func (g *kaGroup) cite(from, to *kaRef) {
	if g.reuseConn == from {
		g.reuseConn = to
	}
	for i := range g.idles {
		if g.idles[i].c == from {
			g.idles[i].c = to
		}
	}
	for i := range g.races {
		if g.races[i].c == from {
			g.races[i].c = to
		}
	}
}

// empty reports whether g holds no fact.
func (g *kaGroup) empty() bool {
	return len(g.idles) == 0 && len(g.races) == 0 && g.reuseGaps.n == 0 && g.reuseMax == nil &&
		g.clientIdle.n == 0 && g.advertised == 0 && g.closeAsked == 0 && g.goaway == 0 && g.pings == 0 && g.unknown == 0
}

func (d *keepalive) findings(in *capture) []Finding {
	gs := make([]*kaGroup, 0, len(d.groups))
	for _, g := range d.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *kaGroup) int {
		return cmp.Or(a.client.Compare(b.client), a.server.Compare(b.server))
	})
	var out []Finding
	for _, g := range gs {
		slices.SortStableFunc(g.idles, func(a, b kaIdle) int { return cmp.Compare(a.c.ID(), b.c.ID()) })
		slices.SortStableFunc(g.races, func(a, b kaRace) int { return cmp.Compare(a.c.ID(), b.c.ID()) })
		if f, ok := kaFinding(in, d.cfg, g); ok {
			out = append(out, f)
		}
	}
	return out
}

// kaConn adds one connection's facts to its group.
func kaConn(cfg KeepaliveConfig, g *kaGroup, c *Conn, ref *kaRef) {
	h1 := c.App != nil && c.App.HTTP1 != nil
	if h1 {
		g.advertised = max(g.advertised, c.App.HTTP1.KeepAliveTimeout)
	}
	for _, p := range c.Records.Pings {
		if p.Dir == event.C2S && !p.Ack {
			g.pings++
		}
	}
	if _, ok := requests(c); !ok {
		g.unknown++
		return
	}
	// Reuse gaps: time with no exchange in progress before the next
	// answered one starts (a request that raced the close is no reuse).
	var busyUntil *event.Ref
	for i := range c.Records.Exchanges {
		x := &c.Records.Exchanges[i]
		s, e := x.Start(), x.End()
		if s == nil || e == nil {
			continue
		}
		if busyUntil != nil && s.TS.After(busyUntil.TS) && answered(x) {
			gap := s.TS.Sub(busyUntil.TS)
			g.reuseGaps.add(gap)
			if g.reuseMax == nil || gap > g.reuseMaxGap || gap == g.reuseMaxGap && c.ID() < g.reuseConn.ID() {
				g.reuseMax, g.reuseConn, g.reuseMaxGap = ownExchange(x), ref, gap
			}
		}
		if busyUntil == nil || e.TS.After(busyUntil.TS) {
			busyUntil = e
		}
	}

	sc, ok := serverCloseOf(c)
	if !ok {
		// The client closed first: how long it kept the connection idle.
		if fin := c.FIN[event.C2S]; fin != nil && c.TCP.Close == tcp.CloseFINClient && busyUntil != nil && fin.TS.After(busyUntil.TS) {
			g.clientIdle.add(fin.TS.Sub(busyUntil.TS))
		}
		return
	}
	// The races and the idle gap kept share one copy of sc.
	var scp *serverClose
	kept := func() *serverClose {
		if scp == nil {
			scp = new(serverClose)
			*scp = sc
		}
		return scp
	}
	if h1 && c.App.HTTP1.CloseRequestedBy != "" && sc.what != "GOAWAY" {
		// Closed because a Connection: close asked for it: not an idle
		// timeout, and requests cut short by it are not a race.
		g.closeAsked++
		return
	}

	if _, _, _, lost := lostOf(c, cfg.RaceWindow); lost {
		return // requests were in flight: not idle (connection_lost)
	}

	// Races: requests crossing the server's close. A request after the
	// close races it; one shortly before it races when it got no
	// answer and the server reset the connection (or, after a GOAWAY,
	// when its stream is above the last-stream-id).
	var last *event.Ref
	raced := false
	srst := c.RST[event.S2C]
	for i := range c.Records.Exchanges {
		x := &c.Records.Exchanges[i]
		s := x.Request
		if s == nil {
			s = x.Start()
		}
		if s == nil {
			continue
		}
		d := s.TS.Sub(sc.ref.TS)
		refused := sc.what != "GOAWAY" || x.Stream > sc.lastStream
		// A stream the client reset in the segment that opened it (a
		// rapid reset's, written on after the server's GOAWAY) asked
		// for nothing to be lost.
		clientReset := x.Reset != nil && x.Reset.Dir == event.C2S && x.Request != nil && resetWithOpen(c, *x.Request, x.Reset.Ref)
		after := s.Frame > sc.ref.Frame && refused && !clientReset
		// A request begun before the close whose head never ended (a
		// header block without END_HEADERS, a CONTINUATION flood's) was
		// still being read when the server closed: the server closed on
		// it, not on an idle connection.
		before := !after && d > -cfg.RaceWindow && !answered(x) && x.Reset == nil && refused && !x.HeadOpen &&
			(sc.what == "GOAWAY" || (srst != nil && srst.Frame >= s.Frame))
		if after || before {
			g.races = append(g.races, kaRace{c: ref, x: ownExchange(x), sc: kept(), delta: d, lost: !answered(x)})
			raced = true
			continue
		}
		if e := x.End(); e != nil && e.Frame <= sc.ref.Frame && (last == nil || e.TS.After(last.TS)) {
			last = e
		}
	}
	if last == nil {
		if len(c.Records.Exchanges) > 0 {
			return
		}
		// Opened and never used: idle from the handshake.
		switch {
		case len(c.SYNACKs) > 0:
			last = &c.SYNACKs[len(c.SYNACKs)-1]
		case len(c.SYNs) > 0:
			last = &c.SYNs[0]
		default:
			return
		}
	}
	gap := sc.ref.TS.Sub(last.TS)
	if gap < cfg.MinIdle {
		return
	}
	if sc.what == "GOAWAY" && !raced {
		g.goaway++
	}
	lastv := *last // a copy: last points into c's records or refs
	g.idles = append(g.idles, kaIdle{c: ref, sc: kept(), last: &lastv, gap: gap})
}

func kaFinding(in *capture, cfg KeepaliveConfig, g *kaGroup) (Finding, bool) {
	if len(g.idles) == 0 && len(g.races) == 0 {
		return Finding{}, false
	}
	var idleGaps []time.Duration
	for _, i := range g.idles {
		idleGaps = append(idleGaps, i.gap)
	}
	tmin, tmed, _ := durationStats(idleGaps)
	timeout := tmin
	source := "estimated"
	if g.advertised > 0 {
		adv := time.Duration(g.advertised) * time.Second
		if timeout == 0 || adv < timeout {
			timeout, source = adv, "advertised"
		}
	}
	_, rmed, rmax, rest := g.reuseGaps.stats()
	_, cmed, _, cest := g.clientIdle.stats()
	lost := 0
	for _, r := range g.races {
		if r.lost {
			lost++
		}
	}
	reuseOver := timeout > 0 && rmax >= timeout

	sev := Info
	switch {
	case lost > 0:
		sev = Critical
	case len(g.races) > 0 || reuseOver:
		sev = Warning
	}

	f := Finding{Kind: KindKeepaliveMismatch, Severity: sev, Cause: CauseIdleClose}
	if len(g.races) > 0 {
		f.Cause = CauseReuseRace
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Server %s", g.server)
	if len(g.idles) > 0 {
		fmt.Fprintf(&b, " closed %d idle connection(s) from %s after %s idle (min; median %s)", len(g.idles), g.client, fmtDur(tmin), fmtDur(tmed))
	} else {
		fmt.Fprintf(&b, " closed connections from %s", g.client)
	}
	if g.advertised > 0 {
		fmt.Fprintf(&b, ", advertising Keep-Alive: timeout=%d", g.advertised)
	}
	if len(g.races) > 0 {
		fmt.Fprintf(&b, "; %d request(s) crossed the server's close", len(g.races))
		if lost > 0 {
			fmt.Fprintf(&b, " and %d got no response", lost)
		}
	}
	if reuseOver {
		fmt.Fprintf(&b, "; the client reused a connection after %s idle, longer than the server's %s idle timeout %s", fmtDur(rmax), source, fmtDur(timeout))
	}
	if sev == Info {
		b.WriteString("; the client kept them idle until the server closed them")
	}
	f.Summary = b.String()

	m := map[string]any{
		"server_idle_closes":    len(g.idles),
		"races":                 len(g.races),
		"requests_lost":         lost,
		"close_requested":       g.closeAsked,
		"graceful_goaways":      g.goaway,
		"client_pings":          g.pings,
		"unknown_request_conns": g.unknown,
	}
	if len(g.idles) > 0 {
		m["server_idle_timeout_min_ms"], m["server_idle_timeout_median_ms"] = ms(tmin), ms(tmed)
	}
	if g.advertised > 0 {
		m["server_advertised_timeout_ms"] = float64(g.advertised) * 1000
	}
	if g.reuseGaps.n > 0 {
		m["client_reuse_gap_median_ms"], m["client_reuse_gap_max_ms"] = ms(rmed), ms(rmax)
	}
	if g.clientIdle.n > 0 {
		m["client_idle_close_median_ms"] = ms(cmed)
	}
	if rest || cest {
		m["estimated"] = fmt.Sprintf("client_reuse_gap_median_ms and client_idle_close_median_ms are estimated from a quantile sketch past %d values (relative error at most %g%%)", hsExact, 100*sketchAlpha)
	}
	f.Metrics = m

	var involved []*kaRef
	for _, r := range g.races {
		involved = append(involved, r.c)
		f.Evidence = append(f.Evidence, evidence(r.c.ID(), 0, r.sc.ref, fmt.Sprintf("server %s closes the connection", r.sc.what)))
		req := r.x.Request
		if req == nil {
			req = r.x.Start()
		}
		when := fmt.Sprintf("%s after", fmtDur(r.delta))
		if r.delta < 0 {
			when = fmt.Sprintf("%s before", fmtDur(-r.delta))
		}
		what := fmt.Sprintf("request %s %s sent %s the server's %s", r.x.Method, r.x.Path, when, r.sc.what)
		if r.lost {
			what += "; never answered"
		}
		e := evidence(r.c.ID(), r.x.Stream, *req, what)
		if len(f.Evidence) < 3 {
			e = e.decisive() // the first race
		}
		f.Evidence = append(f.Evidence, e)
		if r.x.Stream > 0 {
			f.Streams = append(f.Streams, StreamRef{Conn: r.c.ID(), Stream: r.x.Stream})
		}
		if rst := r.c.rst; rst != nil && rst.Frame >= req.Frame {
			f.Evidence = append(f.Evidence, evidence(r.c.ID(), 0, *rst, "server RST answers the request on the closed connection"))
		}
	}
	for i, id := range g.idles {
		involved = append(involved, id.c)
		if i >= 4 {
			continue
		}
		f.Evidence = append(f.Evidence, evidence(id.c.ID(), 0, *id.last, "last exchange ends; the connection is idle from here"))
		e := evidence(id.c.ID(), 0, id.sc.ref, fmt.Sprintf("server %s after %s idle (idle timeout)", id.sc.what, fmtDur(id.gap)))
		if i == 0 && len(g.races) == 0 {
			e = e.decisive() // no race: the first idle close decides
		}
		f.Evidence = append(f.Evidence, e)
	}
	if reuseOver && g.reuseMax != nil {
		involved = append(involved, g.reuseConn)
		if s := g.reuseMax.Start(); s != nil {
			f.Evidence = append(f.Evidence, evidence(g.reuseConn.ID(), g.reuseMax.Stream, *s, fmt.Sprintf("request %s %s reuses the connection after %s idle", g.reuseMax.Method, g.reuseMax.Path, fmtDur(rmax))))
		}
	}
	reasons := make([]connReasons, len(involved))
	for i, c := range involved {
		f.Connections = append(f.Connections, c.ID())
		reasons[i] = c.reasons
	}
	f.Confidence = confidenceOf(in, reasons...)
	if g.unknown > 0 {
		f.Confidence = f.Confidence.with(fmt.Sprintf("TLS not decrypted on %d connection(s): their idle gaps and races are unknown", g.unknown))
	}
	f.Remedy = kaRemedy(g, timeout)
	return f, true
}

func kaRemedy(g *kaGroup, timeout time.Duration) string {
	var b strings.Builder
	if timeout > 0 {
		fmt.Fprintf(&b, "Make the client's idle timeout shorter than the server's (about %s here): ", fmtDur(timeout))
	} else {
		b.WriteString("Make the client's idle timeout shorter than the server's: ")
	}
	b.WriteString("Go http.Transport.IdleConnTimeout below the server's http.Server.IdleTimeout, nginx keepalive_timeout (default 75s), Envoy common_http_protocol_options.idle_timeout (default 1h) or the AWS ALB idle timeout (default 60s); or raise the server's. ")
	b.WriteString("For HTTP/2 let the client probe idle connections: golang.org/x/net/http2 Transport.ReadIdleTimeout and PingTimeout, gRPC keepalive.ClientParameters (Time, Timeout) within the server's keepalive.EnforcementPolicy. ")
	b.WriteString("Retry idempotent requests that fail with a connection reset (Go retries them itself when the request has GetBody and is idempotent or carries Idempotency-Key).")
	return b.String()
}

func (d *keepalive) final(c *Conn) {
	if r := d.unfinished[c.ID()]; r != nil {
		r.rst, r.reasons = ownRef(c.RST[event.S2C]), reasonsOf(c)
		delete(d.unfinished, c.ID())
	}
}

func (d *keepalive) merge(o detector) {
	for id, r := range o.(*keepalive).unfinished {
		if d.unfinished == nil {
			d.unfinished = map[event.ConnID]*kaRef{}
		}
		d.unfinished[id] = r
	}
	for k, og := range o.(*keepalive).groups {
		if d.groups == nil {
			d.groups = map[kaKey]*kaGroup{}
		}
		g := d.groups[k]
		if g == nil {
			d.groups[k] = og
			continue
		}
		g.merge(og)
	}
}

// merge adds o's facts, o being the same pair's group over other
// connections.
func (g *kaGroup) merge(o *kaGroup) {
	g.idles = append(g.idles, o.idles...)
	g.races = append(g.races, o.races...)
	g.reuseGaps.merge(&o.reuseGaps)
	if o.reuseMax != nil && (g.reuseMax == nil || o.reuseMaxGap > g.reuseMaxGap ||
		o.reuseMaxGap == g.reuseMaxGap && o.reuseConn.ID() < g.reuseConn.ID()) {
		g.reuseMax, g.reuseConn, g.reuseMaxGap = o.reuseMax, o.reuseConn, o.reuseMaxGap
	}
	g.clientIdle.merge(&o.clientIdle)
	g.advertised = max(g.advertised, o.advertised)
	g.closeAsked += o.closeAsked
	g.goaway += o.goaway
	g.pings += o.pings
	g.unknown += o.unknown
}
