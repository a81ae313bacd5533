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
	// handshake takes at least this long; 0 (the default) never does:
	// latency is a cost, a warning, by the severity rule.
	CriticalLatency time.Duration
	// SlowBaseline is the median at or above which uniformly slow
	// handshakes (no outlier) are reported, as info.
	SlowBaseline time.Duration
}

func defaultHandshakeLatency() HandshakeLatencyConfig {
	return HandshakeLatencyConfig{Factor: 3, MADs: 5, MinLatency: 200 * time.Millisecond, MinSamples: 5,
		SlowBaseline: 200 * time.Millisecond}
}

func (c *HandshakeLatencyConfig) flags(fs *flag.FlagSet) {
	fs.Float64Var(&c.Factor, "handshake-factor", c.Factor, "handshake_latency: times the median handshake a slow one takes")
	fs.Float64Var(&c.MADs, "handshake-mads", c.MADs, "handshake_latency: median absolute deviations above the median a slow one takes")
	fs.DurationVar(&c.MinLatency, "handshake-min", c.MinLatency, "handshake_latency: handshakes faster than this are never slow")
	fs.IntVar(&c.MinSamples, "handshake-min-samples", c.MinSamples, "handshake_latency: fewest handshakes that make a baseline")
	fs.DurationVar(&c.CriticalLatency, "handshake-critical", c.CriticalLatency, "handshake_latency: slowest handshake that makes it critical (0, the default: never; latency is a cost, a warning, by the severity rule)")
	fs.DurationVar(&c.SlowBaseline, "handshake-slow-baseline", c.SlowBaseline, "handshake_latency: median at which uniformly slow handshakes are reported (info)")
}

// hsSample is one handshake's duration on a connection: what
// handshake_latency keeps of it.
type hsSample struct {
	id    event.ConnID
	ms    float64
	start event.Ref // SYN or ClientHello
	// reply is the SYN-ACK or ServerHello (Frame 0: none); synackRetx a
	// retransmitted SYN-ACK (TCP; Frame 0: none).
	reply, synackRetx event.Ref
	reasons           connReasons
	// chToSH and shToFin are the TLS handshake's ClientHello to
	// ServerHello and ServerHello to Finished times (NaN: unknown).
	chToSH, shToFin float64
	// serverSide marks a TCP handshake whose SYN-ACK the server sent
	// again after the client's ACK and first data: ms runs to that
	// SYN-ACK.
	serverSide bool
}

// clientDataAt returns when the client first sent data on c: its first
// request, or its ClientHello.
func clientDataAt(c *Conn) (time.Time, bool) {
	var at time.Time
	if c.sum != nil && c.sum.first.ok {
		at = c.sum.first.ref.TS
	}
	if c.App != nil && c.App.TLS != nil && c.App.TLS.Timing.ClientHello != nil {
		if ch := c.App.TLS.Timing.ClientHello.TS; at.IsZero() || ch.Before(at) {
			at = ch
		}
	}
	return at, !at.IsZero()
}

// detectHandshakeLatency reports handshakes far slower than the capture's
// own baseline.
//
// Signals: the TCP handshake time of each connection (tcp.Conn
// HandshakeRTTMS: last SYN to the ACK completing the handshake; when the
// server sent its SYN-ACK again after the client's ACK and first data,
// it had taken neither — a full accept queue drops them — and the
// handshake lasted, on its side, at least to its last SYN-ACK) and the
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
// retransmitted SYN-ACK), a warning (critical when the slowest takes
// CriticalLatency or more, if set).
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
//
// Memory: per layer and server, every handshake's sample up to hsExact;
// past that a quantile sketch of the durations (relative error
// sketchAlpha), the hsTop slowest samples and the first hsTop whose
// SYN-ACK was retransmitted, and the finding says which figures are
// estimates.
type handshakeFold struct {
	cfg HandshakeLatencyConfig
	// sets holds the samples per layer (0 TCP, 1 TLS) and server;
	// excluded the TCP handshakes left out after a SYN retransmission.
	sets     [2]map[netip.AddrPort]*hsSet
	excluded map[netip.AddrPort]int
}

func newHandshakeFold(cfg HandshakeLatencyConfig) *handshakeFold {
	return &handshakeFold{cfg: cfg, sets: [2]map[netip.AddrPort]*hsSet{{}, {}}, excluded: map[netip.AddrPort]int{}}
}

func (d *handshakeFold) observe(*Conn) {}

