package dissect

import (
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/sniff"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/internal/freelist"
)

// App is what the application-layer dissectors found on one connection.
// Fields are nil when their protocol was not seen.
type App struct {
	// Proto is the protocol recognised from the connection's first bytes
	// (after an h2c upgrade, HTTP2 is set too).
	Proto event.Proto
	// HTTP1 summarises the HTTP/1.x messages.
	HTTP1 *http1.Summary
	// Exchanges lists the HTTP/1.x requests and their final responses
	// (with Options.Exchanges), the connection's own and then those of
	// the HTTP/1.x it carried decrypted or through a tunnel, in request
	// order within each; ExchangesDropped counts the requests past
	// http1.MaxExchanges.
	Exchanges        []http1.Exchange
	ExchangesDropped int
	// HTTP2 summarises the HTTP/2 frames; Streams holds its streams.
	HTTP2   *http2.Summary
	Streams []http2.Stream
	// Calls holds the gRPC calls; GRPCAnomalies counts what the gRPC
	// dissector found wrong in their framing (message lengths beyond the
	// limit, calls past the record bound: calls_not_recorded).
	Calls         []grpc.Call
	GRPCAnomalies map[string]int
	// TLS summarises the TLS handshake and decryption. When records were
	// decrypted, Decrypted is the protocol recognised in the application
	// data, and HTTP1, HTTP2, Streams and Calls describe it.
	TLS       *tls.Summary
	Decrypted event.Proto
	// Tunnel is the protocol an HTTP CONNECT tunnel carried, when there
	// was one and it was recognised; TunnelHTTP1 summarises it when it
	// was HTTP/1.x.
	Tunnel      event.Proto
	TunnelHTTP1 *http1.Summary
}

// sniffLimit bounds the bytes of each direction that protocol recognition
// looks at; heldLimit bounds all the bytes a connection holds while its
// protocol is not yet recognised, after which it is decided with what was
// seen (possibly: not dissected).
const (
	sniffLimit = 16 << 10
	heldLimit  = 256 << 10
)

// chunk is a piece of input held while sniffing, in arrival order.
type chunk struct {
	dir   event.Dir
	data  []byte // nil for a gap
	gap   int
	close bool
	reset bool
	at    event.Ref
}

// appConn is the StreamHandler every connection gets: it recognises the
// protocol from the first bytes of either direction, then hands the bytes
// to the dissector for it, replaying what it held in arrival order.
type appConn struct {
	c      *tcp.Conn
	sink   event.Sink
	shared *tlsShared
	proto  event.Proto
	done   bool // protocol decided (possibly unknown)
	held   []chunk
	// held0 backs held for its first chunks: most connections hold at
	// most the closes of a connection that carried nothing.
	held0 [2]chunk
	nheld [2]int
	buf   [2][]byte // contiguous held bytes per direction, for sniffing
	// verdict and synced cache what buf[d] says; they change only while
	// buf[d] grows, so detection runs at most a few times per direction.
	verdict [2]sniff.Verdict
	synced  [2]bool
	h1      *http1.Conn
	h2      *http2.Conn
	tls     *tls.Conn
	rpc     *grpc.Conn
	toH2    [2]bool // direction switched to HTTP/2 after an upgrade
	closed  [2]bool
	// tunnel dissects what an HTTP CONNECT tunnel carries, recognised
	// afresh; toTunnel marks the directions that entered it.
	tunnel   *appConn
	toTunnel [2]bool
	// plain dissects the decrypted application data of TLS, recognised
	// afresh.
	plain  *appConn
	inner  bool // a tunnel's content: leave the connection's label alone
	gapped bool // bytes were lost before the protocol was recognised
	// settled is the App, taken as soon as both directions closed (no
	// dissector can receive anything more), so that the dissectors are
	// freed then rather than when the tracker ends the streams.
	settled *App
}

// tlsShared is what the TLS dissectors of one run share: the key log and
// the sessions servers established; and the appConns and HTTP/1
// dissectors to reuse.
type tlsShared struct {
	keys     *tls.KeyLog
	sessions *tls.Sessions
	free     freelist.List[appConn]
	freeH1   h1Pool
	// exchanges keeps the HTTP/1 exchanges (Options.Exchanges).
	exchanges bool
}

// maxFreeApps bounds the appConns kept for reuse, and separately the
// HTTP/1 dissectors.
const maxFreeApps = 256

// h1Pool keeps at most maxFreeApps HTTP/1 dissectors for reuse; its zero
// value is ready.
type h1Pool struct{ l freelist.List[http1.Conn] }

