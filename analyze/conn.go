package analyze

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/internal/freelist"
)

// Bounds on the per-connection lists a Collector keeps; the counts stay
// exact (the Dropped fields say how many were left out).
const (
	maxSYNs      = 32
	maxExchanges = 4096
	maxResets    = 4096
	maxPings     = 256
	maxWindowRef = 64
)

// Conn is what the detectors know about one finished connection: its TCP
// summary, what its dissectors found, and the few per-frame facts the
// summaries do not keep. Its lifetime is in its type: the summary (the
// TCP and application summaries, the SYN, FIN, RST and window refs, the
// facts connSummary derives once the records were read) stays while the
// connection's per-request records (Records: its exchanges, resets and
// pings, and the dissectors' HTTP/2 streams, gRPC calls and stalls, which
// the Collector moves there out of the App) are released once every
// detector, the tables and the Collector's OnConn read them: Records is
// then nil, so nothing can read released data by accident.
type Conn struct {
	// TCP is the connection's TCP summary; App what its application
	// dissectors found (nil when no protocol was recognised), but for
	// their records: App.Exchanges, App.Streams and App.Calls are nil,
	// and so is App.HTTP2.Stalls (they are in Records).
	TCP *tcp.Summary
	App *dissect.App
	// SYNs lists the client's SYNs (the first and its retransmissions),
	// SYNACKs the server's SYN-ACKs.
	SYNs, SYNACKs []event.Ref
	// FIN and RST are the first FIN and RST each side sent (by
	// event.Dir), nil when none.
	FIN, RST [2]*event.Ref
	// ZeroWindows and WindowFulls list TCP segments so flagged, per
	// direction of the segment (a zero window advertised by the
	// receiver; window full seen on the sender's data), at most
	// maxWindowRef each; the TCP summary has the exact counts.
	ZeroWindows, WindowFulls [2][]event.Ref
	// DataRetransmissions counts the retransmitted segments that carried
	// data (a SYN or FIN sent again is none, nor a capture duplicate:
	// tcp.CaptureDuplicate), SpuriousData those of them
	// the receiver had already acknowledged.
	DataRetransmissions, SpuriousData int
	// RecoveryRetransmissions counts the data retransmissions, not
	// spurious, that the receiver's feedback drove: flagged fast, or
	// soon after a bare ACK from the peer that did not advance
	// (recoveryWindow): fast retransmit and SACK recovery, which
	// Wireshark's fast_retransmission flag counts only in part. The rest
	// waited for the sender's timer, or followed such a one within
	// recoveryWindow (the ACKs answering a timeout's retransmission clock
	// out the rest of what was lost: the timeout's cost).
	RecoveryRetransmissions int
	// FastData counts the data retransmissions Wireshark flags fast,
	// neither spurious nor capture duplicates.
	FastData int
	// dupACKAt is when each side (by event.Dir) last sent a bare ACK
	// that did not advance: a duplicate ACK, or a window update (a
	// duplicate ACK with a new window, as a receiver's SACK-bearing ACKs
	// often are), but not one that reopens a zero window (flow control).
	// timerAt is when each side last sent a retransmission its timer
	// drove, or one of the same loss episode; zeroAt when it last
	// advertised a zero window not reopened since.
	dupACKAt, timerAt, zeroAt [2]time.Time
	// Records are the connection's per-request records, nil once
	// released.
	Records *Records
	// SinkTag is the ConnSink's own: Add may set it, and the Conn Done
	// gets carries the value (a copy of the Conn Add got may be all
	// Done gets). It is zero until set, and again when a Conn is reused.
	SinkTag uint32
	// sum holds the facts the detectors and tables read from the
	// records once they are released (nil until the connection was
	// observed: summarize).
	sum *connSummary
	// observed is set once the detectors observed c.
	observed bool
	// newClient, set while the detectors finalise c, says that its
	// client owned no key of its own in any per-pool map that folds new
	// clients past a bound (clientSet): in such a map that is full, c's
	// own key is not there, and it folds. A detector that gives c's
	// client a key of its own in such a map sets ownsKey.
	newClient, ownsKey bool
	// tcp holds the copy of the tracker's summary TCP points to, recs
	// the records Records points to until they are released, sumv the
	// summary sum points to (one allocation with the Conn's; tcp is
	// rewritten when the connection finishes).
	tcp  tcp.Summary
	recs Records
	// synv holds a lone client SYN (fromSYN), which SYNs then points to:
	// a flood's connections have nothing else (one allocation less each).
	// finv and rstv hold the refs FIN and RST point to.
	synv       [1]event.Ref
	finv, rstv [2]event.Ref
	sumv       connSummary
}