func (d *handshakeFold) final(c *Conn) {
	srv := c.Server()
	t := c.TCP
	nan := math.NaN()
	if t.HandshakeRTTMS != nil && len(c.SYNs) > 0 {
		if synRetried(c) {
			d.excluded[srv]++
		} else {
			s := hsSample{id: c.ID(), ms: *t.HandshakeRTTMS, start: c.SYNs[len(c.SYNs)-1], reasons: reasonsOf(c), chToSH: nan, shToFin: nan}
			if len(c.SYNACKs) > 0 {
				s.reply = c.SYNACKs[0]
			}
			for i := 1; i < len(c.SYNACKs); i++ {
				if c.SYNACKs[i].TS.Sub(c.SYNACKs[i-1].TS) >= 200*time.Millisecond {
					s.synackRetx = c.SYNACKs[i]
					break
				}
			}
			// A SYN-ACK sent again after the client had acknowledged
			// the first and written its request: the server had taken
			// neither (a full accept queue drops them), so its side of
			// the handshake lasted at least until that SYN-ACK, however
			// fast the client's ACK came.
			if s.synackRetx.Frame != 0 {
				last := c.SYNACKs[len(c.SYNACKs)-1]
				if at, ok := clientDataAt(c); ok && at.Before(s.synackRetx.TS) {
					s.ms = max(s.ms, ms(last.TS.Sub(s.start.TS)))
					s.serverSide = true
				}
			}
			d.set(0, srv).add(d.cfg, s)
		}
	}
	if c.App != nil && c.App.TLS != nil && c.App.TLS.HandshakeMS != nil && c.App.TLS.Timing.ClientHello != nil {
		tl := c.App.TLS
		s := hsSample{id: c.ID(), ms: *tl.HandshakeMS, start: *tl.Timing.ClientHello, reasons: reasonsOf(c), chToSH: nan, shToFin: nan}
		if tl.Timing.ServerHello != nil {
			s.reply = *tl.Timing.ServerHello
		}
		if v := tl.Durations.ClientHelloToServerHello; v != nil {
			s.chToSH = *v
		}
		if v := tl.Durations.ServerHelloToFinished; v != nil {
			s.shToFin = *v
		}
		d.set(1, srv).add(d.cfg, s)
	}
}

func (d *handshakeFold) set(layer int, srv netip.AddrPort) *hsSet {
	s := d.sets[layer][srv]
	if s == nil {
		s = &hsSet{}
		d.sets[layer][srv] = s
	}
	return s
}

func (d *handshakeFold) merge(o detector) {
	od := o.(*handshakeFold)
	for layer := range d.sets {
		for srv, os := range od.sets[layer] {
			d.set(layer, srv).merge(d.cfg, os)
		}
	}
	for srv, n := range od.excluded {
		d.excluded[srv] += n
	}
}

