package analyze

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// maxGRPCCalls bounds the rows of the gRPC call table; the per-method
// table counts every call.
const maxGRPCCalls = 500

// Tables are the summaries users ask for beside the findings.
type Tables struct {
	// Pools has one row per connection pool (client IP, server, name),
	// in client, server, name order.
	Pools []PoolRow `json:"pools"`
	// Resumption has one TLS resumption funnel per (client IP, SNI,
	// server), in that order.
	Resumption []ResumptionRow `json:"resumption"`
	// GRPCCalls lists gRPC calls in connection and stream order, at most
	// maxGRPCCalls; GRPCCallsOmitted counts the rest.
	GRPCCalls        []GRPCCallRow `json:"grpc_calls"`
	GRPCCallsOmitted int           `json:"grpc_calls_omitted,omitempty"`
	// GRPCMethods aggregates every gRPC call by method, in method order.
	GRPCMethods []GRPCMethodRow `json:"grpc_methods"`
	// Routes has the request latency of each pool's HTTP requests by
	// method and path class, in pool, method and path order.
	Routes []RouteRow `json:"http_routes"`
}

// PoolRow summarises the connections from one client to one destination.
type PoolRow struct {
	// Client is the client IP address, or "*" for the clients past the
	// first 10,000 pools, folded into one row per server and name (a
	// flood from spoofed addresses); Heaviest names the busiest of them.
	Client string `json:"client"`
	// Server is the server's "ip:port".
	Server string `json:"server"`
	// Name is the TLS SNI, else the first request's authority (Host),
	// empty when neither was seen.
	Name string `json:"name,omitempty"`
	// Proto lists the protocols recognised on the connections ("http1",
	// "tls/http2"), joined with ",".
	Proto string `json:"proto,omitempty"`
	// Connections counts the pool's TCP connections.
	Connections int `json:"connections"`
	// Requests counts HTTP/1.x requests and HTTP/2 client streams on the
	// connections whose requests are known; UnknownConns counts the
	// connections whose requests are not (TLS without key log).
	Requests     int `json:"requests"`
	UnknownConns int `json:"unknown_conns,omitempty"`
	// RequestsPerConn is Requests over the connections whose requests are
	// known (0 when none).
	RequestsPerConn float64 `json:"requests_per_conn"`
	// OneRequestConns counts connections that carried at most one
	// request.
	OneRequestConns int `json:"one_request_conns"`
	// ClosedByClient and ClosedByServer count connections whose first
	// FIN came from that side; Reset those ended by a RST first; Open
	// those still open when the capture ended.
	ClosedByClient int `json:"closed_by_client"`
	ClosedByServer int `json:"closed_by_server"`
	Reset          int `json:"reset"`
	Open           int `json:"open"`
	// MaxConcurrent is the most connections of the pool open at once.
	MaxConcurrent int `json:"max_concurrent"`
	// HandshakeP50MS and HandshakeP99MS are the TCP handshakes' round
	// trips (SYN to the handshake's last ACK), median and 99th
	// percentile, estimated within 1% by a quantile sketch; absent when
	// no handshake was seen whole.
	HandshakeP50MS float64 `json:"handshake_p50_ms,omitempty"`
	HandshakeP99MS float64 `json:"handshake_p99_ms,omitempty"`
	// TLSHandshakeP50MS and TLSHandshakeP99MS are the TLS handshakes'
	// durations, median and 99th percentile, estimated within 1% by a
	// quantile sketch: from the ClientHello to the client's Finished
	// (TLS 1.3 undecrypted: the client's first protected record after
	// the ServerHello, which carries it), as handshake_latency measures
	// them; absent when no handshake was seen whole.
	TLSHandshakeP50MS float64 `json:"tls_handshake_p50_ms,omitempty"`
	TLSHandshakeP99MS float64 `json:"tls_handshake_p99_ms,omitempty"`
	// Heaviest, on a "*" row, lists the folded clients with the most
	// connections, busiest first, at most 16, counted by a heavy-hitter
	// sketch (Space-Saving): every client with more than a sixteenth of
	// the row's connections is listed.
	Heaviest []HeavyClient `json:"heaviest,omitempty"`
}

// HeavyClient is a client folded into a "*" row and its connections,
// estimated: at least Min, at most Max (a run split into shards by
// address pair, as --shards and Beam split it, keeps this bound; states
// merged over other splits may count a client's connections in one
// state's sketch and not the other's).
type HeavyClient struct {
	// Client is the client IP address.
	Client string `json:"client"`
	// Min and Max bound the client's connections in the row: at least
	// Min, at most Max.
	Min int `json:"min"`
	Max int `json:"max"`
}