// Records are a connection's per-request records, bounded by the
// Collector (the Dropped fields count those left out).
type Records struct {
	// Exchanges lists the HTTP/1.x requests and HTTP/2 client streams, in
	// request order.
	Exchanges        []Exchange
	ExchangesDropped int
	// Resets lists every HTTP/2 RST_STREAM in frame order.
	Resets        []Reset
	ResetsDropped int
	// Pings lists HTTP/2 PING frames in frame order.
	Pings        []Ping
	PingsDropped int
	// HTTP1 are the HTTP/1.x exchanges the dissectors recorded, which
	// Exchanges point into; Streams the HTTP/2 streams, Calls the gRPC
	// calls (App.HTTP2.StreamsDropped and App.GRPCAnomalies count those
	// past their bounds).
	HTTP1   []http1.Exchange
	Streams []http2.Stream
	Calls   []grpc.Call
	// Stalls lists the intervals a sender's HTTP/2 connection window
	// sat at or below zero (App.HTTP2.StallsDropped counts those past
	// the bound); each stream's are in its Stalls.
	Stalls []http2.Stall
}

// takeRecords moves app's records into r: the HTTP/1 exchanges, the
// HTTP/2 streams, the gRPC calls and the connection-window stalls,
// which app then lacks.
func (r *Records) takeRecords(app *dissect.App) {
	if app == nil {
		return
	}
	r.HTTP1, r.Streams, r.Calls = app.Exchanges, app.Streams, app.Calls
	app.Exchanges, app.Streams, app.Calls = nil, nil, nil
	if h := app.HTTP2; h != nil {
		r.Stalls, h.Stalls = h.Stalls, nil
	}
}

// connSummary is what the detectors and tables read of a connection's
// records once they are released: the few facts they read when it
// finished.
type connSummary struct {
	// requests and requestsKnown are requests(c).
	requests      int
	requestsKnown bool
	// authority is the first request's authority (Host), "" if none.
	authority string
	// streaming reports a streaming gRPC call (more than one message
	// either way).
	streaming bool
	// first is the connection's first request as evidence cites it,
	// first.ok false when its first exchange has no request frame.
	first churnRequest
	// lastEnd is the time of the latest frame of any exchange (zero when
	// none): from then on the connection carried no request.
	lastEnd time.Time
}

// summarize derives c's summary facts from its records, once: the
// analysis calls it when it observes c, before any detector reads it.
func (c *Conn) summarize() {
	if c.sum != nil {
		return
	}
	r := c.Records
	if r == nil {
		r = &noRecords
	}
	c.sumv = connSummary{streaming: hasStreamingCall(r.Calls)}
	sum := &c.sumv
	for _, x := range r.Exchanges {
		if x.Authority != "" {
			sum.authority = x.Authority
			break
		}
	}
	sum.requests, sum.requestsKnown = countRequests(c, r)
	for i := range r.Exchanges {
		if e := r.Exchanges[i].End(); e != nil && e.TS.After(sum.lastEnd) {
			sum.lastEnd = e.TS
		}
	}
	if len(r.Exchanges) > 0 && r.Exchanges[0].Request != nil {
		// What reconnect_churn cites of it, kept in the summary: no
		// allocation per connection.
		x := &r.Exchanges[0]
		sum.first = churnRequest{method: x.Method, path: x.Path, stream: x.Stream, ref: *x.Request, ok: true}
	}
	c.sum = sum
}