func (d *handshakeFold) findings(in *capture) []Finding {
	var out []Finding
	for layer, name := range []string{"TCP", "TLS"} {
		for _, srv := range sortedAddrPorts(d.sets[layer]) {
			excluded := 0
			if layer == 0 {
				excluded = d.excluded[srv]
			}
			if f, ok := hsFinding(in, d.cfg, name, srv, d.sets[layer][srv], excluded); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

// Bounds of an hsSet.
const (
	// hsExact is the most samples kept, all of them, for an exact
	// median and MAD.
	hsExact = 4096
	// hsTop is how many of the slowest samples, and of those whose
	// SYN-ACK was retransmitted, a sketched set keeps.
	hsTop = 64
)

// hsSet is one layer's handshakes to one server: every sample (exact)
// up to hsExact, then a sketch of the durations and the samples that can
// be slow.
type hsSet struct {
	exact  []hsSample
	n      int
	sketch *quantileSketch
	// top holds the hsTop slowest samples; lost the first hsTop (by
	// id) of the retransmitted SYN-ACKs, lostN counting them all.
	top   []hsSample
	lost  []hsSample
	lostN int
	// reasons are those of every sample.
	reasons connReasons
}

// lost reports whether s waited for a retransmitted SYN-ACK.
func (s *hsSample) lost(cfg HandshakeLatencyConfig) bool {
	return s.synackRetx.Frame != 0 && s.ms >= ms(cfg.MinLatency)
}

// slower orders samples slowest first, then by connection id.
func slower(a, b hsSample) int { return cmp.Or(cmp.Compare(b.ms, a.ms), cmp.Compare(a.id, b.id)) }

func (s *hsSet) add(cfg HandshakeLatencyConfig, v hsSample) {
	s.n++
	if s.sketch == nil {
		s.exact = append(s.exact, v)
		if len(s.exact) > hsExact {
			s.toSketch(cfg)
		}
		return
	}
	s.sketchAdd(cfg, v)
}

// toSketch turns an exact set into a sketched one.
func (s *hsSet) toSketch(cfg HandshakeLatencyConfig) {
	s.sketch = &quantileSketch{}
	ex := s.exact
	s.exact = nil
	for _, v := range ex {
		s.sketchAdd(cfg, v)
	}
}

func (s *hsSet) sketchAdd(cfg HandshakeLatencyConfig, v hsSample) {
	s.sketch.add(v.ms)
	s.reasons |= v.reasons
	s.top, _ = trimLowest(append(s.top, v), hsTop, slower)
	if v.lost(cfg) {
		s.lostN++
		s.lost = append(s.lost, v)
		if len(s.lost) >= 2*hsTop {
			slices.SortFunc(s.lost, func(a, b hsSample) int { return cmp.Compare(a.id, b.id) })
			s.lost = s.lost[:hsTop]
		}
	}
}

func (s *hsSet) merge(cfg HandshakeLatencyConfig, o *hsSet) {
	if s.sketch == nil && o.sketch == nil {
		s.n += o.n
		s.exact = append(s.exact, o.exact...)
		if len(s.exact) > hsExact {
			s.toSketch(cfg)
		}
		return
	}
	if s.sketch == nil {
		s.toSketch(cfg)
	}
	if o.sketch == nil {
		o.toSketch(cfg)
	}
	s.n += o.n
	s.sketch.merge(o.sketch)
	s.reasons |= o.reasons
	s.top = append(s.top, o.top...)
	slices.SortFunc(s.top, slower)
	s.top = s.top[:min(len(s.top), hsTop)]
	s.lostN += o.lostN
	s.lost = append(s.lost, o.lost...)
	slices.SortFunc(s.lost, func(a, b hsSample) int { return cmp.Compare(a.id, b.id) })
	s.lost = s.lost[:min(len(s.lost), hsTop)]
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
func hsFinding(in *capture, cfg HandshakeLatencyConfig, layer string, srv netip.AddrPort, set *hsSet, excluded int) (Finding, bool) {
	lost := func(s hsSample) bool { return s.lost(cfg) }
	n := set.n
	baseline := n >= max(cfg.MinSamples, 1)
	// The samples that may be slow: all of them, or the slowest and
	// the retransmitted SYN-ACKs of a sketched set.
	ss := set.exact
	if set.sketch != nil {
		ss = slices.Clone(set.top)
		for _, v := range set.lost {
			if !slices.ContainsFunc(ss, func(x hsSample) bool { return x.id == v.id }) {
				ss = append(ss, v)
			}
		}
	}
	slices.SortFunc(ss, func(a, b hsSample) int { return cmp.Compare(a.id, b.id) })
	if !baseline && !slices.ContainsFunc(ss, lost) {
		return Finding{}, false
	}
	var med, mad float64
	if set.sketch == nil {
		vals := make([]float64, len(ss))
		for i, s := range ss {
			vals[i] = s.ms
		}
		med = medianOf(slices.Clone(vals))
		dev := make([]float64, len(vals))
		for i, v := range vals {
			dev[i] = math.Abs(v - med)
		}
		mad = medianOf(dev)
	} else {
		med, mad = set.sketch.median(), set.sketch.mad()
	}
	threshold := max(cfg.Factor*med, med+cfg.MADs*mad, ms(cfg.MinLatency))
	var slow []hsSample
	for _, s := range ss {
		if baseline && s.ms > threshold || lost(s) {
			slow = append(slow, s)
		}
	}
	slices.SortStableFunc(slow, func(a, b hsSample) int { return cmp.Compare(b.ms, a.ms) })
	nSlow := len(slow)
	if set.sketch != nil && baseline {
		// Those above the threshold (estimated) and the retransmitted
		// SYN-ACKs at or below it (as far as kept).
		nSlow = set.sketch.countAbove(threshold)
		for _, s := range set.lost {
			if s.ms <= threshold {
				nSlow++
			}
		}
		nSlow = max(nSlow, len(slow))
	}
	m := map[string]any{
		"samples":      n,
		"median_ms":    roundTo(med, 3),
		"mad_ms":       roundTo(mad, 3),
		"threshold_ms": roundTo(threshold, 3),
		"slow":         nSlow,
		"server":       srv.String(),
	}
	if set.sketch != nil {
		m["estimated"] = fmt.Sprintf("median_ms, mad_ms, threshold_ms and slow are estimated from a quantile sketch of the %d handshakes (relative error at most %g%%); connections and evidence name the %d slowest", n, 100*sketchAlpha, hsTop)
	}
	if layer == "TCP" && excluded > 0 {
		m["excluded_syn_retransmit"] = excluded
	}
	f := Finding{Kind: KindHandshakeLatency, Metrics: m, Cause: CauseTCPHandshake}
	if layer == "TLS" {
		f.Cause = CauseTLSHandshake
	}
	if len(slow) == 0 {
		if med < ms(cfg.SlowBaseline) {
			return Finding{}, false
		}
		f.Severity = Info
		f.Summary = fmt.Sprintf("All %d %s handshakes to %s are slow alike (median %s, MAD %s): the network's round trip, not an outlier",
			n, layer, srv, fmtMS(med), fmtMS(mad))
		slices.SortStableFunc(ss, func(a, b hsSample) int { return cmp.Compare(b.ms, a.ms) })
		for _, s := range ss[:min(len(ss), 3)] {
			f.Connections = append(f.Connections, s.id)
			f.Evidence = append(f.Evidence, evidence(s.id, 0, s.start, fmt.Sprintf("%s handshake starts; it takes %s", layer, fmtMS(s.ms))))
		}
		f.Confidence = confidenceOf(in)
		f.Remedy = "Handshakes are uniformly slow, as the path's round-trip time: serve clients from a nearer region " +
			"(geographic routing, CDN or edge termination), and avoid new handshakes — reuse connections " +
			"(http.Transport.MaxIdleConnsPerHost, IdleConnTimeout) and TLS session resumption (tls.Config.ClientSessionCache)."
		return f, true
	}
	f.Severity = Warning
	top := slow[0]
	if cfg.CriticalLatency > 0 && top.ms >= ms(cfg.CriticalLatency) {
		f.Severity = Critical
	}
	m["slowest_ms"] = roundTo(top.ms, 3)
	rs := make([]connReasons, 0, len(slow))
	for _, s := range slow {
		rs = append(rs, s.reasons)
		f.Connections = append(f.Connections, s.id)
		if len(f.Evidence) >= maxEvidence {
			continue
		}
		start, reply := "client SYN", "server SYN-ACK"
		if layer == "TLS" {
			start, reply = "ClientHello", "ServerHello"
		}
		f.Evidence = append(f.Evidence, evidence(s.id, 0, s.start,
			fmt.Sprintf("%s; the %s handshake takes %s against a median of %s", start, layer, fmtMS(s.ms), fmtMS(med))))
		if s.reply.Frame != 0 {
			f.Evidence = append(f.Evidence, evidence(s.id, 0, s.reply,
				fmt.Sprintf("%s %s after the %s", reply, fmtDur(s.reply.TS.Sub(s.start.TS)), start)))
		}
		switch {
		case s.serverSide:
			f.Evidence = append(f.Evidence, evidence(s.id, 0, s.synackRetx,
				fmt.Sprintf("server SYN-ACK retransmitted %s after the client SYN, after the client's ACK and first data: the "+
					"server had taken neither (a full accept queue drops them) and completed the handshake only later",
					fmtDur(s.synackRetx.TS.Sub(s.start.TS)))))
		case s.synackRetx.Frame != 0:
			f.Evidence = append(f.Evidence, evidence(s.id, 0, s.synackRetx,
				fmt.Sprintf("server SYN-ACK retransmitted %s after the client SYN: the first one or the client's ACK was lost", fmtDur(s.synackRetx.TS.Sub(s.start.TS)))))
		}
	}
	lostN := len(slices.DeleteFunc(slices.Clone(slow), func(s hsSample) bool { return !lost(s) }))
	if set.sketch != nil {
		lostN = set.lostN
	}
	if lostN > 0 {
		m["synack_retransmitted"] = lostN
	}
	if layer == "TLS" {
		if !math.IsNaN(top.chToSH) {
			m["client_hello_to_server_hello_ms"] = roundTo(top.chToSH, 3)
		}
		if !math.IsNaN(top.shToFin) {
			m["server_hello_to_finished_ms"] = roundTo(top.shToFin, 3)
		}
	}
	if baseline {
		f.Summary = fmt.Sprintf("%d of %d %s handshakes to %s took over %s (slowest %s on connection %s) against a median of %s",
			nSlow, n, layer, srv, fmtMS(threshold), fmtMS(top.ms), connText(top.id), fmtMS(med))
	} else {
		f.Summary = fmt.Sprintf("%d %s handshake(s) to %s waited for a retransmitted SYN-ACK (slowest %s on connection %s)",
			nSlow, layer, srv, fmtMS(top.ms), connText(top.id))
	}
	if set.sketch != nil {
		rs = append(rs, set.reasons)
	}
	f.Confidence = confidenceOf(in, rs...)
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
