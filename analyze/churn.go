package analyze

import (
	"cmp"
	"encoding/binary"
	"flag"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// ChurnConfig holds the reconnect_churn thresholds.
type ChurnConfig struct {
	// MinConns is the fewest connections in one pool (client IP, server
	// address, SNI or authority, TLS client fingerprint) that can churn.
	MinConns int
	// MaxRequestsPerConn is the highest mean requests per connection of a
	// churning pool; MinOneRequestShare the smallest share of its
	// connections that carried at most one request.
	MaxRequestsPerConn float64
	MinOneRequestShare float64
	// ReuseWindow is the window in which a reused 4-tuple or a FIN
	// followed by the next SYN counts as churn; it stands for the
	// TIME_WAIT period (60 s on Linux, 2×MSL elsewhere).
	ReuseWindow time.Duration
	// LongLived is the shortest lifetime of a connection that is not
	// churn however few requests it carried (a stream, a tunnel, an idle
	// connection kept for reuse).
	LongLived time.Duration
	// CriticalTimeWait is the number of connections closed by one side
	// within one ReuseWindow (so in TIME_WAIT at once on that side) that
	// makes the churn critical: ephemeral ports run out near 28,000 on a
	// default Linux client.
	CriticalTimeWait int
}

func defaultChurn() ChurnConfig {
	return ChurnConfig{MinConns: 10, MaxRequestsPerConn: 2, MinOneRequestShare: 0.5,
		ReuseWindow: 60 * time.Second, LongLived: 10 * time.Second, CriticalTimeWait: 5000}
}

func (c *ChurnConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.MinConns, "churn-min-conns", c.MinConns, "reconnect_churn: connections in one pool that can churn")
	fs.Float64Var(&c.MaxRequestsPerConn, "churn-max-reqs", c.MaxRequestsPerConn, "reconnect_churn: highest mean requests per connection of a churning pool")
	fs.Float64Var(&c.MinOneRequestShare, "churn-one-req-share", c.MinOneRequestShare, "reconnect_churn: smallest share of one-request connections")
	fs.DurationVar(&c.ReuseWindow, "churn-window", c.ReuseWindow, "reconnect_churn: window for FIN-to-next-SYN gaps and 4-tuple reuse (TIME_WAIT)")
	fs.DurationVar(&c.LongLived, "churn-long-lived", c.LongLived, "reconnect_churn: lifetime from which a connection is not churn")
	fs.IntVar(&c.CriticalTimeWait, "churn-critical-time-wait", c.CriticalTimeWait, "reconnect_churn: connections in TIME_WAIT at once on one side that make churn critical")
}

// poolKey identifies a connection pool: one client address, one server
// endpoint, one destination name and, for TLS, one client fingerprint
// (connections of one http.Transport share one tls.Config, so one JA4).
type poolKey struct {
	client netip.Addr
	server netip.AddrPort
	name   string
	ja4    string
}

// folded returns k with its client folded into anyClient.
func (k poolKey) folded() poolKey {
	k.client = anyClient
	return k
}

func (k poolKey) compare(o poolKey) int {
	return cmp.Or(k.client.Compare(o.client), k.server.Compare(o.server),
		strings.Compare(k.name, o.name), strings.Compare(k.ja4, o.ja4))
}

// destination renders the server and its name ("10.0.0.9:443 (api.test)").
func (k poolKey) destination() string {
	s := k.server.String()
	if k.name != "" && k.name != s {
		s += " (" + k.name + ")"
	}
	return s
}

// longLived reports whether a connection is a stream rather than churn:
// it switched protocols (WebSocket, CONNECT tunnel), carried a streaming
// gRPC call, or lived at least d.
func longLived(c *Conn, d time.Duration) bool {
	if c.TCP.LastTS.Sub(c.TCP.FirstTS) >= d {
		return true
	}
	if a := c.App; a != nil {
		if a.Tunnel != event.ProtoUnknown || (a.HTTP1 != nil && a.HTTP1.Upgrade != "" && a.HTTP1.Upgrade != "h2c") {
			return true
		}
	}
	return streamingCall(c)
}

// requestBucket names the histogram bucket of n requests.
func requestBucket(n int) string {
	switch {
	case n <= 2:
		return fmt.Sprint(n)
	case n <= 5:
		return "3-5"
	default:
		return "6+"
	}
}

// firstFIN returns the earlier of the two sides' first FINs (nil if none).
func firstFIN(c *Conn) *event.Ref {
	a, b := c.FIN[event.C2S], c.FIN[event.S2C]
	switch {
	case a == nil:
		return b
	case b == nil || !b.TS.Before(a.TS):
		return a
	}
	return b
}

// firstSYN returns the client's first SYN, nil when the handshake was not
// captured.
func firstSYN(c *Conn) *event.Ref {
	if len(c.SYNs) == 0 {
		return nil
	}
	return &c.SYNs[0]
}

// closerSide names the side that holds TIME_WAIT after a close: the side
// that sent the first FIN ("" after a reset or when still open).
func closerSide(cl tcp.Close) string {
	switch cl {
	case tcp.CloseFINClient:
		return "client"
	case tcp.CloseFINServer:
		return "server"
	}
	return ""
}