// noRecords stands for the records of a connection that had none; it
// is only read.
var noRecords Records

// release drops c's per-request records once every detector has
// observed c, keeping its summary.
func (c *Conn) release() {
	c.summarize()
	c.Records, c.recs = nil, Records{}
}

// ID returns the connection's id (Wireshark's tcp.stream).
func (c *Conn) ID() event.ConnID { return c.TCP.ID }

// Exchange is one request and its response: an HTTP/1.x exchange, or an
// HTTP/2 stream the client opened.
type Exchange struct {
	// Proto is event.ProtoHTTP1 or event.ProtoHTTP2.
	Proto event.Proto
	// Stream is the HTTP/2 stream id (0 for HTTP/1.x); Seq the HTTP/1.x
	// request's number on its connection.
	Stream uint32
	Seq    int
	// Method, Authority (Host) and Path describe the request; Status is
	// the final response status (0 when none was seen).
	Method, Authority, Path string
	Status                  int
	// Request is the frame of the request's head; RequestEnd completes
	// the request; Response is the response head (HTTP/1.x: the frame
	// completing the response, HTTP/2: its first HEADERS, interim
	// responses included); ResponseEnd completes the response. Any may be nil when not seen.
	Request, RequestEnd, Response, ResponseEnd *event.Ref
	// KeepAlive reports whether the response left an HTTP/1.x
	// connection open.
	KeepAlive bool
	// Reset is the RST_STREAM that ended an HTTP/2 stream, if any.
	Reset *http2.Reset
	// HeadOpen is set on an HTTP/2 request whose header block never
	// ended on the wire: a HEADERS without END_HEADERS that no
	// CONTINUATION completed before the connection ended (or its bytes
	// were lost), so the client never finished sending the request's
	// head. (An HTTP/1.x request is an exchange only once its head is
	// complete.)
	HeadOpen bool
	// GRPCStatus is the gRPC status code, nil when none.
	GRPCStatus *int
}

// Start returns the earliest known frame of the exchange (nil if none).
func (x *Exchange) Start() *event.Ref {
	for _, r := range []*event.Ref{x.Request, x.RequestEnd, x.Response, x.ResponseEnd} {
		if r != nil {
			return r
		}
	}
	return nil
}

// End returns the latest known frame of the exchange (nil if none).
func (x *Exchange) End() *event.Ref {
	for _, r := range []*event.Ref{x.ResponseEnd, x.Response, x.RequestEnd, x.Request} {
		if r != nil {
			return r
		}
	}
	return nil
}

// Reset is one HTTP/2 RST_STREAM frame.
type Reset struct {
	Dir    event.Dir
	Stream uint32
	Code   http2.ErrCode
	// Lost is set when the capture lost the frame's error code (a gap).
	Lost bool
	Ref  event.Ref
}

// noError reports whether r is a NO_ERROR reset, which asks the peer to
// stop sending and is no failure.
func (r Reset) noError() bool { return !r.Lost && r.Code == http2.ErrCodeNo }

// CodeName returns r's error code by name, "" when the capture lost it.
func (r Reset) CodeName() string {
	if r.Lost {
		return ""
	}
	return r.Code.String()
}

// Ping is one HTTP/2 PING frame.
type Ping struct {
	Dir event.Dir
	Ack bool
	Ref event.Ref
}

// Client returns the client's IP address.
func (c *Conn) Client() netip.Addr { return c.TCP.Client.Addr() }

// Server returns the server's address and port.
func (c *Conn) Server() netip.AddrPort { return c.TCP.Server }

// SNI returns the TLS server name, "" when none.
func (c *Conn) SNI() string {
	if c.App == nil || c.App.TLS == nil {
		return ""
	}
	return c.App.TLS.SNI
}

// Authority returns the destination name of the connection: its TLS SNI,
// else the first request's authority (Host), else "".
func (c *Conn) Authority() string {
	if s := c.SNI(); s != "" {
		return s
	}
	return firstAuthority(c)
}

