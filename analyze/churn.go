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

// connPool is a pool and its connections in order of first frame.
type connPool struct {
	key   poolKey
	conns []*Conn
}

// pools groups conns by poolKey, in key order, leaving out connections
// that carried no payload; each pool's connections are in order of first
// frame.
func pools(conns []*Conn) []connPool {
	ps := groupPools(conns, func(c *Conn) (poolKey, bool) {
		if c.TCP == nil || (c.TCP.StreamBytes.C2S == 0 && c.TCP.StreamBytes.S2C == 0) {
			// No payload: a connection attempt (syn_retransmit,
			// handshake_latency), not a pooled connection.
			return poolKey{}, false
		}
		k := poolKey{client: c.Client(), server: c.Server(), name: c.Authority()}
		if c.App != nil && c.App.TLS != nil {
			k.ja4 = c.App.TLS.JA4
		}
		return k, true
	})
	for i := range ps {
		slices.SortStableFunc(ps[i].conns, func(a, b *Conn) int {
			return cmp.Or(a.TCP.FirstTS.Compare(b.TCP.FirstTS), cmp.Compare(a.ID(), b.ID()))
		})
	}
	return ps
}

// groupPools groups conns by the key that key returns for them, leaving
// out those for which it returns false: the pools are in key order, the
// connections of each in the order of conns.
func groupPools(conns []*Conn, key func(*Conn) (poolKey, bool)) []connPool {
	idx := map[poolKey]int{}
	var ps []connPool
	for _, c := range conns {
		k, ok := key(c)
		if !ok {
			continue
		}
		i, ok := idx[k]
		if !ok {
			i = len(ps)
			idx[k] = i
			ps = append(ps, connPool{key: k})
		}
		ps[i].conns = append(ps[i].conns, c)
	}
	slices.SortFunc(ps, func(a, b connPool) int { return a.key.compare(b.key) })
	return ps
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

// detectReconnectChurn reports pools whose connections are opened and
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
// max_concurrent_conns, unknown_request_conns.
func detectReconnectChurn(in *Input, cfg ChurnConfig) []Finding {
	var out []Finding
	for _, p := range pools(in.Conns) {
		if f, ok := churnPool(in, cfg, p); ok {
			out = append(out, f)
		}
	}
	return out
}

// churnStats are a pool's numbers.
type churnStats struct {
	conns, known, unknown, reqs, oneReq, shortUnknown int
	seenOpenOrClose                                   int // connections whose SYN, FIN or RST was captured
	hist                                              map[string]int
	closedBy                                          map[string]int
	closeReq                                          [2]int // Connection: close asked by client, server
	gaps                                              []time.Duration
	reuses                                            []*Conn
	ports                                             map[uint16]bool
	portMin, portMax                                  uint16
	twPeak                                            [2]int // client, server
	firstSYN, lastSYN                                 time.Time
}

func poolStats(cfg ChurnConfig, p connPool) churnStats {
	s := churnStats{conns: len(p.conns), hist: map[string]int{}, closedBy: map[string]int{}, ports: map[uint16]bool{}}
	lastClose := map[uint16]time.Time{}
	var closes [2][]time.Time
	for i, c := range p.conns {
		n, ok := requests(c)
		long := longLived(c, cfg.LongLived)
		switch {
		case ok:
			s.known++
			s.reqs += n
			s.hist[requestBucket(n)]++
			if n <= 1 && !long {
				s.oneReq++
			}
		default:
			s.unknown++
			if !long {
				s.shortUnknown++
			}
		}
		s.closedBy[string(c.TCP.Close)]++
		if firstSYN(c) != nil || c.TCP.Close != tcp.CloseOpen {
			s.seenOpenOrClose++
		}
		if c.App != nil && c.App.HTTP1 != nil {
			switch c.App.HTTP1.CloseRequestedBy {
			case "client":
				s.closeReq[0]++
			case "server":
				s.closeReq[1]++
			}
		}
		port := c.TCP.Client.Port()
		if len(s.ports) == 0 || port < s.portMin {
			s.portMin = port
		}
		s.portMax = max(s.portMax, port)
		s.ports[port] = true
		start := c.TCP.FirstTS
		if syn := firstSYN(c); syn != nil {
			start = syn.TS
			if s.firstSYN.IsZero() {
				s.firstSYN = syn.TS
			}
			s.lastSYN = syn.TS
		}
		if t, seen := lastClose[port]; seen && start.Sub(t) < cfg.ReuseWindow && !start.Before(t) {
			s.reuses = append(s.reuses, c)
		}
		end := c.TCP.LastTS
		if f := firstFIN(c); f != nil {
			end = f.TS
		}
		lastClose[port] = end
		switch closerSide(c.TCP.Close) {
		case "client":
			closes[0] = append(closes[0], end)
		case "server":
			closes[1] = append(closes[1], end)
		}
		if i+1 < len(p.conns) {
			next := firstSYN(p.conns[i+1])
			if f := firstFIN(c); f != nil && next != nil && !next.TS.Before(f.TS) {
				s.gaps = append(s.gaps, next.TS.Sub(f.TS))
			}
		}
	}
	for side := range 2 {
		ts := closes[side]
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		j := 0
		for i := range ts {
			for j < i && ts[i].Sub(ts[j]) >= cfg.ReuseWindow {
				j++
			}
			s.twPeak[side] = max(s.twPeak[side], i-j+1)
		}
	}
	return s
}

func churnPool(in *Input, cfg ChurnConfig, p connPool) (Finding, bool) {
	if len(p.conns) < max(cfg.MinConns, 2) {
		return Finding{}, false
	}
	s := poolStats(cfg, p)
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
	f := Finding{Kind: KindReconnectChurn, Severity: sev}
	var b strings.Builder
	fmt.Fprintf(&b, "Client %s opened %d connections to %s", k.client, s.conns, k.destination())
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
	if len(s.reuses) > 0 {
		fmt.Fprintf(&b, "; %d reused a 4-tuple within %s of its close", len(s.reuses), cfg.ReuseWindow)
	}
	f.Summary = b.String()

	m := map[string]any{
		"connections":               s.conns,
		"requests":                  s.reqs,
		"one_request_conns":         s.oneReq,
		"requests_hist":             s.hist,
		"closed_by":                 s.closedBy,
		"client_ports":              len(s.ports),
		"client_port_min":           int(s.portMin),
		"client_port_max":           int(s.portMax),
		"tuple_reuses":              len(s.reuses),
		"close_requested_by_client": s.closeReq[0],
		"close_requested_by_server": s.closeReq[1],
		"max_concurrent_conns":      maxConcurrent(p.conns),
		"time_wait_side":            twSide,
		"time_wait_peak":            twPeak,
		"unknown_request_conns":     s.unknown,
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
	f.Metrics = m

	// Evidence: the first few one-request connections (SYN, request,
	// first FIN), then the 4-tuple reuses.
	const perConnEvidence, maxConnsShown = 3, 5
	shown := 0
	for _, c := range p.conns {
		f.Connections = append(f.Connections, c.ID())
		if shown >= maxConnsShown || shown*perConnEvidence >= maxEvidence-5 {
			continue
		}
		n, ok := requests(c)
		if ok && (n > 1 || longLived(c, cfg.LongLived)) {
			continue
		}
		shown++
		if syn := firstSYN(c); syn != nil {
			f.Evidence = append(f.Evidence, evidence(c.ID(), 0, *syn, fmt.Sprintf("SYN: new connection from port %d", c.TCP.Client.Port())))
		}
		if x := firstExchange(c); x != nil && x.Request != nil {
			f.Evidence = append(f.Evidence, evidence(c.ID(), x.Stream, *x.Request, fmt.Sprintf("request %s %s: the only one on this connection", x.Method, x.Path)))
		}
		if fin := firstFIN(c); fin != nil {
			who := "client"
			if c.FIN[event.S2C] == fin {
				who = "server"
			}
			f.Evidence = append(f.Evidence, evidence(c.ID(), 0, *fin, fmt.Sprintf("FIN from the %s first: it holds TIME_WAIT", who)))
		} else if r := c.RST[event.C2S]; r != nil {
			f.Evidence = append(f.Evidence, evidence(c.ID(), 0, *r, "RST from the client closes the connection"))
		} else if r := c.RST[event.S2C]; r != nil {
			f.Evidence = append(f.Evidence, evidence(c.ID(), 0, *r, "RST from the server closes the connection"))
		}
	}
	for i, c := range s.reuses {
		if i >= 5 {
			break
		}
		if syn := firstSYN(c); syn != nil {
			f.Evidence = append(f.Evidence, evidence(c.ID(), 0, *syn, fmt.Sprintf("SYN reuses client port %d within %s of the previous connection's close (TIME_WAIT)", c.TCP.Client.Port(), cfg.ReuseWindow)))
		}
	}
	f.Confidence = confidence(in.capture(), p.conns...).with(reasons...)
	f.Remedy = churnRemedy(s)
	return f, true
}

func churnRemedy(s churnStats) string {
	var b strings.Builder
	if s.closeReq[0] > 0 && s.closeReq[0] >= s.closeReq[1] {
		b.WriteString("The client asks to close (Connection: close): in Go that is http.Transport.DisableKeepAlives=true or Request.Close=true; turn both off. ")
	} else if s.closeReq[1] > s.closeReq[0] {
		b.WriteString("The server asks to close: enable keep-alives on it (Go http.Server.SetKeepAlivesEnabled(true), no Connection: close in handlers; nginx keepalive_timeout > 0 and a higher keepalive_requests; Envoy max_requests_per_connection unset or higher). ")
	}
	b.WriteString("Reuse connections: one shared http.Client/http.Transport per destination with keep-alives on (Transport.DisableKeepAlives=false, no req.Close), MaxIdleConnsPerHost above the request concurrency (the default is 2), IdleConnTimeout long enough for the request rate; always read resp.Body to EOF and Close it (an undrained body prevents reuse). ")
	b.WriteString("Behind a proxy: nginx upstream keepalive N with proxy_http_version 1.1 and proxy_set_header Connection \"\"; Envoy max_requests_per_connection. ")
	b.WriteString("If churn cannot be avoided, let the client not hold TIME_WAIT (server closes first) and widen net.ipv4.ip_local_port_range.")
	return b.String()
}