// churnFold reports pools whose connections are opened and
// closed instead of reused.
//
// Signal: connections are grouped into pools (client IP, server IP:port,
// SNI or first request authority, TLS client JA4). For each pool it
// counts connections and requests (HTTP/1.x requests, HTTP/2 client
// streams), the requests-per-connection histogram, the connections that
// carried at most one request, the gap from one connection's first FIN
// to the next connection's first SYN, who closed first (the side that
// sends the first FIN holds TIME_WAIT), the client ports used and the
// 4-tuples reused within ReuseWindow of their previous close.
//
// Thresholds: a pool of at least MinConns connections (default 10) whose
// known connections average at most MaxRequestsPerConn requests (2), at
// least MinOneRequestShare (0.5) of them short-lived with at most one
// request, is a warning; it is critical when a 4-tuple was reused within
// ReuseWindow (60 s) of its close (SYN into TIME_WAIT) or when one side
// closed at least CriticalTimeWait (5000) connections within one
// ReuseWindow. A pool whose requests are unknown (TLS without key log)
// but whose connections are short-lived is reported at info, as is a pool
// none of whose connections was seen opening (SYN) or closing (FIN, RST):
// a capture that kept only some data packets (a capture filter, a
// fragment) shows one request per connection but not that the
// connections were short-lived.
//
// False positives avoided: pools with many requests per connection;
// connections alive at least LongLived (10 s), upgraded (WebSocket),
// tunnelled (CONNECT) or carrying a streaming gRPC call, which are not
// counted as one-request connections; pools with fewer than MinConns
// connections; different client configurations to one server (their
// JA4 differ).
//
// Metrics: connections, requests, requests_per_conn, one_request_conns,
// one_request_share, requests_hist ("0","1","2","3-5","6+"), closed_by
// (fin_client, fin_server, rst_client, rst_server, open),
// time_wait_side, time_wait_peak, fin_to_syn_{min,median,max}_ms,
// conns_per_s, client_ports, client_port_min/max, tuple_reuses,
// close_requested_by_{client,server} (HTTP/1 Connection: close),
// max_concurrent_conns, unknown_request_conns, leaked_conns when any
// (connections idle for good and still open when the client dialled a
// later one, and open leakMinIdle after: left open, not reused).
//
// Memory: per pool, exact tallies (connections, requests, histograms,
// closes, client ports) and the first churnKeep connections in order of
// first frame, as churnConn records; the order-dependent metrics (FIN to
// next SYN gaps, 4-tuple reuses, TIME_WAIT peak, most concurrent
// connections), the connections listed and the evidence come from
// those, and a pool past churnKeep says so (metrics "estimated",
// "connections_listed").
type churnFold struct {
	cfg   ChurnConfig
	pools map[poolKey]*churnPool
}

// churnKeep is how many connections of one pool reconnect_churn keeps
// (the first, by first frame): its findings are exact up to that size.
const churnKeep = 4096

func newChurnFold(cfg ChurnConfig) *churnFold {
	return &churnFold{cfg: cfg, pools: map[poolKey]*churnPool{}}
}

// churnShown is what reconnect_churn cites of one connection: a pool
// keeps it for the first few connections it may show as evidence.
type churnShown struct {
	id          event.ConnID
	port        uint16
	first, last time.Time // the TCP summary's
	close       tcp.Close
	reqs        int
	known, long bool
	reasons     connReasons
	// closeReq is the side that asked to close (HTTP/1 Connection:
	// close): 1 the client, 2 the server, 0 none.
	closeReq uint8
	// syn is the client's first SYN; fin the first FIN, finWho its
	// sender (1 the client, 2 the server, 0 none); rst the first RST,
	// the client's first, rstWho its sender.
	syn            event.Ref
	hasSYN         bool
	fin, rst       event.Ref
	finWho, rstWho uint8
	// req is the first exchange's request, when it has one.
	req *churnRequest
	// idleFrom is when the connection went idle for good: its last
	// exchange's last frame, or its last frame when it is still open at
	// the end and no exchange was seen; zero when unknown.
	idleFrom time.Time
}

// churnRequest is the first request of a connection, as evidence cites
// it.
type churnRequest struct {
	method, path string
	stream       uint32
	ref          event.Ref
	ok           bool // set when there is one (connSummary.first)
}

func (a *churnShown) compare(b *churnShown) int {
	return cmp.Or(a.first.Compare(b.first), cmp.Compare(a.id, b.id))
}

// shown reports whether the connection may be shown as evidence: it
// carried at most one request (or an unknown number) and was short.
func (a *churnShown) shown() bool { return !(a.known && (a.reqs > 1 || a.long)) }

// churnConn is what reconnect_churn keeps of every connection (up to
// churnKeep per pool): the times its order-dependent metrics read, in
// nanoseconds since the Unix epoch. A pool keeps them encoded
// (churnConns), in about 20 bytes each.
type churnConn struct {
	id      event.ConnID
	port    uint16
	closer  uint8 // the side that closed first by FIN: 1 the client, 2 the server, 0 none
	flags   uint8 // churnSYN, churnFIN
	reasons connReasons
	// first and last are the TCP summary's first and last frame times,
	// syn the first SYN's (synFrame its frame), fin the first FIN's,
	// idle churnShown.idleFrom's.
	first, last, syn, fin, idle int64
	synFrame                    uint64
}