// ResumptionRow is one TLS resumption funnel.
type ResumptionRow struct {
	// Client is the client IP, SNI the server name asked for, Server the
	// server's "ip:port".
	Client string `json:"client"`
	SNI    string `json:"sni,omitempty"`
	Server string `json:"server"`
	// Handshakes counts TLS handshakes; Offered those offering resumption
	// (a ticket, a PSK, or a session id counted as an offer); Accepted
	// those resumed; Failed offers answered with a full handshake;
	// FullHandshakes every full handshake.
	Handshakes     int `json:"handshakes"`
	Offered        int `json:"offered"`
	Accepted       int `json:"accepted"`
	Failed         int `json:"failed"`
	FullHandshakes int `json:"full_handshakes"`
	// AmbiguousSessionIDs counts TLS 1.2 session ids not counted as
	// offers (likely random, see resumption_failure).
	AmbiguousSessionIDs int `json:"ambiguous_session_ids,omitempty"`
	// Mechanisms counts resumed handshakes by mechanism ("ticket",
	// "session_id", "psk_dhe_ke", "psk_ke").
	Mechanisms map[string]int `json:"mechanisms,omitempty"`
}

// GRPCCallRow is one gRPC call.
type GRPCCallRow struct {
	// Conn and Stream locate the call.
	Conn   event.ConnID `json:"conn"`
	Stream uint32       `json:"stream"`
	// Method is "/package.Service/Name", empty when the request headers
	// were not captured.
	Method string `json:"method,omitempty"`
	// Status is the status the client ends up with ("OK",
	// "DEADLINE_EXCEEDED"), empty while unknown.
	Status string `json:"status,omitempty"`
	// TimeoutMS is the grpc-timeout in milliseconds, nil when none;
	// DurationMS the call's duration; OverTimeout says the call outlived
	// its timeout.
	TimeoutMS   *float64 `json:"timeout_ms"`
	DurationMS  float64  `json:"duration_ms"`
	OverTimeout bool     `json:"over_timeout,omitempty"`
	// RequestBytes and ResponseBytes sum the messages' lengths each way;
	// RequestMessages and ResponseMessages count them.
	RequestBytes     int64 `json:"request_bytes"`
	ResponseBytes    int64 `json:"response_bytes"`
	RequestMessages  int   `json:"request_messages"`
	ResponseMessages int   `json:"response_messages"`
	// Ended is false for a call still open when its connection ended.
	Ended bool `json:"ended"`
}

// GRPCMethodRow aggregates the calls of one method.
type GRPCMethodRow struct {
	// Method is "/package.Service/Name" ("" for calls whose headers were
	// not captured).
	Method string `json:"method"`
	// Calls counts the calls; Statuses counts them by client status
	// ("unknown" when none was seen).
	Calls    int            `json:"calls"`
	Statuses map[string]int `json:"statuses"`
	// P50MS and P99MS are duration percentiles in milliseconds (nearest
	// rank), MaxMS the longest.
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	// OverTimeout counts calls that outlived their grpc-timeout.
	OverTimeout int `json:"over_timeout"`
}

// tableBuilder builds the tables: the gRPC tables from each connection's
// calls as it finishes, the others from the connections' summaries at
// the end.
type tableBuilder struct {
	// calls are candidates for the first maxGRPCCalls rows of the gRPC
	// call table: at most that many per connection, trimmed to the first
	// maxGRPCCalls in connection order when they grow past twice that.
	calls      []grpcCallCand
	totalCalls int
	methods    map[string]*methodAgg
	// pools holds the pool table's rows.
	pools map[poolKey]*poolAgg
	last  lastEntry[poolKey, poolAgg] // pools'
	// res holds the TLS funnels of the resumption table: the
	// resumption_failure detector's (ownRes false: it folds and merges
	// them) or the table's own.
	res    *resumptionFold
	ownRes bool
	// routes holds each pool's route rows.
	routes map[poolKey]*routeSet
}

// grpcCallCand is a row of the gRPC call table, the i-th call of its
// connection in stream order.
type grpcCallCand struct {
	i   int
	row GRPCCallRow
}

// methodAgg aggregates the calls of one method: the durations are kept,
// as varints (3 or 4 bytes for the usual milliseconds), for exact
// percentiles.
type methodAgg struct {
	row  GRPCMethodRow
	durs []byte
}

