package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// ConnectionLostConfig holds connection_lost's threshold.
type ConnectionLostConfig struct {
	// MinInFlight is the least number of requests, streams or calls in
	// flight at a connection's close that makes it lost.
	MinInFlight int
}

func defaultConnectionLost() ConnectionLostConfig {
	return ConnectionLostConfig{MinInFlight: 1}
}

func (c *ConnectionLostConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.MinInFlight, "lost-min-in-flight", c.MinInFlight, "connection_lost: requests, streams or calls in flight at a close that make the connection lost")
}

// connectionLost reports connections that ended, by FIN or RST, while
// requests were in flight: a server killed or crashing mid-response, a
// proxy dropping the connection, a client giving up.
//
// Signal: at the connection's close (the first FIN or RST of either
// side), the requests it carried that had started before it and had no
// complete response: HTTP/2 streams the client opened that the server
// neither ended nor reset, HTTP/1.x requests without a complete response.
// The side that closed first is the cause: server_abort or
// client_abort (a client's RST; its FIN is a half-close, after which it
// may still read the response, and counts only when the server then
// closed too with responses begun and cut short). One finding per cause,
// client and server (address and name), naming its connections.
//
// False positives avoided: connections with a GOAWAY (the goaway finding
// explains them) or cut by the capture's end (no FIN or RST); requests
// sent after the peer's close (the keep-alive race: keepalive_mismatch);
// streams reset on purpose (rst_storm).
//
// Severity: server_abort is critical (requests were lost); client_abort
// a warning (the client chose to give up, or died).
//
// Metrics: connections, in_flight (requests and streams), grpc_calls
// (of those), closed_by_fin, closed_by_rst.
type connectionLost struct {
	cfg ConnectionLostConfig
	// race is keepalive_mismatch's race window: an unanswered request
	// this close before the server's close raced it (see lostOf).
	race   time.Duration
	groups map[lostKey]*lostGroup
	last   lastEntry[lostKey, lostGroup]
}

// lostKey is one finding's cause and pool.
type lostKey struct {
	cause string
	findingPool
}

// folded returns k with its client folded into anyClient.
func (k lostKey) folded() lostKey {
	k.findingPool = k.findingPool.folded()
	return k
}

func (k lostKey) compare(o lostKey) int {
	return cmp.Or(cmp.Compare(k.cause, o.cause), k.findingPool.compare(o.findingPool))
}

// lostGroup is what connection_lost keeps of one pool's lost
// connections: counts, and the lowest-id few in full.
type lostGroup struct {
	conns, inFlight, calls int
	byRST                  int
	kept                   []lostConn // the lowest ids, at most maxLostConns
}

// maxLostConns bounds the connections a lost group keeps in full.
const maxLostConns = 32

// lostConn is one lost connection.
type lostConn struct {
	id      event.ConnID
	close   event.Ref
	rst     bool
	units   []lostUnit // the first maxLostUnits
	n       int
	reasons connReasons
}

// maxLostUnits bounds the in-flight units a lost connection keeps.
const maxLostUnits = 4

// lostUnit is one request or stream in flight at the close.
type lostUnit struct {
	stream uint32
	req    event.Ref
	what   string
}

func (d *connectionLost) observe(c *Conn) {
	lc, calls, cause, ok := lostOf(c, d.race)
	if !ok || lc.n < max(d.cfg.MinInFlight, 1) {
		return
	}
	g := poolEntry(&d.groups, &d.last, lostKey{cause, poolOf(c)}, nil, newLostGroup)
	g.add(lc, calls)
}

// add counts lc, which had calls gRPC calls in flight.
func (g *lostGroup) add(lc lostConn, calls int) {
	g.conns++
	g.inFlight += lc.n
	g.calls += calls
	if lc.rst {
		g.byRST++
	}
	g.keep(lc)
}

// keep keeps lc if it is among the lowest ids.
func (g *lostGroup) keep(lc lostConn) {
	i, _ := slices.BinarySearchFunc(g.kept, lc.id, func(x lostConn, id event.ConnID) int { return cmp.Compare(x.id, id) })
	if i >= maxLostConns {
		return
	}
	g.kept = slices.Insert(g.kept, i, lc)
	if len(g.kept) > maxLostConns {
		g.kept = g.kept[:maxLostConns]
	}
}