// get returns a dissector to Reset before use.
func (p *h1Pool) get() *http1.Conn { return p.l.Get() }

func (p *h1Pool) put(c *http1.Conn) {
	p.l.Max = maxFreeApps
	p.l.Put(c)
}

func newAppConn(c *tcp.Conn, sink event.Sink, shared *tlsShared) *appConn {
	a := shared.free.Get()
	a.c, a.sink, a.shared = c, sink, shared
	a.held = a.held0[:0]
	return a
}

// release takes back a connection's appConn, and its HTTP/1 dissectors,
// once its App was taken (what App holds is copied from the dissectors).
func (a *appConn) release() {
	a.letGo()
	sh := a.shared
	if sh.free.Full() {
		return
	}
	*a = appConn{}
	sh.free.Put(a)
}

// letGo takes back the HTTP/1 dissectors of a, and of the appConns
// inside it, for reuse: a's App was taken (build copies their summaries),
// and they receive nothing more. The HTTP/1 dissector holds nothing
// anyone else keeps: its events are valid only during the Sink's call,
// and the upgrade request it hands to HTTP/2 is allocated apart.
func (a *appConn) letGo() {
	if a == nil {
		return
	}
	if a.h1 != nil {
		a.shared.freeH1.put(a.h1)
		a.h1 = nil
	}
	a.plain.letGo()
	a.tunnel.letGo()
}

// inside returns a dissector for a protocol carried inside this one.
func (a *appConn) inside() *appConn {
	in := newAppConn(a.c, a.sink, a.shared)
	in.inner = true
	return in
}

// Data implements tcp.StreamHandler.
func (a *appConn) Data(dir event.Dir, b []byte, at event.Ref) {
	if a.done {
		a.feed(dir, b, at)
		return
	}
	if len(a.held) == 0 && len(a.buf[dir]) == 0 {
		// The first bytes: sniff them in place. When they settle the
		// protocol, nothing needs holding; otherwise they are held
		// and sniffed again from the copy, as below.
		a.buf[dir] = b[:min(len(b), sniffLimit)]
		a.nheld[dir] = len(b)
		a.sniff(dir)
		v, ok := a.settle(false)
		a.buf[dir], a.nheld[dir] = nil, 0
		if ok {
			a.start(v)
			a.feed(dir, b, at)
			return
		}
	}
	a.held = append(a.held, chunk{dir: dir, data: append([]byte(nil), b...), at: at})
	a.nheld[dir] += len(b)
	if len(a.buf[dir]) < sniffLimit {
		a.buf[dir] = append(a.buf[dir], b[:min(len(b), sniffLimit-len(a.buf[dir]))]...)
		a.sniff(dir)
	}
	a.decide(false)
}

// Gap implements tcp.StreamHandler.
func (a *appConn) Gap(dir event.Dir, n int, at event.Ref) {
	if a.done {
		a.gap(dir, n, at)
		return
	}
	a.held = append(a.held, chunk{dir: dir, gap: n, at: at})
	// Bytes after a hole cannot be the start of the stream: sniff them as
	// a capture that started mid-connection.
	a.buf[dir] = a.buf[dir][:0]
	a.gapped = true
	a.sniff(dir)
	a.decide(false)
}

// Close implements tcp.StreamHandler.
func (a *appConn) Close(dir event.Dir, reset bool, at event.Ref) {
	if !a.done {
		a.held = append(a.held, chunk{dir: dir, close: true, reset: reset, at: at})
		a.closed[dir] = true
		a.decide(a.closed[0] && a.closed[1])
		return
	}
	a.close(dir, reset, at)
}

// sniff re-examines what direction dir holds.
func (a *appConn) sniff(dir event.Dir) {
	a.verdict[dir] = sniff.Detect(a.buf[dir])
	_, a.synced[dir] = sniff.Resync(a.buf[dir])
}

// decide settles the protocol when the held bytes allow it (or force is
// set), then replays them.
func (a *appConn) decide(force bool) {
	v, ok := a.settle(force)
	if !ok {
		return
	}
	a.start(v)
	held := a.held
	a.held, a.buf = nil, [2][]byte{}
	for _, ch := range held {
		switch {
		case ch.close:
			a.close(ch.dir, ch.reset, ch.at)
		case ch.data == nil:
			a.gap(ch.dir, ch.gap, ch.at)
		default:
			a.feed(ch.dir, ch.data, ch.at)
		}
	}
}