// durations returns the durations a kept, in call order.
func (a *methodAgg) durations() []time.Duration {
	out := make([]time.Duration, 0, a.row.Calls)
	for b := a.durs; len(b) > 0; {
		v, n := binary.Varint(b)
		if n <= 0 {
			break // not reached: durs holds only what AppendVarint wrote
		}
		out = append(out, time.Duration(v))
		b = b[n:]
	}
	return out
}

func newTableBuilder() *tableBuilder {
	return &tableBuilder{methods: map[string]*methodAgg{}, pools: map[poolKey]*poolAgg{}, res: newResumptionFold(ResumptionConfig{}), ownRes: true,
		routes: map[poolKey]*routeSet{}}
}

// observe adds c's gRPC calls and HTTP requests.
func (t *tableBuilder) observe(c *Conn) {
	if c.TCP == nil {
		return
	}
	t.routesObserve(c)
	if c.App == nil || c.Records == nil {
		return
	}
	// Calls in stream order; the dissector lists them so already, bar
	// rare exceptions, so sort an index instead of copying the records.
	calls := c.Records.Calls
	order := make([]int32, len(calls))
	for i := range order {
		order[i] = int32(i)
	}
	if !slices.IsSortedFunc(calls, func(a, b grpc.Call) int { return cmp.Compare(a.Stream, b.Stream) }) {
		slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(calls[a].Stream, calls[b].Stream) })
	}
	for i, k := range order {
		call := &calls[k]
		status := call.ClientStatus
		if status == "" {
			status = call.StatusName
		}
		t.totalCalls++
		if i < maxGRPCCalls {
			row := GRPCCallRow{Conn: c.ID(), Stream: call.Stream, Method: call.Method, Status: status,
				DurationMS: ms(call.Duration), OverTimeout: call.OverTimeout,
				RequestBytes: call.RequestBytes, ResponseBytes: call.ResponseBytes,
				RequestMessages: call.RequestMessages, ResponseMessages: call.ResponseMessages, Ended: call.Ended}
			if call.HasTimeout {
				v := ms(call.Timeout)
				row.TimeoutMS = &v
			}
			t.calls = append(t.calls, grpcCallCand{i, row})
		}
		a := t.methods[call.Method]
		if a == nil {
			a = &methodAgg{row: GRPCMethodRow{Method: call.Method, Statuses: map[string]int{}}}
			t.methods[call.Method] = a
		}
		a.row.Calls++
		if status == "" {
			status = "unknown"
		}
		a.row.Statuses[status]++
		if call.OverTimeout {
			a.row.OverTimeout++
		}
		a.durs = binary.AppendVarint(a.durs, int64(call.Duration))
	}
	if len(t.calls) > 2*maxGRPCCalls {
		t.trimCalls()
	}
}

// trimCalls orders the candidate rows (connection, then stream order) and
// keeps the first maxGRPCCalls.
func (t *tableBuilder) trimCalls() {
	slices.SortFunc(t.calls, func(a, b grpcCallCand) int { return cmp.Or(cmp.Compare(a.row.Conn, b.row.Conn), cmp.Compare(a.i, b.i)) })
	t.calls = slices.Clip(t.calls[:min(len(t.calls), maxGRPCCalls)])
}

// tables returns the tables once every connection of in was observed.
// Every list is non-nil, so JSON shows [] rather than null.
// final reads c's final summary.
func (t *tableBuilder) final(c *Conn) {
	t.poolFinal(c)
	if t.ownRes {
		t.res.final(c)
	}
}

// merge adds o's state, o being over other connections.
func (t *tableBuilder) merge(o *tableBuilder) {
	mergePools(&t.pools, o.pools, &t.last, poolKey.compare, newPoolAgg, (*poolAgg).merge)
	if t.ownRes {
		t.res.merge(o.res)
	}
	t.routesMerge(o)
	t.calls = append(t.calls, o.calls...)
	t.totalCalls += o.totalCalls
	for name, oa := range o.methods {
		a := t.methods[name]
		if a == nil {
			t.methods[name] = oa
			continue
		}
		a.row.Calls += oa.row.Calls
		a.row.OverTimeout += oa.row.OverTimeout
		for s, n := range oa.row.Statuses {
			a.row.Statuses[s] += n
		}
		a.durs = append(a.durs, oa.durs...)
	}
	if len(t.calls) > 2*maxGRPCCalls {
		t.trimCalls()
	}
}