// firstAuthority returns the first request's authority (Host), "" when
// none.
func firstAuthority(c *Conn) string { return c.sum.authority }

// streamingCall reports whether c carried a streaming gRPC call (more
// than one message either way).
func streamingCall(c *Conn) bool { return c.sum.streaming }

// hasStreamingCall is streamingCall from the connection's calls, for
// summarize.
func hasStreamingCall(calls []grpc.Call) bool {
	for i := range calls {
		if calls[i].RequestMessages > 1 || calls[i].ResponseMessages > 1 {
			return true
		}
	}
	return false
}

// Collector gathers Conns from a dissection run: pass it as the Sink,
// its App method as OnApp and its Finish method as OnConn of
// dissect.Options. Each connection is analysed when its application part
// is over (dissect.Options.OnApp: a few seconds of capture time after it
// closed, or when it finishes): every detector and the tables read its
// full records, OnConn sees them, and then they are released unless Keep
// is set, so memory grows with the number of connections, not with their
// requests. The connection stays as a summary; when it finishes, its
// final TCP summary replaces the one it had then, and the TCP refs (SYNs,
// FIN, RST, windows) of packets in between are added. Result reports once
// the run is over. A Collector is not safe for concurrent use.
type Collector struct {
	// OnConn, when not nil, receives each connection with its full
	// records once its application part is over, after the detectors
	// read it and before the records are released (report.Builder.Add
	// builds the report's parts of it). Its TCP summary and refs are
	// then those of that moment; the Conn, kept by the Collector, gets
	// the final ones when the connection finishes.
	OnConn func(*Conn)
	// OnDone, when not nil, receives each connection when it finishes,
	// its summary final, before the analysis folds it. OnConn may hold
	// the Conn until then: with DropConns the Collector reuses it after.
	OnDone func(*Conn)
	// Keep keeps every connection's full records in Conns, for a report
	// built from the Input afterwards (report.New); memory then grows
	// with the capture.
	Keep bool
	// DropConns keeps no connection once analysed: the analysis does
	// not need them (its detectors fold each into their state), only a
	// report built from Result's Input, whose Conns are then empty.
	DropConns bool

	// open holds the connections not yet finished, observed or not;
	// syns those that showed nothing but their first SYN, its ref alone
	// (a SYN flood's million connections cost a map entry each, not a
	// Conn and its Records, until they show more or finish).
	open  connTable[*Conn]
	syns  connTable[event.Ref]
	conns []*Conn
	a     *analysis
	// free holds Conns folded and dropped (DropConns), for new ones: a
	// million-connection capture allocates a few thousand.
	free freelist.List[Conn]
}

// maxFreeConns bounds the Conns a Collector keeps for reuse.
const maxFreeConns = 1024

// NewCollector returns an empty Collector analysing with cfg.
func NewCollector(cfg Config) *Collector {
	return &Collector{a: newAnalysis(cfg)}
}

func (k *Collector) conn(id event.ConnID) *Conn {
	c, _ := k.open.get(id)
	if c == nil {
		if c = k.fromSYN(id); c == nil {
			c = k.newConn()
		}
		k.open.set(id, c)
	}
	return c
}

// fromSYN returns a new Conn holding connection id's first SYN if that
// was kept alone (and forgets it there), else nil.
func (k *Collector) fromSYN(id event.ConnID) *Conn {
	syn, ok := k.syns.get(id)
	if !ok {
		return nil
	}
	k.syns.delete(id)
	c := k.newConn()
	c.synv[0] = syn
	c.SYNs = c.synv[:1:1] // a second SYN moves them to an array of their own
	return c
}

func appendCapped[T any](s []T, v T, limit int, dropped *int) []T {
	if len(s) >= limit {
		*dropped++
		return s
	}
	return append(s, v)
}

func refp(r event.Ref) *event.Ref { return &r }

// ownRef returns a copy of *r of its own, nil when r is: what a detector
// keeps of a Conn's FIN or RST, which point into the Conn.
func ownRef(r *event.Ref) *event.Ref {
	if r == nil {
		return nil
	}
	return refp(*r)
}