// churnConn flags.
const (
	churnSYN  = 1 << iota // the SYN was captured
	churnFIN              // a FIN was captured
	churnIdle             // idle is known
	churnOpen             // still open at the end of the capture
)

func (a *churnConn) compare(b *churnConn) int {
	return cmp.Or(cmp.Compare(a.first, b.first), cmp.Compare(a.id, b.id))
}

// compact returns what a pool keeps of every connection.
func (a *churnShown) compact() churnConn {
	c := churnConn{id: a.id, port: a.port, reasons: a.reasons, first: a.first.UnixNano(), last: a.last.UnixNano()}
	switch closerSide(a.close) {
	case "client":
		c.closer = 1
	case "server":
		c.closer = 2
	}
	if a.hasSYN {
		c.flags |= churnSYN
		c.syn, c.synFrame = a.syn.TS.UnixNano(), a.syn.Frame
	}
	if a.finWho != 0 {
		c.flags |= churnFIN
		c.fin = a.fin.TS.UnixNano()
	}
	if !a.idleFrom.IsZero() {
		c.flags |= churnIdle
		c.idle = a.idleFrom.UnixNano()
	}
	if a.close == tcp.CloseOpen {
		c.flags |= churnOpen
	}
	return c
}

// end returns when c closed: its first FIN, else its last frame (a
// reset); ok is false when it is still open at the end of the capture.
func (c *churnConn) end() (int64, bool) {
	switch {
	case c.flags&churnOpen != 0:
		return 0, false
	case c.flags&churnFIN != 0:
		return c.fin, true
	}
	return c.last, true
}

// start returns when c opened: its SYN, else its first frame.
func (c *churnConn) start() int64 {
	if c.flags&churnSYN != 0 {
		return c.syn
	}
	return c.first
}

// nanoTime returns the time of a churnConn's nanoseconds.
func nanoTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// churnConns is a list of churnConns packed (packedList): connections
// of one pool come a few milliseconds apart, and their times are close
// to their first frame's, so each takes about 20 bytes where the struct
// takes 56, which for a million short connections in pools under
// churnKeep is most of what reconnect_churn holds.
type churnConns = packedList[churnConn, *churnConn]

func (c *churnConn) appendPacked(b []byte, p *churnConn) []byte {
	b = binary.AppendVarint(b, int64(c.id)-int64(p.id))
	b = binary.AppendVarint(b, int64(c.port)-int64(p.port))
	b = append(b, c.closer|c.flags<<2, byte(c.reasons))
	b = binary.AppendVarint(b, c.first-p.first)
	b = binary.AppendVarint(b, c.last-c.first)
	if c.flags&churnSYN != 0 {
		b = binary.AppendVarint(b, c.syn-c.first)
		b = binary.AppendVarint(b, int64(c.synFrame-p.synFrame))
	}
	if c.flags&churnFIN != 0 {
		b = binary.AppendVarint(b, c.fin-c.first)
	}
	if c.flags&churnIdle != 0 {
		b = binary.AppendVarint(b, c.idle-c.first)
	}
	return b
}

func (c *churnConn) readPacked(b *varints, p *churnConn) {
	c.id = event.ConnID(int64(p.id) + b.next())
	c.port = uint16(int64(p.port) + b.next())
	c.closer, c.flags, c.reasons = (*b)[0]&3, (*b)[0]>>2, connReasons((*b)[1])
	*b = (*b)[2:]
	c.first = p.first + b.next()
	c.last = c.first + b.next()
	if c.flags&churnSYN != 0 {
		c.syn = c.first + b.next()
		c.synFrame = p.synFrame + uint64(b.next())
	}
	if c.flags&churnFIN != 0 {
		c.fin = c.first + b.next()
	}
	if c.flags&churnIdle != 0 {
		c.idle = c.first + b.next()
	}
}

// churnPool is one pool's state.
type churnPool struct {
	key poolKey
	// conns holds the first churnKeep connections (by first frame);
	// every connection while ports is nil. It is sorted and cut to
	// churnKeep when it reaches twice that.
	conns churnConns
	// shown holds the first churnShows connections that may be shown as
	// evidence (churnShown.shown), in order of first frame.
	shown []churnShown
	t     churnTally
	// ports has a bit per client port used, once the pool outgrew
	// conns.
	ports *[1024]uint64
	// heavy keeps the heaviest clients of a pool of many (client "*",
	// see maxPools).
	heavy *heavyHitters
}

// churnTally are a pool's exact counts over every connection.
type churnTally struct {
	conns, known, unknown, reqs, oneReq, shortUnknown, seenOpenOrClose int
	hist                                                               [5]int // requestBucket's buckets
	closedBy                                                           map[tcp.Close]int
	closeReq                                                           [2]int
	portMin, portMax                                                   uint16
	// firstSYN and lastSYN are the SYNs of the first and last
	// connections (by first frame) that have one.
	firstSYN, lastSYN churnShown
	reasons           connReasons
}