// lostOf returns what was in flight when c closed, the gRPC calls among
// it, and the cause (who closed first); ok is false when c is no lost
// connection: it had a GOAWAY, or the capture ended it. A request the
// server's close followed within race with no answer begun is the
// keep-alive race's (keepalive_mismatch), not in flight.
func lostOf(c *Conn, race time.Duration) (lc lostConn, calls int, cause string, ok bool) {
	if c.App != nil && c.App.HTTP2 != nil && len(c.App.HTTP2.GoAways) > 0 {
		return lc, 0, "", false
	}
	var first *event.Ref
	var closer event.Dir
	var endBy *event.Ref // what ended by this frame was not in flight; first unless set
	var cutOnly bool     // count only responses begun and cut short
	for d := range 2 {
		for _, r := range [...]*event.Ref{c.FIN[d], c.RST[d]} {
			if r != nil && (first == nil || r.Frame < first.Frame) {
				first, closer = r, event.Dir(d)
				lc.rst = r == c.RST[d]
			}
		}
	}
	switch {
	case first == nil:
		return lc, 0, "", false
	case closer == event.C2S && !lc.rst:
		// A client's FIN only ends what it sends (HTTP/1.0 clients and
		// UPnP NOTIFYs half-close after the request and read on): no
		// abort. Its RST would be one.
		switch {
		case c.RST[event.C2S] != nil:
			first, lc.rst = c.RST[event.C2S], true
		case c.RST[event.S2C] != nil:
			// The server resets after the client's half-close: it
			// dropped what was in flight.
			first, closer, lc.rst = c.RST[event.S2C], event.S2C, true
		case c.FIN[event.S2C] != nil:
			// The server closed too: the responses it had begun and
			// left unfinished then, the client's close aborted (a
			// half-closing client would have been answered in full
			// first). Requests with no response begun are left out: a
			// server may refuse to answer a half-closed client, or an
			// incomplete request (an endless header block).
			endBy, cutOnly = c.FIN[event.S2C], true
		default:
			return lc, 0, "", false
		}
	}
	if endBy == nil {
		endBy = first
	}
	lc.id, lc.close, lc.reasons = c.ID(), *first, reasonsOf(c)
	add := func(u lostUnit) {
		lc.n++
		if len(lc.units) < maxLostUnits {
			lc.units = append(lc.units, u)
		}
	}
	raced := func(req, reply *event.Ref) bool {
		return closer == event.S2C && reply == nil && first.TS.Sub(req.TS) < race
	}
	grpcStreams := map[uint32]bool{}
	for i := range c.Records.Calls {
		grpcStreams[c.Records.Calls[i].Stream] = true
	}
	for i := range c.Records.Streams {
		s := &c.Records.Streams[i]
		if s.Initiator != "client" || s.FirstHeaders == nil || s.FirstHeaders.Frame > first.Frame ||
			s.ServerEnd != nil && s.ServerEnd.Frame <= endBy.Frame || s.Reset != nil && s.Reset.Ref.Frame <= endBy.Frame ||
			cutOnly && s.ReplyHeaders == nil ||
			raced(s.FirstHeaders, s.ReplyHeaders) {
			continue
		}
		what := fmt.Sprintf("stream %d", s.ID)
		if s.Method != "" || s.Path != "" {
			what += fmt.Sprintf(" (%s %s)", s.Method, clipString(s.Path, 80))
		}
		if grpcStreams[s.ID] {
			calls++
		}
		add(lostUnit{stream: s.ID, req: *s.FirstHeaders, what: what})
	}
	for _, x := range c.Records.Exchanges {
		if x.Proto != event.ProtoHTTP1 || x.Request == nil || x.Request.Frame > first.Frame ||
			x.ResponseEnd != nil && x.ResponseEnd.Frame <= endBy.Frame || cutOnly && x.Response == nil || raced(x.Request, nil) {
			continue
		}
		add(lostUnit{req: *x.Request, what: fmt.Sprintf("request %d (%s %s)", x.Seq, x.Method, clipString(x.Path, 80))})
	}
	cause = CauseServerAbort
	if closer == event.C2S {
		cause = CauseClientAbort
	}
	return lc, calls, cause, lc.n > 0
}

func (d *connectionLost) final(*Conn) {}

func newLostGroup(lostKey) *lostGroup { return &lostGroup{} }

func (d *connectionLost) merge(o detector) {
	mergePools(&d.groups, o.(*connectionLost).groups, &d.last, lostKey.compare, newLostGroup, (*lostGroup).merge)
}

// merge adds og's counts and connections, og being over other
// connections.
func (g *lostGroup) merge(og *lostGroup, _ lostKey, _ bool) {
	g.conns += og.conns
	g.inFlight += og.inFlight
	g.calls += og.calls
	g.byRST += og.byRST
	for _, lc := range og.kept {
		g.keep(lc)
	}
}