// recoveryWindow returns how soon after the peer's duplicate ACK a
// retransmission of c counts as loss recovery rather than the
// retransmission timer's: 20 ms (Wireshark's bound for a fast
// retransmission: a sender answers the ACK at once, and a capture at the
// sender sees it microseconds later), or two handshake round trips (SYN
// to SYN-ACK: a capture at the receiver sees the retransmission a round
// trip after its ACK), at most 200 ms, the shortest common minimum RTO
// (Linux's; RFC 6298 says 1 s).
func recoveryWindow(c *Conn) time.Duration {
	w := 20 * time.Millisecond
	if len(c.SYNs) > 0 && len(c.SYNACKs) > 0 {
		w = max(w, 2*c.SYNACKs[0].TS.Sub(c.SYNs[len(c.SYNs)-1].TS))
	}
	return min(w, 200*time.Millisecond)
}

// collects reports whether Event reads e: TCP events, HTTP/2
// RST_STREAM and PING frames (the HTTP/1 exchanges come in the App, as
// the HTTP/2 streams do). Event reads only those, and the analysis
// goroutine is handed only those (asyncCollector.Event).
func collects(e *event.Event) bool {
	switch e.Proto {
	case event.ProtoTCP:
		return true
	case event.ProtoHTTP2:
		t := http2.FrameType(e.Kind)
		return t == http2.FrameRSTStream || t == http2.FramePing
	}
	return false
}

// Event implements event.Sink.
func (k *Collector) Event(e *event.Event) {
	if !collects(e) {
		return
	}
	switch e.Proto {
	case event.ProtoTCP:
		k.tcpEvent(e)
	case event.ProtoHTTP2:
		k.http2Event(e)
	}
}

func (k *Collector) tcpEvent(e *event.Event) {
	if fl := layer.Flags(e.Kind); fl.Has(layer.SYN) && !fl.Has(layer.ACK) && e.Bits == 0 {
		if _, seen := k.open.get(e.Conn); !seen {
			if _, again := k.syns.get(e.Conn); !again {
				k.syns.set(e.Conn, e.Ref) // the first SYN: kept alone
				return
			}
		}
	}
	c := k.conn(e.Conn)
	var dropped int
	switch fl := layer.Flags(e.Kind); {
	case fl.Has(layer.SYN | layer.ACK):
		c.SYNACKs = appendCapped(c.SYNACKs, e.Ref, maxSYNs, &dropped)
	case fl.Has(layer.SYN):
		c.SYNs = appendCapped(c.SYNs, e.Ref, maxSYNs, &dropped)
	case fl.Has(layer.RST):
		if d := e.Dir & 1; c.RST[d] == nil {
			c.rstv[d] = e.Ref
			c.RST[d] = &c.rstv[d]
		}
	case fl.Has(layer.FIN):
		if d := e.Dir & 1; c.FIN[d] == nil {
			c.finv[d] = e.Ref
			c.FIN[d] = &c.finv[d]
		}
	}
	a := tcp.Analysis(e.Bits)
	switch d := e.Dir & 1; {
	case a.Has(tcp.ZeroWindow):
		c.zeroAt[d] = e.Ref.TS
	case a.Has(tcp.WindowUpdate) && !c.zeroAt[d].IsZero():
		c.zeroAt[d] = time.Time{} // the window reopens: flow control
	case a.Has(tcp.DuplicateACK) || a.Has(tcp.WindowUpdate):
		c.dupACKAt[d] = e.Ref.TS
	}
	if a.IsRetransmission() && e.Len > 0 && !a.Has(tcp.CaptureDuplicate) {
		c.DataRetransmissions++
		dup, timer, w := c.dupACKAt[(e.Dir+1)&1], c.timerAt[e.Dir&1], recoveryWindow(c)
		within := func(t time.Time) bool { return !t.IsZero() && !e.Ref.TS.Before(t) && e.Ref.TS.Sub(t) <= w }
		if a.Has(tcp.FastRetransmission) && !a.Has(tcp.SpuriousRetransmission) {
			c.FastData++
		}
		switch {
		case a.Has(tcp.SpuriousRetransmission):
			c.SpuriousData++
		case within(timer):
			// After the timer fired, the ACKs that come back clock out
			// the rest of what was lost: the same timeout's episode.
			c.timerAt[e.Dir&1] = e.Ref.TS
		case a.Has(tcp.FastRetransmission) || within(dup):
			c.RecoveryRetransmissions++
		default:
			c.timerAt[e.Dir&1] = e.Ref.TS
		}
	}
	if a.Has(tcp.ZeroWindow) {
		c.ZeroWindows[e.Dir&1] = appendCapped(c.ZeroWindows[e.Dir&1], e.Ref, maxWindowRef, &dropped)
	}
	if a.Has(tcp.WindowFull) {
		c.WindowFulls[e.Dir&1] = appendCapped(c.WindowFulls[e.Dir&1], e.Ref, maxWindowRef, &dropped)
	}
}