func (t *churnTally) add(c *churnShown) {
	t.conns++
	switch {
	case c.known:
		t.known++
		t.reqs += c.reqs
		t.hist[requestBucketIndex(c.reqs)]++
		if c.reqs <= 1 && !c.long {
			t.oneReq++
		}
	default:
		t.unknown++
		if !c.long {
			t.shortUnknown++
		}
	}
	if t.closedBy == nil {
		t.closedBy = map[tcp.Close]int{}
	}
	t.closedBy[c.close]++
	if c.hasSYN || c.close != tcp.CloseOpen {
		t.seenOpenOrClose++
	}
	if c.closeReq > 0 {
		t.closeReq[c.closeReq-1]++
	}
	if t.conns == 1 || c.port < t.portMin {
		t.portMin = c.port
	}
	t.portMax = max(t.portMax, c.port)
	if c.hasSYN {
		if !t.firstSYN.hasSYN || c.compare(&t.firstSYN) < 0 {
			t.firstSYN = churnShown{id: c.id, first: c.first, syn: c.syn, hasSYN: true}
		}
		if !t.lastSYN.hasSYN || c.compare(&t.lastSYN) > 0 {
			t.lastSYN = churnShown{id: c.id, first: c.first, syn: c.syn, hasSYN: true}
		}
	}
	t.reasons |= c.reasons
}

func (t *churnTally) merge(o *churnTally) {
	if o.conns == 0 {
		return
	}
	if t.conns == 0 || o.portMin < t.portMin {
		t.portMin = o.portMin
	}
	t.portMax = max(t.portMax, o.portMax)
	t.conns += o.conns
	t.known += o.known
	t.unknown += o.unknown
	t.reqs += o.reqs
	t.oneReq += o.oneReq
	t.shortUnknown += o.shortUnknown
	t.seenOpenOrClose += o.seenOpenOrClose
	for i, n := range o.hist {
		t.hist[i] += n
	}
	if t.closedBy == nil {
		t.closedBy = map[tcp.Close]int{}
	}
	for k, n := range o.closedBy {
		t.closedBy[k] += n
	}
	t.closeReq[0] += o.closeReq[0]
	t.closeReq[1] += o.closeReq[1]
	if o.firstSYN.hasSYN && (!t.firstSYN.hasSYN || o.firstSYN.compare(&t.firstSYN) < 0) {
		t.firstSYN = o.firstSYN
	}
	if o.lastSYN.hasSYN && (!t.lastSYN.hasSYN || o.lastSYN.compare(&t.lastSYN) > 0) {
		t.lastSYN = o.lastSYN
	}
	t.reasons |= o.reasons
}

// churnConnOf returns what reconnect_churn keeps of c, but for its
// first request (req), which only a connection shown needs:
// churnRequestOf.
func churnConnOf(cfg ChurnConfig, c *Conn) churnShown {
	n, ok := requests(c)
	r := churnShown{id: c.ID(), port: c.TCP.Client.Port(), first: c.TCP.FirstTS, last: c.TCP.LastTS,
		close: c.TCP.Close, reqs: n, known: ok, long: longLived(c, cfg.LongLived), reasons: reasonsOf(c)}
	if c.App != nil && c.App.HTTP1 != nil {
		switch c.App.HTTP1.CloseRequestedBy {
		case "client":
			r.closeReq = 1
		case "server":
			r.closeReq = 2
		}
	}
	if syn := firstSYN(c); syn != nil {
		r.syn, r.hasSYN = *syn, true
	}
	if fin := firstFIN(c); fin != nil {
		r.fin, r.finWho = *fin, 1
		if c.FIN[event.C2S] != fin {
			r.finWho = 2
		}
	}
	if x := c.RST[event.C2S]; x != nil {
		r.rst, r.rstWho = *x, 1
	} else if x := c.RST[event.S2C]; x != nil {
		r.rst, r.rstWho = *x, 2
	}
	switch {
	case !c.sum.lastEnd.IsZero():
		r.idleFrom = c.sum.lastEnd
	case c.TCP.Close == tcp.CloseOpen:
		r.idleFrom = c.TCP.LastTS
	}
	return r
}

// churnRequestOf returns c's first request as evidence cites it, nil
// when it has none.
func churnRequestOf(c *Conn) *churnRequest {
	if f := c.sum.first; f.ok {
		return &f
	}
	return nil
}

func (d *churnFold) observe(*Conn) {}

// final adds c to its pool, unless it carried no payload: a connection
// attempt (syn_retransmit, handshake_latency), not a pooled connection.
func (d *churnFold) final(c *Conn) {
	if c.TCP == nil || (c.TCP.StreamBytes.C2S == 0 && c.TCP.StreamBytes.S2C == 0) {
		return
	}
	k := poolKey{client: c.Client(), server: c.Server(), name: c.Authority()}
	if c.App != nil && c.App.TLS != nil {
		k.ja4 = c.App.TLS.JA4
	}
	p := d.pools[k]
	if p == nil && len(d.pools) >= maxPools {
		k = k.folded()
		if p = d.pools[k]; p == nil {
			p = &churnPool{key: k, heavy: &heavyHitters{}}
			d.pools[k] = p
		}
		p.heavy.add(c.Client(), 1)
	}
	if p == nil {
		p = &churnPool{key: k}
		d.pools[k] = p
	}
	r := churnConnOf(d.cfg, c)
	p.t.add(&r)
	if r.shown() && (len(p.shown) < churnShows || r.compare(&p.shown[len(p.shown)-1]) < 0) {
		r.req = churnRequestOf(c)
		p.addShown(r) // else it would sort last and be cut
	}
	if p.ports == nil && p.conns.n >= churnKeep {
		p.portsFromConns()
	}
	if p.ports != nil {
		p.ports[r.port/64] |= 1 << (r.port % 64)
	}
	cc := r.compact()
	p.conns.add(&cc)
	if p.ports != nil && p.conns.n >= 2*churnKeep {
		p.trim()
	}
}