// settle returns the protocol the held bytes (or, with force, what was
// seen) say, and false when it should wait for more bytes.
func (a *appConn) settle(force bool) (v sniff.Verdict, ok bool) {
	c2s, s2c := a.verdict[event.C2S], a.verdict[event.S2C]
	if len(a.buf[event.C2S]) == 0 {
		c2s = sniff.Verdict{More: true}
	}
	if len(a.buf[event.S2C]) == 0 {
		s2c = sniff.Verdict{More: true}
	}
	switch {
	case c2s.Proto != event.ProtoUnknown:
		v = c2s
	case s2c.Proto != event.ProtoUnknown && !(c2s.More && len(a.buf[event.C2S]) > 0):
		v = s2c
		v.Preface = false
	case a.midstream() && a.resync():
		v = sniff.Verdict{Proto: event.ProtoHTTP2}
	case force || a.nheld[0]+a.nheld[1] >= heldLimit:
		// Decide with what is held: a silent direction must not make
		// the other one pile up.
	case c2s.More && len(a.buf[event.C2S]) < sniffLimit || s2c.More && len(a.buf[event.S2C]) < sniffLimit:
		return v, false // wait for more bytes
	case a.midstream() && (len(a.buf[event.C2S]) < sniffLimit || len(a.buf[event.S2C]) < sniffLimit):
		return v, false // frames may still line up further on
	}
	return v, true
}

// start sets up the dissector for protocol v.
func (a *appConn) start(v sniff.Verdict) {
	a.done = true
	a.proto = v.Proto
	switch v.Proto {
	case event.ProtoHTTP2:
		a.startH2(http2.Options{MidConnection: !v.Preface})
	case event.ProtoHTTP1:
		a.h1 = a.shared.freeH1.get()
		a.h1.Reset(a.c.ID, a.sink, http1.Options{Exchanges: a.shared.exchanges})
	case event.ProtoTLS:
		opts := tls.Options{Keys: a.shared.keys, Sessions: a.shared.sessions}
		if a.shared.keys != nil {
			a.plain = a.inside()
			opts.Plain = a.plain
		}
		a.tls = tls.NewConn(a.c.ID, a.sink, opts)
	}
	if v.Proto != event.ProtoUnknown && !a.inner {
		a.c.Proto = v.Proto.String()
	}
}

// midstream reports whether the capture missed the start of the
// connection, so its first bytes may fall inside a message.
func (a *appConn) midstream() bool {
	return a.c.SYNs == 0 && a.c.SYNACKs == 0 || a.gapped
}

// resync reports whether either direction holds a chain of HTTP/2 frames
// that starts past its first byte.
func (a *appConn) resync() bool {
	return a.synced[0] || a.synced[1]
}

func (a *appConn) startH2(opts http2.Options) {
	a.rpc = grpc.NewConn(a.c.ID, a.sink, grpc.Options{})
	opts.Observer = a.rpc
	a.h2 = http2.NewConn(a.c.ID, a.sink, opts)
}

func (a *appConn) feed(dir event.Dir, b []byte, at event.Ref) {
	switch {
	case a.toTunnel[dir]:
		a.tunnel.Data(dir, b, at)
	case a.h1 != nil && !a.toH2[dir]:
		n := a.h1.Feed(dir, b, at)
		if n == len(b) {
			return
		}
		switch proto, _ := a.h1.Upgraded(); proto {
		case "h2c":
			if a.h2 == nil {
				// The upgrade request is stream 1, its HTTP2-Settings
				// the client's first SETTINGS.
				req, settings, at := a.h1.UpgradeRequest()
				a.startH2(http2.Options{Upgrade: true, UpgradeRequest: req, UpgradeSettings: settings, UpgradeAt: at})
				if !a.inner {
					a.c.Proto = event.ProtoHTTP2.String()
				}
			}
			a.toH2[dir] = true
			a.h2.Data(dir, b[n:], at)
		case "CONNECT":
			// The tunnel carries a protocol of its own (TLS, HTTP/2,
			// HTTP/1.1): recognise it from its first bytes.
			if a.tunnel == nil {
				a.tunnel = a.inside()
			}
			a.toTunnel[dir] = true
			a.tunnel.Data(dir, b[n:], at)
		}
		// Other upgrades (websocket) are not dissected.
	case a.h2 != nil:
		a.h2.Data(dir, b, at)
	case a.tls != nil:
		a.tls.Data(dir, b, at)
	}
}