func (k *Collector) http2Event(e *event.Event) {
	switch http2.FrameType(e.Kind) {
	case http2.FrameRSTStream:
		c := k.conn(e.Conn)
		if c.Records == nil {
			return
		}
		r := Reset{Dir: e.Dir, Stream: e.Stream, Code: http2.ErrCode(e.Code), Lost: !e.HasCode, Ref: e.Ref}
		c.Records.Resets = appendCapped(c.Records.Resets, r, maxResets, &c.Records.ResetsDropped)
	case http2.FramePing:
		c := k.conn(e.Conn)
		if c.Records == nil {
			return
		}
		c.Records.Pings = appendCapped(c.Records.Pings, Ping{Dir: e.Dir, Ack: http2.Flags(e.Bits)&http2.FlagAck != 0, Ref: e.Ref}, maxPings, &c.Records.PingsDropped)
	}
}

// ownExchange returns a copy of x that shares no memory with the
// connection's records, which its refs may point into (the HTTP/1
// exchanges' point into the dissector's records, a whole connection's):
// what a detector keeps of an exchange past the connection's release.
func ownExchange(x *Exchange) *Exchange {
	o := &struct {
		x     Exchange
		refs  [4]event.Ref
		reset http2.Reset
		grpc  int
	}{x: *x}
	for i, p := range [...]**event.Ref{&o.x.Request, &o.x.RequestEnd, &o.x.Response, &o.x.ResponseEnd} {
		if *p != nil {
			o.refs[i] = **p
			*p = &o.refs[i]
		}
	}
	if x.Reset != nil {
		o.reset = *x.Reset
		o.x.Reset = &o.reset
	}
	if x.GRPCStatus != nil {
		o.grpc = *x.GRPCStatus
		o.x.GRPCStatus = &o.grpc
	}
	return &o.x
}

// appendHTTP1 appends to xs the exchanges of the HTTP/1 records hs, at
// most maxExchanges in all, counting the rest in dropped; they point
// into hs.
func appendHTTP1(xs []Exchange, hs []http1.Exchange, dropped *int) []Exchange {
	for i := range hs {
		h := &hs[i]
		x := Exchange{Proto: event.ProtoHTTP1, Seq: h.Seq, Method: h.Method, Authority: h.Host, Path: h.Target,
			Request: &h.Request, RequestEnd: &h.RequestEnd}
		if h.Answered {
			x.Status, x.KeepAlive, x.Response = h.Status, h.KeepAlive, &h.Response
			if h.Complete {
				// A response cut short (its direction closed or reset
				// first) did not end the exchange: connection_lost counts
				// it in flight.
				x.ResponseEnd = &h.Response
			}
		}
		xs = appendCapped(xs, x, maxExchanges, dropped)
	}
	return xs
}