func (d *connectionLost) findings(in *capture) []Finding {
	keys := make([]lostKey, 0, len(d.groups))
	for k := range d.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b lostKey) int {
		return a.compare(b)
	})
	var out []Finding
	for _, k := range keys {
		out = append(out, lostFinding(in, k, d.groups[k]))
	}
	return out
}

// lostFinding builds the finding of one pool's lost connections.
func lostFinding(in *capture, k lostKey, g *lostGroup) Finding {
	f := Finding{Kind: KindConnectionLost, Cause: k.cause, Severity: Critical}
	closer, other := "Server", "client"
	if k.cause == CauseClientAbort {
		f.Severity, closer, other = Warning, "Client", "server"
	}
	how := "FIN"
	switch {
	case g.byRST == g.conns:
		how = "RST"
	case g.byRST > 0:
		how = "FIN or RST"
	}
	dest := k.dest()
	units := "request"
	if g.inFlight != 1 {
		units = "requests"
	}
	var b strings.Builder
	if g.conns == 1 {
		lc := g.kept[0]
		fmt.Fprintf(&b, "%s closed connection %s (%s, no GOAWAY) from %s to %s with %d %s in flight",
			closer, connText(lc.id), how, clientString(k.client), dest, g.inFlight, units)
	} else {
		fmt.Fprintf(&b, "%s closed %d connections (%s, no GOAWAY) from %s to %s with %d %s in flight",
			closer, g.conns, how, clientString(k.client), dest, g.inFlight, units)
	}
	if g.calls > 0 {
		fmt.Fprintf(&b, " (%d gRPC calls)", g.calls)
	}
	fmt.Fprintf(&b, ": the %s never got the responses", other)
	if k.cause == CauseClientAbort {
		b.Reset()
		fmt.Fprintf(&b, "%s gave up on %d %s in flight, closing %d connection(s) (%s) from %s to %s before the responses were complete",
			closer, g.inFlight, units, g.conns, how, clientString(k.client), dest)
	}
	f.Summary = b.String()
	f.Metrics = map[string]any{
		"connections":   g.conns,
		"in_flight":     g.inFlight,
		"closed_by_rst": g.byRST,
		"closed_by_fin": g.conns - g.byRST,
	}
	if g.calls > 0 {
		f.Metrics["grpc_calls"] = g.calls
	}
	reasons := make([]connReasons, 0, len(g.kept))
	who := strings.ToLower(closer)
	for i, lc := range g.kept {
		f.Connections = append(f.Connections, lc.id)
		reasons = append(reasons, lc.reasons)
		if i >= 4 {
			continue
		}
		// The decisive event first: the close, then what it cut.
		what := fmt.Sprintf("%s %s with %d %s in flight", who, map[bool]string{true: "RST", false: "FIN"}[lc.rst], lc.n, units1(lc.n))
		e := evidence(lc.id, 0, lc.close, what)
		if i == 0 {
			e = e.decisive()
		}
		f.Evidence = append(f.Evidence, e)
		for _, u := range lc.units {
			f.Evidence = append(f.Evidence, evidence(lc.id, u.stream, u.req, u.what+" sent, never answered"))
			if u.stream != 0 {
				f.Streams = append(f.Streams, StreamRef{Conn: lc.id, Stream: u.stream})
			}
		}
	}
	if g.conns > len(g.kept) {
		f.Metrics["connections_omitted"] = g.conns - len(g.kept)
	}
	f.Confidence = confidenceOf(in, reasons...)
	if k.cause == CauseClientAbort {
		f.Remedy = "The client closed or reset connections with requests in flight: a client-side timeout shorter than " +
			"the server's latency (curl --max-time, Go http.Client.Timeout or a context deadline, grpc-go call deadlines), " +
			"a client process exiting or crashing without waiting for its requests. Raise the timeout or fix the slow " +
			"handler; let the client finish or cancel its requests (RST_STREAM) before it closes."
	} else {
		f.Remedy = "The server (or a proxy in front of it) dropped connections mid-response without a GOAWAY: a crash, " +
			"an OOM kill or a hard restart, or a proxy timeout (nginx proxy_read_timeout, haproxy timeout server, " +
			"Envoy route timeout). Look at the server's logs at the close's time; restart with a graceful drain " +
			"(nginx -s reload or quit, Go http.Server.Shutdown, grpc.Server.GracefulStop, Envoy drain) so in-flight " +
			"requests finish, and let clients retry idempotent requests."
	}
	return f
}

// units1 returns "request" or "requests" for n.
func units1(n int) string {
	if n == 1 {
		return "request"
	}
	return "requests"
}
