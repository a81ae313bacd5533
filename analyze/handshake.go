package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// HandshakeLatencyConfig holds the handshake_latency thresholds.
type HandshakeLatencyConfig struct {
	// Factor is how many times the capture baseline (median) a handshake
	// must take, and MADs how many median absolute deviations above it,
	// to be slow; MinLatency is an absolute floor below which nothing is
	// slow; MinSamples the fewest handshakes that make a baseline.
	Factor     float64
	MADs       float64
	MinLatency time.Duration
	MinSamples int
	// CriticalLatency makes the finding critical when the slowest
	// handshake takes at least this long.
	CriticalLatency time.Duration
	// SlowBaseline is the median at or above which uniformly slow
	// handshakes (no outlier) are reported, as info.
	SlowBaseline time.Duration
}

func defaultHandshakeLatency() HandshakeLatencyConfig {
	return HandshakeLatencyConfig{Factor: 3, MADs: 5, MinLatency: 200 * time.Millisecond, MinSamples: 5,
		CriticalLatency: time.Second, SlowBaseline: 200 * time.Millisecond}
}

func (c *HandshakeLatencyConfig) flags(fs *flag.FlagSet) {
	fs.Float64Var(&c.Factor, "handshake-factor", c.Factor, "handshake_latency: times the median handshake a slow one takes")
	fs.Float64Var(&c.MADs, "handshake-mads", c.MADs, "handshake_latency: median absolute deviations above the median a slow one takes")
	fs.DurationVar(&c.MinLatency, "handshake-min", c.MinLatency, "handshake_latency: handshakes faster than this are never slow")
	fs.IntVar(&c.MinSamples, "handshake-min-samples", c.MinSamples, "handshake_latency: fewest handshakes that make a baseline")
	fs.DurationVar(&c.CriticalLatency, "handshake-critical", c.CriticalLatency, "handshake_latency: slowest handshake that makes it critical")
	fs.DurationVar(&c.SlowBaseline, "handshake-slow-baseline", c.SlowBaseline, "handshake_latency: median at which uniformly slow handshakes are reported (info)")
}

// hsSample is one handshake's duration on a connection.
type hsSample struct {
	c     *Conn
	ms    float64
	start event.Ref  // SYN or ClientHello
	reply *event.Ref // SYN-ACK or ServerHello
	// synackRetx is the server's retransmitted SYN-ACK when the first
	// one was lost (the handshake waited for the server's timeout).
	synackRetx *event.Ref
}

// detectHandshakeLatency reports handshakes far slower than the capture's
// own baseline.
//
// Signals: the TCP handshake time of each connection (tcp.Conn
// HandshakeRTTMS: last SYN to the ACK completing the handshake) and the
// TLS handshake time (App.TLS.HandshakeMS: ClientHello to the client's
// Finished). Per layer and server address (ip:port), with at least
// MinSamples handshakes, the baseline is the median and the median
// absolute deviation (MAD, unscaled) over that server's connections; a
// handshake is slow above max(Factor×median, median + MADs×MAD,
// MinLatency). A TCP handshake whose server had to retransmit its
// SYN-ACK (copies at least 200 ms apart: the first SYN-ACK or the
// client's ACK was lost) and that took MinLatency or more is slow
// whatever the baseline: it waited for the server's retransmission
// timeout. One finding per layer and server lists the slow connections
// (evidence: their SYN or ClientHello, the SYN-ACK or ServerHello, the
// retransmitted SYN-ACK), a warning, critical when the slowest takes
// CriticalLatency or more.
//
// False positives avoided: too few handshakes to one server for a
// baseline; handshakes to different servers, which differ by the
// path's round trip and the server's work, not by an incident (a
// browser session's 230 ms TLS handshake to a distant site against a
// 70 ms median over nearby ones, or one connection of a merged capture
// to another network); fast
// handshakes on a quiet loopback capture where a fraction of a
// millisecond is many MADs, and outliers of about a hundred milliseconds
// that no user notices (MinLatency, 200 ms: a 108 ms TLS handshake
// against a 10 ms median on the shared corpus is not an incident);
// uniformly slow handshakes, which
// are the network's round trip and not an outlier — reported as info
// when the median reaches SlowBaseline; TCP handshakes that needed a SYN
// retransmission (syn_retransmit reports those; they are left out of
// the baseline too).
//
// Metrics: server, samples, median_ms, mad_ms, threshold_ms, slow,
// slowest_ms, excluded_syn_retransmit and synack_retransmitted (TCP); for TLS the slowest handshake's
// client_hello_to_server_hello_ms and server_hello_to_finished_ms, which
// tell server-side delay from client-side.
func detectHandshakeLatency(in *Input, cfg HandshakeLatencyConfig) []Finding {
	tcpS, tlsS := map[netip.AddrPort][]hsSample{}, map[netip.AddrPort][]hsSample{}
	excluded := map[netip.AddrPort]int{}
	for _, c := range in.Conns {
		srv := c.Server()
		t := c.TCP
		if t.HandshakeRTTMS != nil && len(c.SYNs) > 0 {
			if synRetried(c) {
				excluded[srv]++
			} else {
				s := hsSample{c: c, ms: *t.HandshakeRTTMS, start: c.SYNs[len(c.SYNs)-1]}
				if len(c.SYNACKs) > 0 {
					s.reply = &c.SYNACKs[0]
				}
				for i := 1; i < len(c.SYNACKs); i++ {
					if c.SYNACKs[i].TS.Sub(c.SYNACKs[i-1].TS) >= 200*time.Millisecond {
						s.synackRetx = &c.SYNACKs[i]
						break
					}
				}
				tcpS[srv] = append(tcpS[srv], s)
			}
		}
		if c.App != nil && c.App.TLS != nil && c.App.TLS.HandshakeMS != nil && c.App.TLS.Timing.ClientHello != nil {
			tl := c.App.TLS
			tlsS[srv] = append(tlsS[srv], hsSample{c: c, ms: *tl.HandshakeMS, start: *tl.Timing.ClientHello, reply: tl.Timing.ServerHello})
		}
	}
	var out []Finding
	for _, srv := range sortedAddrPorts(tcpS) {
		if f, ok := hsFinding(in, cfg, "TCP", srv, tcpS[srv], excluded[srv]); ok {
			out = append(out, f)
		}
	}
	for _, srv := range sortedAddrPorts(tlsS) {
		if f, ok := hsFinding(in, cfg, "TLS", srv, tlsS[srv], 0); ok {
			out = append(out, f)
		}
	}
	return out
}