// App receives a connection whose application part is over (the OnApp
// callback of dissect.Options) and analyses it. The connection stays
// open for its TCP refs until Finish. The Collector takes app: its
// records (HTTP/1 exchanges, HTTP/2 streams, gRPC calls, stalls) move
// into the Conn's Records.
func (k *Collector) App(tc *tcp.Conn, app *dissect.App) {
	k.app(&tc.Summary, app)
}

// app is App with the connection's TCP summary at this moment.
func (k *Collector) app(sum *tcp.Summary, app *dissect.App) {
	k.observe(k.conn(sum.ID), sum, app)
}

// Finish receives a finished connection (the OnConn callback of
// dissect.Options): it is analysed now if App did not receive it
// (app is then what its dissectors found), else its TCP summary is
// brought up to date. The Collector takes app, as App does.
func (k *Collector) Finish(tc *tcp.Conn, app *dissect.App) {
	k.finish(&tc.Summary, app)
}

// finish is Finish with the connection's final TCP summary.
func (k *Collector) finish(sum *tcp.Summary, app *dissect.App) {
	c := k.take(sum.ID)
	if c == nil || !c.observed {
		if c == nil {
			c = k.newConn()
		}
		k.observe(c, sum, app)
	} else {
		c.tcp = *sum
		c.TCP = &c.tcp
	}
	k.done(c)
}

// appFinish is app(appSum, app) and then finish(sum, nil), for a
// connection whose application part ended as it finished (evicted, or
// at the end of the run), without keeping it open in between.
func (k *Collector) appFinish(appSum *tcp.Summary, app *dissect.App, sum *tcp.Summary) {
	c := k.take(sum.ID)
	if c == nil {
		c = k.newConn()
	}
	k.observe(c, appSum, app)
	c.tcp = *sum
	c.TCP = &c.tcp
	k.done(c)
}

// take returns the Conn of connection id and forgets it: the open one,
// else a new one with the connection's first SYN if that was kept alone,
// else nil.
func (k *Collector) take(id event.ConnID) *Conn {
	if c, ok := k.open.get(id); ok {
		k.open.delete(id)
		return c
	}
	return k.fromSYN(id)
}

// done hands the finished connection c to OnDone and the analysis, and
// then reuses it.
func (k *Collector) done(c *Conn) {
	if k.OnDone != nil {
		k.OnDone(c)
	}
	k.a.final(c)
	if k.DropConns && !k.Keep {
		// Nothing holds c any more: the detectors folded it, and OnConn
		// let it go at OnDone.
		if noReuse {
			return
		}
		*c = Conn{}
		k.free.Put(c)
	}
}

// noReuse, set by a test, keeps the Collectors from reusing Conns.
var noReuse bool

// setSink makes s the Collector's OnConn and OnDone.
func (k *Collector) setSink(s ConnSink) {
	if s != nil {
		k.OnConn, k.OnDone = s.Add, s.Done
	}
}

// copyTo makes d a copy of c that shares nothing c's reuse changes: the
// TCP summary, records and summary facts d points to are its own.
func (c *Conn) copyTo(d *Conn) {
	*d = *c
	if c.TCP == &c.tcp {
		d.TCP = &d.tcp
	}
	if c.Records == &c.recs {
		d.Records = &d.recs
	}
	if c.sum == &c.sumv {
		d.sum = &d.sumv
	}
	if len(c.SYNs) > 0 && &c.SYNs[0] == &c.synv[0] {
		d.SYNs = d.synv[:len(c.SYNs):cap(c.SYNs)]
	}
	for i := range 2 {
		if c.FIN[i] == &c.finv[i] {
			d.FIN[i] = &d.finv[i]
		}
		if c.RST[i] == &c.rstv[i] {
			d.RST[i] = &d.rstv[i]
		}
	}
}

// newConn returns an empty Conn with empty Records, reused if one is
// free.
func (k *Collector) newConn() *Conn {
	if k.free.Max == 0 {
		k.free.Max = maxFreeConns
	}
	c := k.free.Get()
	c.Records = &c.recs
	return c
}