// churnShows is how many connections a pool may show as evidence.
const churnShows = 5

// addShown adds connections that may be shown, keeping the first
// churnShows.
func (p *churnPool) addShown(rs ...churnShown) {
	p.shown = append(p.shown, rs...)
	slices.SortFunc(p.shown, func(a, b churnShown) int { return a.compare(&b) })
	p.shown = p.shown[:min(len(p.shown), churnShows)]
}

// portsFromConns starts the port bitmap from the connections kept.
func (p *churnPool) portsFromConns() {
	p.ports = new([1024]uint64)
	for _, c := range p.conns.all() {
		p.ports[c.port/64] |= 1 << (c.port % 64)
	}
}

// trim sorts the connections kept and cuts them to churnKeep; it returns
// them.
func (p *churnPool) trim() []churnConn {
	cs := p.conns.all()
	slices.SortFunc(cs, func(a, b churnConn) int { return a.compare(&b) })
	if p.ports != nil && len(cs) > churnKeep {
		cs = cs[:churnKeep]
	}
	p.conns.set(cs)
	return cs
}

func (d *churnFold) merge(o detector) {
	mergePools(&d.pools, o.(*churnFold).pools, nil, poolKey.compare, func(k poolKey) *churnPool { return &churnPool{key: k} }, (*churnPool).merge)
}

// merge adds op's connections, op being over other connections: of
// pool k, p's own, or, folded, of k's client's pool that a merge folded
// into p ("*").
func (p *churnPool) merge(op *churnPool, k poolKey, folded bool) {
	mergeHeavy(&p.heavy, op.heavy, folded, k.client, op.t.conns)
	p.t.merge(&op.t)
	p.addShown(op.shown...)
	if p.ports != nil || op.ports != nil || p.conns.n+op.conns.n > churnKeep {
		if p.ports == nil {
			p.portsFromConns()
		}
		if op.ports == nil {
			op.portsFromConns()
		}
		for i := range p.ports {
			p.ports[i] |= op.ports[i]
		}
	}
	for _, c := range op.conns.all() {
		p.conns.add(&c)
	}
	if p.ports != nil && p.conns.n >= 2*churnKeep {
		p.trim()
	}
}

func (d *churnFold) findings(in *capture) []Finding {
	keys := sortedPoolKeys(d.pools)
	fs := make([]Finding, len(keys))
	ok := make([]bool, len(keys))
	// The pools are independent, and on a capture of many short
	// connections their stats are most of the run's serial end.
	parallelFor(len(keys), func(i int) {
		p := d.pools[keys[i]]
		fs[i], ok[i] = churnFinding(in, d.cfg, p, p.trim())
	})
	var out []Finding
	for i := range fs {
		if ok[i] {
			out = append(out, fs[i])
		}
	}
	return out
}

// sortedPoolKeys returns m's keys in order.
func sortedPoolKeys[V any](m map[poolKey]V) []poolKey {
	keys := make([]poolKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, poolKey.compare)
	return keys
}

// requestBucketIndex returns the index of requestBucket(n) in
// requestBuckets.
func requestBucketIndex(n int) int {
	switch {
	case n <= 2:
		return n
	case n <= 5:
		return 3
	default:
		return 4
	}
}

var requestBuckets = [...]string{"0", "1", "2", "3-5", "6+"}

// churnStats are a pool's numbers.
type churnStats struct {
	conns, known, unknown, reqs, oneReq, shortUnknown int
	seenOpenOrClose                                   int // connections whose SYN, FIN or RST was captured
	hist                                              map[string]int
	closedBy                                          map[string]int
	closeReq                                          [2]int // Connection: close asked by client, server
	gaps                                              []time.Duration
	reuses                                            []*churnConn
	ports                                             int
	portMin, portMax                                  uint16
	twPeak                                            [2]int // client, server
	firstSYN, lastSYN                                 time.Time
	// leaked are the connections left open and idle while the client
	// dialled a new one (leakedConns).
	leaked []leak
	kept   int // connections kept, those leaked is over
}

// leak is a connection left open and idle while the client dialled
// another: the idle one, and the new one's SYN.
type leak struct {
	idle, next *churnConn
}

// leakMinIdle is how long a connection must stay open and idle after the
// client dialled a new one to count as left open: a client that closes
// a connection right after its response (a small idle pool under load)
// may dial another in the microseconds between.
const leakMinIdle = 100 * time.Millisecond