func (a *appConn) gap(dir event.Dir, n int, at event.Ref) {
	switch {
	case a.toTunnel[dir]:
		a.tunnel.Gap(dir, n, at)
	case a.h1 != nil && !a.toH2[dir]:
		a.h1.Gap(dir, n, at)
	case a.h2 != nil:
		a.h2.Gap(dir, n, at)
	case a.tls != nil:
		a.tls.Gap(dir, n, at)
	}
}

func (a *appConn) close(dir event.Dir, reset bool, at event.Ref) {
	if a.tunnel != nil {
		a.tunnel.Close(dir, reset, at)
	}
	if a.h1 != nil {
		a.h1.Close(dir, reset, at)
	}
	if a.h2 != nil {
		a.h2.Close(dir, reset, at)
	}
	if a.tls != nil {
		a.tls.Close(dir, reset, at)
	}
	a.closed[dir] = true
	if a.closed[0] && a.closed[1] {
		if a.rpc != nil {
			a.rpc.Finish(at)
		}
		if !a.inner && a.settled == nil && !a.holdsStreams() {
			// Both directions are over: what the dissectors found is
			// final. Keep it and let them go. HTTP/2 and gRPC keep
			// their stream and call records encoded until the handover:
			// decoded here they would be held, several times larger,
			// for the tracker's grace period.
			a.settled = a.build()
			a.letGo()
			a.h1, a.h2, a.tls, a.rpc, a.plain, a.tunnel = nil, nil, nil, nil, nil, nil
		}
	}
}

// holdsStreams reports whether a's dissectors hold HTTP/2 stream or gRPC
// call records, directly or inside TLS or a tunnel.
func (a *appConn) holdsStreams() bool {
	if a == nil {
		return false
	}
	return a.h2 != nil || a.rpc != nil || a.plain.holdsStreams() || a.tunnel.holdsStreams()
}

// app returns the connection's application summary.
func (a *appConn) app() *App {
	if a == nil {
		return nil
	}
	app := a.settled
	if app == nil {
		app = a.build()
	}
	if app != nil && app.TLS != nil && a.c.SYNs > 0 {
		// The connection's first frame is then the client's SYN.
		app.TLS.SetSYN(&event.Ref{Frame: a.c.FirstFrame, TS: a.c.FirstTS})
	}
	return app
}

// appHTTP1 is an App with room for its HTTP/1 summary.
type appHTTP1 struct {
	App
	h1 http1.Summary
}

// build returns what the dissectors found, but for the TLS durations
// from the SYN, which app adds.
func (a *appConn) build() *App {
	if a == nil || a.proto == event.ProtoUnknown {
		return nil
	}
	var app *App
	if a.h1 != nil {
		// One allocation for the App and its HTTP/1 summary.
		x := &appHTTP1{App: App{Proto: a.proto}, h1: a.h1.Summary()}
		app = &x.App
		app.HTTP1 = &x.h1
		app.Exchanges, app.ExchangesDropped = a.h1.Exchanges()
	} else {
		app = &App{Proto: a.proto}
	}
	if a.h2 != nil {
		s := a.h2.Summary()
		app.HTTP2 = &s
		app.Streams = a.h2.Streams()
	}
	if a.rpc != nil {
		app.Calls = a.rpc.Calls()
		if an := a.rpc.Anomalies(); len(an) > 0 {
			app.GRPCAnomalies = an
		}
	}
	if a.tls != nil {
		s := a.tls.Summary()
		app.TLS = &s
	}
	if p := a.plain.build(); p != nil {
		app.Decrypted = p.Proto
		app.HTTP1, app.HTTP2, app.Streams, app.Calls = p.HTTP1, p.HTTP2, p.Streams, p.Calls
		app.addExchanges(p)
	}
	if t := a.tunnel.build(); t != nil {
		// What the tunnel carried, when the outer protocol had none of it.
		if app.HTTP2 == nil {
			app.HTTP2, app.Streams, app.Calls = t.HTTP2, t.Streams, t.Calls
		}
		if app.TLS == nil {
			app.TLS = t.TLS
		}
		app.Tunnel, app.TunnelHTTP1 = t.Proto, t.HTTP1
		app.addExchanges(t)
	}
	return app
}

// addExchanges adds the HTTP/1 exchanges of in, the App of a protocol
// app's connection carried, after app's own.
func (app *App) addExchanges(in *App) {
	if app.Exchanges == nil {
		app.Exchanges = in.Exchanges
	} else {
		app.Exchanges = append(app.Exchanges, in.Exchanges...)
	}
	app.ExchangesDropped += in.ExchangesDropped
}