// observe builds c's records from tc and app (taking app's: see
// Records.takeRecords), lets the detectors, the tables and OnConn read
// them, then releases them (unless Keep).
func (k *Collector) observe(c *Conn, sum *tcp.Summary, app *dissect.App) {
	c.tcp = *sum
	c.TCP, c.App = &c.tcp, app
	c.Records.takeRecords(app)
	if app != nil {
		c.Records.Exchanges = appendHTTP1(c.Records.Exchanges, c.Records.HTTP1, &c.Records.ExchangesDropped)
		c.Records.ExchangesDropped += app.ExchangesDropped
		for i := range c.Records.Streams {
			s := &c.Records.Streams[i]
			if s.Initiator != "client" {
				continue
			}
			x := Exchange{Proto: event.ProtoHTTP2, Stream: s.ID, Method: s.Method, Authority: s.Authority,
				Path: s.Path, Status: s.Status, Request: s.FirstHeaders, RequestEnd: s.ClientEnd, Response: s.ReplyHeaders,
				ResponseEnd: s.ServerEnd, Reset: s.Reset, GRPCStatus: s.GRPCStatus,
				// The client's HEADERS was seen but no header block of
				// the stream completed.
				HeadOpen: s.FirstHeaders != nil && s.HeaderBlocks == 0}
			c.Records.Exchanges = appendCapped(c.Records.Exchanges, x, maxExchanges, &c.Records.ExchangesDropped)
		}
		if h := app.HTTP1; h != nil && h.Upgrade == "h2c" && slices.ContainsFunc(c.Records.Exchanges, func(x Exchange) bool {
			return x.Proto == event.ProtoHTTP2 && x.Stream == 1
		}) {
			// The request that asked for the upgrade is HTTP/2 stream 1
			// as well (RFC 7540 §3.2), which has its response: its
			// HTTP/1 exchange, answered by 101, is not a second request.
			c.Records.Exchanges = slices.DeleteFunc(c.Records.Exchanges, func(x Exchange) bool {
				return x.Proto == event.ProtoHTTP1 && x.Status == 101
			})
		}
	}
	slices.SortStableFunc(c.Records.Exchanges, func(a, b Exchange) int {
		sa, sb := a.Start(), b.Start()
		if sa == nil || sb == nil {
			return cmp.Compare(a.Seq, b.Seq)
		}
		return cmp.Compare(sa.Frame, sb.Frame)
	})
	c.observed = true
	k.a.observe(c)
	if k.OnConn != nil {
		k.OnConn(c)
	}
	if !k.Keep {
		c.release()
	}
	if !k.DropConns {
		k.conns = append(k.conns, c)
	}
}

// Result returns the analysis of the connections observed so far (call it
// once the run is over: a connection observed but not finished is
// finalised as it is) and the Input of the report, st being the run's
// statistics.
func (k *Collector) Result(st dissect.Stats) (Result, *Input) {
	k.finalOpen()
	return k.a.result(st), &Input{Conns: k.Conns(), Stats: st}
}

// finalOpen finalises the connections observed but not finished, in id
// order, and forgets them.
func (k *Collector) finalOpen() {
	var open []*Conn
	var ids []event.ConnID
	k.open.each(func(id event.ConnID, c *Conn) {
		if c.observed {
			open, ids = append(open, c), append(ids, id)
		}
	})
	for _, id := range ids {
		k.open.delete(id)
	}
	slices.SortFunc(open, func(a, b *Conn) int { return cmp.Compare(a.ID(), b.ID()) })
	for _, c := range open {
		k.a.final(c)
	}
}

// State returns the analysis state of the connections observed so far,
// each finalised (call it once the run is over), to merge with other
// Collectors' (State.Merge) over disjoint connections; the Collector is
// not used afterwards.
func (k *Collector) State() *State {
	k.finalOpen()
	return &State{a: k.a}
}

// Conns returns the finished connections in id order.
func (k *Collector) Conns() []*Conn {
	slices.SortFunc(k.conns, func(a, b *Conn) int { return cmp.Compare(a.ID(), b.ID()) })
	return k.conns
}