func (t *tableBuilder) tables(in *capture) Tables {
	tb := Tables{
		Pools:       t.poolRows(),
		Resumption:  resumptionRows(t.res),
		GRPCCalls:   []GRPCCallRow{},
		GRPCMethods: []GRPCMethodRow{},
		Routes:      t.routeRows(),
	}
	t.trimCalls()
	for _, c := range t.calls {
		tb.GRPCCalls = append(tb.GRPCCalls, c.row)
	}
	tb.GRPCCallsOmitted = t.totalCalls - len(tb.GRPCCalls)
	for _, name := range sortedKeys(t.methods) {
		a := t.methods[name]
		durs := a.durations()
		slices.Sort(durs)
		a.row.P50MS, a.row.P99MS = ms(nearestRank(durs, 0.50)), ms(nearestRank(durs, 0.99))
		a.row.MaxMS = ms(durs[len(durs)-1])
		tb.GRPCMethods = append(tb.GRPCMethods, a.row)
	}
	return tb
}

// poolAgg is what the pool table keeps of one pool: its row's counts,
// exact, and the first poolSpans connections' lifetimes (by first frame)
// for the most concurrent (exact up to that many).
type poolAgg struct {
	row    PoolRow
	known  int
	protos []string // distinct
	spans  spanList
	over   bool           // spans were cut
	rtt    quantileSketch // handshake round trips, ms
	tlsHS  quantileSketch // TLS handshakes, ms
	// heavy keeps the busiest clients of a "*" row.
	heavy *heavyHitters
}

// poolSpan is one connection's lifetime, its first and last frame
// times in nanoseconds since the Unix epoch.
type poolSpan struct {
	id          event.ConnID
	first, last int64
}

// poolSpans is how many lifetimes a pool keeps.
const poolSpans = 4096

func (s poolSpan) compare(o poolSpan) int {
	return cmp.Or(cmp.Compare(s.first, o.first), cmp.Compare(s.id, o.id))
}

// addSpans adds lifetimes, cutting them to the first poolSpans when
// they reach twice that; once cut, one after the last kept is dropped
// at once (it cannot be among the first).
func (a *poolAgg) addSpans(ss ...poolSpan) {
	l := &a.spans
	for _, s := range ss {
		if l.cut && s.compare(l.max) > 0 {
			continue
		}
		l.add(&s)
		if l.n >= 2*poolSpans {
			cs := l.all()
			slices.SortFunc(cs, poolSpan.compare)
			l.set(cs[:poolSpans])
			l.cut, l.max = true, cs[poolSpans-1]
			a.over = true
		}
	}
}

// spanList holds a pool's lifetimes packed (packedList: ids and first
// frames mostly rise): about 8 bytes a connection rather than 24, which
// were most of what a million short connections kept live.
type spanList struct {
	packedList[poolSpan, *poolSpan]
	// cut is set once the list was cut to the first poolSpans, max then
	// being the last of them.
	cut bool
	max poolSpan
}

func (s *poolSpan) appendPacked(b []byte, p *poolSpan) []byte {
	b = binary.AppendVarint(b, int64(s.id)-int64(p.id))
	b = binary.AppendVarint(b, s.first-p.first)
	return binary.AppendVarint(b, s.last-s.first)
}

func (s *poolSpan) readPacked(b *varints, p *poolSpan) {
	s.id = event.ConnID(int64(p.id) + b.next())
	s.first = p.first + b.next()
	s.last = s.first + b.next()
}

// poolFinal adds c to its pool row.
func (t *tableBuilder) poolFinal(c *Conn) {
	if c.TCP == nil {
		return
	}
	// Past maxPools, new clients share one row per server: "*".
	a := poolEntry(&t.pools, &t.last, poolKey{client: c.Client(), server: c.Server(), name: c.Authority()}, c, newPoolAgg)
	if a.heavy != nil {
		a.heavy.add(c.Client(), 1)
	}
	r := &a.row
	r.Connections++
	if p := connProto(c); p != "" && !slices.Contains(a.protos, p) {
		a.protos = append(a.protos, p)
	}
	n, ok := requests(c)
	if ok {
		a.known++
		r.Requests += n
		if n <= 1 {
			r.OneRequestConns++
		}
	} else {
		r.UnknownConns++
	}
	switch c.TCP.Close {
	case tcp.CloseFINClient:
		r.ClosedByClient++
	case tcp.CloseFINServer:
		r.ClosedByServer++
	case tcp.CloseRSTClient, tcp.CloseRSTServer:
		r.Reset++
	default:
		r.Open++
	}
	a.addSpans(poolSpan{c.ID(), c.TCP.FirstTS.UnixNano(), c.TCP.LastTS.UnixNano()})
	if rtt := c.TCP.HandshakeRTTMS; rtt != nil {
		a.rtt.add(*rtt)
	}
	if c.App != nil && c.App.TLS != nil && c.App.TLS.HandshakeMS != nil {
		a.tlsHS.add(*c.App.TLS.HandshakeMS)
	}
}