// leakedConns returns the connections, of conns in order of first frame,
// that were idle for good (no exchange after) and open when the client
// dialled a later one, and stayed open at least leakMinIdle after.
func leakedConns(conns []churnConn) []leak {
	starts := make([]int64, len(conns))
	for i := range conns {
		starts[i] = conns[i].start()
	}
	// Order of first frame is order of start but for a SYN captured
	// after a connection's first frame: search a sorted copy.
	order := make([]int, len(conns))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(starts[a], starts[b]) })
	var out []leak
	for i := range conns {
		c := &conns[i]
		if c.flags&churnIdle == 0 {
			continue
		}
		// The first connection dialled after c went idle.
		j, _ := slices.BinarySearchFunc(order, c.idle, func(k int, t int64) int {
			if starts[k] <= t {
				return -1
			}
			return 1
		})
		for ; j < len(order) && order[j] == i; j++ {
		}
		if j == len(order) {
			continue
		}
		n := &conns[order[j]]
		if end, closed := c.end(); !closed || end-n.start() >= int64(leakMinIdle) {
			out = append(out, leak{idle: c, next: n})
		}
	}
	return out
}

// poolStats returns a pool's numbers: the tallies, and the rest from the
// connections kept, conns, in order of first frame.
func poolStats(cfg ChurnConfig, p *churnPool, conns []churnConn) churnStats {
	t := &p.t
	s := churnStats{conns: t.conns, known: t.known, unknown: t.unknown, reqs: t.reqs, oneReq: t.oneReq,
		shortUnknown: t.shortUnknown, seenOpenOrClose: t.seenOpenOrClose, hist: map[string]int{},
		closedBy: map[string]int{}, closeReq: t.closeReq, portMin: t.portMin, portMax: t.portMax,
		firstSYN: t.firstSYN.syn.TS, lastSYN: t.lastSYN.syn.TS}
	for i, n := range t.hist {
		if n > 0 {
			s.hist[requestBuckets[i]] = n
		}
	}
	for k, n := range t.closedBy {
		s.closedBy[string(k)] = n
	}
	if p.ports != nil {
		for _, w := range p.ports {
			s.ports += bits.OnesCount64(w)
		}
	} else {
		var ports [1 << 16 / 64]uint64
		for i := range conns {
			w, bit := &ports[conns[i].port/64], uint64(1)<<(conns[i].port%64)
			if *w&bit == 0 {
				*w |= bit
				s.ports++
			}
		}
	}
	lastClose := make(map[uint16]int64, len(conns))
	var closes [2][]int64
	window := int64(cfg.ReuseWindow)
	for i := range conns {
		c := &conns[i]
		start := c.first
		if c.flags&churnSYN != 0 {
			start = c.syn
		}
		if t, seen := lastClose[c.port]; seen && start-t < window && start >= t {
			s.reuses = append(s.reuses, c)
		}
		end := c.last
		if c.flags&churnFIN != 0 {
			end = c.fin
		}
		lastClose[c.port] = end
		if c.closer > 0 {
			closes[c.closer-1] = append(closes[c.closer-1], end)
		}
		if i+1 < len(conns) {
			next := &conns[i+1]
			if c.flags&churnFIN != 0 && next.flags&churnSYN != 0 && next.syn >= c.fin {
				s.gaps = append(s.gaps, time.Duration(next.syn-c.fin))
			}
		}
	}
	for side := range 2 {
		ts := closes[side]
		slices.Sort(ts)
		j := 0
		for i := range ts {
			for j < i && ts[i]-ts[j] >= window {
				j++
			}
			s.twPeak[side] = max(s.twPeak[side], i-j+1)
		}
	}
	s.kept = len(conns)
	s.leaked = leakedConns(conns)
	return s
}