// synRetried reports whether c's handshake needed a SYN retransmission
// (SYNs at least 200 ms apart; closer copies are capture duplicates).
func synRetried(c *Conn) bool {
	for i := 1; i < len(c.SYNs); i++ {
		if c.SYNs[i].TS.Sub(c.SYNs[i-1].TS) >= 200*time.Millisecond {
			return true
		}
	}
	return false
}

// hsFinding builds the finding of one layer's handshakes ss to server
// srv.
func hsFinding(in *Input, cfg HandshakeLatencyConfig, layer string, srv netip.AddrPort, ss []hsSample, excluded int) (Finding, bool) {
	lost := func(s hsSample) bool { return s.synackRetx != nil && s.ms >= ms(cfg.MinLatency) }
	baseline := len(ss) >= max(cfg.MinSamples, 1)
	if !baseline && !slices.ContainsFunc(ss, lost) {
		return Finding{}, false
	}
	vals := make([]float64, len(ss))
	for i, s := range ss {
		vals[i] = s.ms
	}
	med := medianOf(slices.Clone(vals))
	dev := make([]float64, len(vals))
	for i, v := range vals {
		dev[i] = math.Abs(v - med)
	}
	mad := medianOf(dev)
	threshold := max(cfg.Factor*med, med+cfg.MADs*mad, ms(cfg.MinLatency))
	var slow []hsSample
	for _, s := range ss {
		if baseline && s.ms > threshold || lost(s) {
			slow = append(slow, s)
		}
	}
	slices.SortStableFunc(slow, func(a, b hsSample) int { return cmp.Compare(b.ms, a.ms) })
	m := map[string]any{
		"samples":      len(ss),
		"median_ms":    roundTo(med, 3),
		"mad_ms":       roundTo(mad, 3),
		"threshold_ms": roundTo(threshold, 3),
		"slow":         len(slow),
		"server":       srv.String(),
	}
	if layer == "TCP" && excluded > 0 {
		m["excluded_syn_retransmit"] = excluded
	}
	f := Finding{Kind: KindHandshakeLatency, Metrics: m}
	if len(slow) == 0 {
		// Uniformly slow: the network, not an outlier.
		if med < ms(cfg.SlowBaseline) {
			return Finding{}, false
		}
		f.Severity = Info
		f.Summary = fmt.Sprintf("All %d %s handshakes to %s are slow alike (median %s, MAD %s): the network's round trip, not an outlier",
			len(ss), layer, srv, fmtMS(med), fmtMS(mad))
		slices.SortStableFunc(ss, func(a, b hsSample) int { return cmp.Compare(b.ms, a.ms) })
		for _, s := range ss[:min(len(ss), 3)] {
			f.Connections = append(f.Connections, s.c.ID())
			f.Evidence = append(f.Evidence, evidence(s.c.ID(), 0, s.start, fmt.Sprintf("%s handshake starts; it takes %s", layer, fmtMS(s.ms))))
		}
		f.Confidence = confidence(in.capture())
		f.Remedy = "Handshakes are uniformly slow, as the path's round-trip time: serve clients from a nearer region " +
			"(geographic routing, CDN or edge termination), and avoid new handshakes — reuse connections " +
			"(http.Transport.MaxIdleConnsPerHost, IdleConnTimeout) and TLS session resumption (tls.Config.ClientSessionCache)."
		return f, true
	}
	f.Severity = Warning
	top := slow[0]
	if top.ms >= ms(cfg.CriticalLatency) {
		f.Severity = Critical
	}
	m["slowest_ms"] = roundTo(top.ms, 3)
	conns := make([]*Conn, 0, len(slow))
	for _, s := range slow {
		conns = append(conns, s.c)
		f.Connections = append(f.Connections, s.c.ID())
		if len(f.Evidence) >= maxEvidence {
			continue
		}
		start, reply := "client SYN", "server SYN-ACK"
		if layer == "TLS" {
			start, reply = "ClientHello", "ServerHello"
		}
		f.Evidence = append(f.Evidence, evidence(s.c.ID(), 0, s.start,
			fmt.Sprintf("%s; the %s handshake takes %s against a median of %s", start, layer, fmtMS(s.ms), fmtMS(med))))
		if s.reply != nil {
			f.Evidence = append(f.Evidence, evidence(s.c.ID(), 0, *s.reply,
				fmt.Sprintf("%s %s after the %s", reply, fmtDur(s.reply.TS.Sub(s.start.TS)), start)))
		}
		if s.synackRetx != nil {
			f.Evidence = append(f.Evidence, evidence(s.c.ID(), 0, *s.synackRetx,
				fmt.Sprintf("server SYN-ACK retransmitted %s after the client SYN: the first one or the client's ACK was lost", fmtDur(s.synackRetx.TS.Sub(s.start.TS)))))
		}
	}
	if lostN := len(slices.DeleteFunc(slices.Clone(slow), func(s hsSample) bool { return !lost(s) })); lostN > 0 {
		m["synack_retransmitted"] = lostN
	}
	if layer == "TLS" {
		d := top.c.App.TLS.Durations
		if d.ClientHelloToServerHello != nil {
			m["client_hello_to_server_hello_ms"] = roundTo(*d.ClientHelloToServerHello, 3)
		}
		if d.ServerHelloToFinished != nil {
			m["server_hello_to_finished_ms"] = roundTo(*d.ServerHelloToFinished, 3)
		}
	}
	if baseline {
		f.Summary = fmt.Sprintf("%d of %d %s handshakes to %s took over %s (slowest %s on connection %d) against a median of %s",
			len(slow), len(ss), layer, srv, fmtMS(threshold), fmtMS(top.ms), top.c.ID(), fmtMS(med))
	} else {
		f.Summary = fmt.Sprintf("%d %s handshake(s) to %s waited for a retransmitted SYN-ACK (slowest %s on connection %d)",
			len(slow), layer, srv, fmtMS(top.ms), top.c.ID())
	}
	f.Confidence = confidence(in.capture(), conns...)
	if layer == "TCP" {
		f.Remedy = "Slow SYN→SYN-ACK→ACK against a fast baseline: the server's accept queue or CPU (net.core.somaxconn, " +
			"net.ipv4.tcp_max_syn_backlog, a busy accept loop), a load balancer or conntrack table under pressure, or a " +
			"longer path for those clients (geographic routing, anycast); compare the slow connections' addresses and times."
	} else {
		f.Remedy = "Slow TLS handshakes against a fast baseline: server CPU for key exchange and signatures (ECDSA " +
			"certificates, X25519), no session resumption (Go clients: tls.Config.ClientSessionCache; servers: keep " +
			"session tickets on, tls.Config.SessionTicketsDisabled false), OCSP fetched by clients instead of stapled " +
			"(tls.Certificate.OCSPStaple, nginx ssl_stapling), a long certificate chain, or a distant server " +
			"(geographic routing). ClientHello→ServerHello delay is the server's; ServerHello→Finished mostly the client's."
	}
	return f, true
}