func newPoolAgg(k poolKey) *poolAgg {
	a := &poolAgg{row: PoolRow{Client: clientString(k.client), Server: k.server.String(), Name: k.name}}
	if k == k.folded() {
		a.heavy = &heavyHitters{}
	}
	return a
}

// merge adds o's counts, o being pool k's over other connections, or,
// folded, the pool of k's client that a merge folded into a, "*".
func (a *poolAgg) merge(o *poolAgg, k poolKey, folded bool) {
	r, or := &a.row, &o.row
	r.Connections += or.Connections
	r.Requests += or.Requests
	r.UnknownConns += or.UnknownConns
	r.OneRequestConns += or.OneRequestConns
	r.ClosedByClient += or.ClosedByClient
	r.ClosedByServer += or.ClosedByServer
	r.Reset += or.Reset
	r.Open += or.Open
	a.known += o.known
	for _, p := range o.protos {
		if !slices.Contains(a.protos, p) {
			a.protos = append(a.protos, p)
		}
	}
	a.over = a.over || o.over
	a.addSpans(o.spans.all()...)
	a.rtt.merge(&o.rtt)
	a.tlsHS.merge(&o.tlsHS)
	mergeHeavy(&a.heavy, o.heavy, folded, k.client, or.Connections)
}

// poolRows returns the pool table's rows in key order.
func (t *tableBuilder) poolRows() []PoolRow {
	rows := make([]PoolRow, 0, len(t.pools))
	for _, k := range sortedPoolKeys(t.pools) {
		a := t.pools[k]
		r := a.row
		r.Proto = strings.Join(slices.Sorted(slices.Values(a.protos)), ",")
		if a.known > 0 {
			r.RequestsPerConn = roundTo(float64(r.Requests)/float64(a.known), 3)
		}
		spans := a.spans.all()
		slices.SortFunc(spans, poolSpan.compare)
		if a.over && len(spans) > poolSpans {
			spans = spans[:poolSpans]
		}
		r.MaxConcurrent = peakOpenNanos(len(spans), func(i int) (int64, int64) { return spans[i].first, spans[i].last })
		if a.rtt.n > 0 {
			r.HandshakeP50MS, r.HandshakeP99MS = roundTo(a.rtt.quantile(0.5), 3), roundTo(a.rtt.quantile(0.99), 3)
		}
		if a.tlsHS.n > 0 {
			r.TLSHandshakeP50MS, r.TLSHandshakeP99MS = roundTo(a.tlsHS.quantile(0.5), 3), roundTo(a.tlsHS.quantile(0.99), 3)
		}
		if a.heavy != nil {
			for _, h := range a.heavy.top() {
				r.Heaviest = append(r.Heaviest, HeavyClient{Client: h.client.String(), Min: h.n - h.err, Max: h.n})
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// connProto names a connection's protocols ("http1", "tls/http2").
func connProto(c *Conn) string {
	p := c.TCP.Proto
	if c.App != nil && c.App.Decrypted != event.ProtoUnknown {
		p += "/" + c.App.Decrypted.String()
	}
	return p
}

func resumptionRows(d *resumptionFold) []ResumptionRow {
	rows := []ResumptionRow{}
	for _, g := range d.sortedGroups() {
		fn := g.funnel()
		r := ResumptionRow{Client: clientString(g.client), SNI: g.sni, Server: g.server.String(), Handshakes: fn.handshakes,
			Offered: fn.offered, Accepted: fn.accepted, Failed: fn.failed, FullHandshakes: fn.full,
			AmbiguousSessionIDs: fn.ambiguous}
		if len(fn.mechanisms) > 0 {
			r.Mechanisms = fn.mechanisms
		}
		rows = append(rows, r)
	}
	return rows
}

// nearestRank returns the q-quantile of sorted ds by the nearest-rank
// method (0 when empty).
func nearestRank(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*q+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