// churnFinding returns the finding of pool p, whose connections kept are
// conns, in order of first frame, if it churns.
func churnFinding(in *capture, cfg ChurnConfig, p *churnPool, conns []churnConn) (Finding, bool) {
	if p.t.conns < max(cfg.MinConns, 2) {
		return Finding{}, false
	}
	s := poolStats(cfg, p, conns)
	sev := Warning
	var reasons []string
	switch {
	case s.known >= cfg.MinConns:
		mean := float64(s.reqs) / float64(s.known)
		share := float64(s.oneReq) / float64(s.known)
		if mean > cfg.MaxRequestsPerConn || share < cfg.MinOneRequestShare {
			return Finding{}, false
		}
	case s.unknown > 0 && float64(s.shortUnknown+s.oneReq)/float64(s.conns) >= cfg.MinOneRequestShare:
		sev = Info
		reasons = append(reasons, "TLS not decrypted: requests per connection unknown")
	default:
		return Finding{}, false
	}
	if s.seenOpenOrClose == 0 {
		sev = Info
		reasons = append(reasons, "no connection's opening or closing captured: how long they lived is unknown")
	}
	twSide, twPeak := "", 0
	switch {
	case s.closedBy[string(tcp.CloseFINClient)] >= s.closedBy[string(tcp.CloseFINServer)] && s.closedBy[string(tcp.CloseFINClient)] > 0:
		twSide, twPeak = "client", s.twPeak[0]
	case s.closedBy[string(tcp.CloseFINServer)] > 0:
		twSide, twPeak = "server", s.twPeak[1]
	}
	if sev == Warning && (len(s.reuses) > 0 || (cfg.CriticalTimeWait > 0 && max(s.twPeak[0], s.twPeak[1]) >= cfg.CriticalTimeWait)) {
		sev = Critical
	}

	k := p.key
	f := Finding{Kind: KindReconnectChurn, Severity: sev, Cause: churnCause(s)}
	var b strings.Builder
	fmt.Fprintf(&b, "Client %s opened %d connections to %s", clientString(k.client), s.conns, k.destination())
	if s.known > 0 {
		fmt.Fprintf(&b, " for %d requests: %d carried at most one request", s.reqs, s.oneReq)
	}
	if s.unknown > 0 {
		fmt.Fprintf(&b, " (requests unknown on %d)", s.unknown)
	}
	switch twSide {
	case "client":
		fmt.Fprintf(&b, "; the client closed %d first (TIME_WAIT on the client, ephemeral port pressure)", s.closedBy[string(tcp.CloseFINClient)])
	case "server":
		fmt.Fprintf(&b, "; the server closed %d first (TIME_WAIT on the server)", s.closedBy[string(tcp.CloseFINServer)])
	}
	if s.closeReq[0] > 0 {
		fmt.Fprintf(&b, "; the client sent Connection: close on %d", s.closeReq[0])
	} else if s.closeReq[1] > 0 {
		fmt.Fprintf(&b, "; the server sent Connection: close on %d", s.closeReq[1])
	}
	if f.Cause == CauseConnectionsLeaked {
		fmt.Fprintf(&b, "; %d were left open and idle while new ones were dialled", len(s.leaked))
	}
	if len(s.reuses) > 0 {
		fmt.Fprintf(&b, "; %d reused a 4-tuple within %s of its close", len(s.reuses), fmtDur(cfg.ReuseWindow))
	}
	f.Summary = b.String()

	m := map[string]any{
		"connections":               s.conns,
		"requests":                  s.reqs,
		"one_request_conns":         s.oneReq,
		"requests_hist":             s.hist,
		"closed_by":                 s.closedBy,
		"client_ports":              s.ports,
		"client_port_min":           int(s.portMin),
		"client_port_max":           int(s.portMax),
		"tuple_reuses":              len(s.reuses),
		"close_requested_by_client": s.closeReq[0],
		"close_requested_by_server": s.closeReq[1],
		"max_concurrent_conns":      peakOpenNanos(len(conns), func(i int) (int64, int64) { return conns[i].first, conns[i].last }),
		"time_wait_side":            twSide,
		"time_wait_peak":            twPeak,
		"unknown_request_conns":     s.unknown,
	}
	if len(s.leaked) > 0 {
		m["leaked_conns"] = len(s.leaked)
	}
	if s.known > 0 {
		m["requests_per_conn"] = roundTo(float64(s.reqs)/float64(s.known), 3)
		m["one_request_share"] = roundTo(float64(s.oneReq)/float64(s.known), 3)
	}
	if len(s.gaps) > 0 {
		lo, mid, hi := durationStats(s.gaps)
		m["fin_to_syn_min_ms"], m["fin_to_syn_median_ms"], m["fin_to_syn_max_ms"] = ms(lo), ms(mid), ms(hi)
	}
	if span := s.lastSYN.Sub(s.firstSYN); span > 0 {
		m["conns_per_s"] = roundTo(float64(s.conns-1)/span.Seconds(), 3)
	}
	if p.heavy != nil {
		var top []string
		for _, h := range p.heavy.top() {
			top = append(top, fmt.Sprintf("%s (%d to %d connections)", h.client, h.n-h.err, h.n))
		}
		m["clients_folded"] = fmt.Sprintf("client * stands for the clients past the first %d pools; the heaviest: %s", maxPools, strings.Join(top, ", "))
	}
	if len(conns) < s.conns {
		m["connections_listed"] = len(conns)
		m["estimated"] = fmt.Sprintf("fin_to_syn_*, tuple_reuses, time_wait_peak and max_concurrent_conns are over the first %d connections only", len(conns))
	}
	f.Metrics = m

	// Evidence: for leaked connections first the new connections dialled
	// while older ones sat idle; then the first few one-request
	// connections (SYN, request, first FIN), then the 4-tuple reuses.
	const perConnEvidence, maxConnsShown = 3, 5
	shown := 0
	if f.Cause == CauseConnectionsLeaked {
		for i, l := range s.leaked {
			if i >= 3 {
				break
			}
			if l.next.flags&churnSYN == 0 {
				continue
			}
			syn := event.Ref{Frame: l.next.synFrame, TS: nanoTime(l.next.syn)}
			what := fmt.Sprintf("SYN: new connection from port %d while the connection from port %d had been idle %s", l.next.port, l.idle.port, fmtDur(time.Duration(l.next.syn-l.idle.idle)))
			if end, closed := l.idle.end(); closed {
				what += fmt.Sprintf("; that one stays open and unused %s more", fmtDur(time.Duration(end-l.next.syn)))
			} else {
				what += "; that one stays open and unused to the end of the capture"
			}
			e := evidence(l.next.id, 0, syn, what)
			if i == 0 {
				e = e.decisive()
			}
			f.Evidence = append(f.Evidence, e)
		}
	}
	rs := make([]connReasons, 0, len(conns)+1)
	for i := range conns {
		rs = append(rs, conns[i].reasons)
		f.Connections = append(f.Connections, conns[i].id)
	}
	for i := range p.shown {
		c := &p.shown[i]
		if shown >= maxConnsShown || shown*perConnEvidence >= maxEvidence-5 {
			break
		}
		shown++
		if c.hasSYN {
			f.Evidence = append(f.Evidence, evidence(c.id, 0, c.syn, fmt.Sprintf("SYN: new connection from port %d", c.port)))
		}
		if x := c.req; x != nil {
			f.Evidence = append(f.Evidence, evidence(c.id, x.stream, x.ref, fmt.Sprintf("request %s %s: the only one on this connection", x.method, x.path)))
		}
		switch {
		case c.finWho != 0:
			who := "client"
			if c.finWho == 2 {
				who = "server"
			}
			f.Evidence = append(f.Evidence, evidence(c.id, 0, c.fin, fmt.Sprintf("FIN from the %s first: it holds TIME_WAIT", who)))
		case c.rstWho == 1:
			f.Evidence = append(f.Evidence, evidence(c.id, 0, c.rst, "RST from the client closes the connection"))
		case c.rstWho == 2:
			f.Evidence = append(f.Evidence, evidence(c.id, 0, c.rst, "RST from the server closes the connection"))
		}
	}
	for i, c := range s.reuses {
		if i >= 5 {
			break
		}
		if c.flags&churnSYN != 0 {
			syn := event.Ref{Frame: c.synFrame, TS: nanoTime(c.syn)}
			f.Evidence = append(f.Evidence, evidence(c.id, 0, syn, fmt.Sprintf("SYN reuses client port %d within %s of the previous connection's close (TIME_WAIT)", c.port, fmtDur(cfg.ReuseWindow))))
		}
	}
	rs = append(rs, p.t.reasons) // those of connections past the ones kept
	f.Confidence = confidenceOf(in, rs...).with(reasons...)
	f.Remedy = churnRemedy(s)
	return f, true
}

// churnCause tells why a pool churns, from what most of its connections
// show: a Connection: close from either side, the client's RST (it
// closes with the response unread), connections left open and idle
// while new ones are dialled (leakedConns: however they end later, by
// the server's idle timeout, the client's exit or not at all), the
// server closing first between requests, or else the client closing
// after each response though no one asked.
func churnCause(s churnStats) string {
	known := max(s.known, 1)
	switch {
	case s.closeReq[0] > 0 && s.closeReq[0]*2 >= known && s.closeReq[0] >= s.closeReq[1]:
		return CauseClientConnectionClose
	case s.closeReq[1] > 0 && s.closeReq[1]*2 >= known:
		return CauseServerConnectionClose
	case s.closedBy[string(tcp.CloseRSTClient)]*2 >= s.conns:
		return CauseBodyNotDrained
	case len(s.leaked) > 0 && len(s.leaked)*2 >= s.kept:
		return CauseConnectionsLeaked
	case s.closedBy[string(tcp.CloseFINServer)]+s.closedBy[string(tcp.CloseRSTServer)] > s.closedBy[string(tcp.CloseFINClient)]:
		return CauseServerIdleTimeout
	}
	return CauseClientClosesAfterResponse
}

// churnCauseRemedy is the first advice for each cause.
var churnCauseRemedy = map[string]string{
	CauseClientConnectionClose:     "The client asks to close (Connection: close): in Go that is http.Transport.DisableKeepAlives=true or Request.Close=true; curl -H 'Connection: close'; turn them off. ",
	CauseServerConnectionClose:     "The server asks to close: enable keep-alives on it (Go http.Server.SetKeepAlivesEnabled(true), no Connection: close in handlers; nginx keepalive_timeout > 0 and a higher keepalive_requests; haproxy option http-keep-alive; Envoy max_requests_per_connection unset or higher). ",
	CauseBodyNotDrained:            "The client resets its connections: it closes them with response bytes unread, so they cannot be reused; read each response body to the end and close it (Go: io.Copy(io.Discard, resp.Body); resp.Body.Close(); Python: resp.read() before close). ",
	CauseConnectionsLeaked:         "Connections are left open and unused while new ones are dialled: the client leaks them (responses never closed, a new client per request: Go http.Client or Transport, Python http.client.HTTPConnection or requests.Session); close response bodies and connections, and share one client. ",
	CauseServerIdleTimeout:         "The server closes each connection before the client's next request: its idle timeout is shorter than the gap between requests (nginx keepalive_timeout, Go http.Server.IdleTimeout, haproxy timeout http-keep-alive); raise it above the client's request interval, or lower the client's idle timeout below it (see keepalive_mismatch). ",
	CauseClientClosesAfterResponse: "No one asked to close, yet the client closes after each response: its idle pool is too small for its concurrency (Go MaxIdleConnsPerHost defaults to 2) or it makes a new client or process per request. ",
}

func churnRemedy(s churnStats) string {
	var b strings.Builder
	b.WriteString(churnCauseRemedy[churnCause(s)])
	b.WriteString("Reuse connections: one shared http.Client/http.Transport per destination with keep-alives on (Transport.DisableKeepAlives=false, no req.Close), MaxIdleConnsPerHost above the request concurrency (the default is 2), IdleConnTimeout long enough for the request rate; always read resp.Body to EOF and Close it (an undrained body prevents reuse). ")
	b.WriteString("Behind a proxy: nginx upstream keepalive N with proxy_http_version 1.1 and proxy_set_header Connection \"\"; Envoy max_requests_per_connection. ")
	b.WriteString("If churn cannot be avoided, let the client not hold TIME_WAIT (server closes first) and widen net.ipv4.ip_local_port_range.")
	return b.String()
}
