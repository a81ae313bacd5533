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
)

// SYNRetransmitConfig holds the syn_retransmit thresholds.
type SYNRetransmitConfig struct {
	// CriticalAttempts is the number of failed or retried connection
	// attempts that makes the finding critical.
	CriticalAttempts int
	// MinRetryDelay is the shortest gap after the previous SYN for a SYN
	// to count as a retransmission; closer copies are the capture seeing
	// the same packet twice (no TCP stack retries a SYN that fast: the
	// initial RTO is 1 s, RFC 6298).
	MinRetryDelay time.Duration
	// Fallback is how soon after a refused attempt a connection to
	// another address on the same port makes the refusal a fallback
	// (Happy Eyeballs: IPv6 refused, IPv4 taken).
	Fallback time.Duration
	// ScanPorts is the number of distinct ports of one host a client
	// must try, none of those connections carrying payload, for its
	// attempts to that host to be a port scan and not reported.
	ScanPorts int
}

func defaultSYNRetransmit() SYNRetransmitConfig {
	return SYNRetransmitConfig{CriticalAttempts: 10, MinRetryDelay: 200 * time.Millisecond, Fallback: time.Second, ScanPorts: 5}
}

func (c *SYNRetransmitConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.CriticalAttempts, "syn-critical", c.CriticalAttempts, "syn_retransmit: failed or retried attempts that make it critical")
	fs.DurationVar(&c.MinRetryDelay, "syn-min-retry", c.MinRetryDelay, "syn_retransmit: shortest gap between SYNs counted as a retransmission (closer ones are capture duplicates)")
	fs.IntVar(&c.ScanPorts, "syn-scan-ports", c.ScanPorts, "syn_retransmit: distinct ports of one host, none carrying payload, that make a client's attempts a port scan (not reported)")
	fs.DurationVar(&c.Fallback, "syn-fallback", c.Fallback, "syn_retransmit: a refused attempt followed this soon by a connection to another address on the same port is a fallback")
}

// synAttempt is one connection attempt that needed retries or failed,
// or that may have failed (unanswered, decided at the end): what
// syn_retransmit keeps of it.
type synAttempt struct {
	id     event.ConnID
	client netip.Addr
	server netip.AddrPort
	// first is the first of the counted SYNs (capture duplicates left
	// out), rest the others, nil for a lone SYN: an attempt holds no
	// slice of a lone SYN's, which is the Conn's own storage (reused).
	first event.Ref
	rest  []event.Ref
	retx  int
	// refused: the server answered with RST alone; maybeUnanswered:
	// the server sent nothing, so it is unanswered unless the capture
	// ended too soon after it or is one-sided (decided at the end);
	// unanswer is that decision.
	refused, maybeUnanswered, unanswer bool
	rst                                event.Ref // the server's RST (refused)
	last                               time.Time // the connection's last frame
	fallback                           *fallbackConn
	connectMS                          float64   // first SYN to SYN-ACK, when it connected
	synack                             event.Ref // Frame 0: none
	reasons                            connReasons
	// pair is the client and server hosts' pairInfo, the one
	// synFold.pair returns for them until a merge (pairs are never
	// removed, and a client folded into a full map stays folded).
	pair *pairInfo
}

// lastSYN returns the attempt's last counted SYN.
func (a *synAttempt) lastSYN() event.Ref {
	if n := len(a.rest); n > 0 {
		return a.rest[n-1]
	}
	return a.first
}

// fallbackConn is a connection that got a SYN-ACK, as a fallback after a
// refused attempt.
type fallbackConn struct {
	id     event.ConnID
	server netip.AddrPort
	first  time.Time
}

// synACKAfter returns the first SYN-ACK at or after the last SYN, the one
// that answered the retries (a SYN-ACK before it never reached the
// client), or the last SYN-ACK when none follows it.
func synACKAfter(synacks []event.Ref, last event.Ref) event.Ref {
	for _, s := range synacks {
		if s.Frame >= last.Frame {
			return s
		}
	}
	return synacks[len(synacks)-1]
}

// synFold reports connection attempts that needed SYN
// retransmissions, were refused or were never answered.
//
// Signal: per connection whose client SYN was seen (Conn.SYNs, the TCP
// summary's SYN and SYN-ACK counts, the server's RST): a retried attempt
// has more than one SYN (copies closer than MinRetryDelay are the capture
// duplicating a packet and are left out); a refused one got a RST from
// the server and no SYN-ACK; an unanswered one got nothing back at all
// (Zeek conn_state S0) and the client sent nothing after its SYNs. Attempts are grouped per server address
// (ip:port), one finding per server with evidence per attempt (its SYNs,
// the RST, the SYN-ACK that finally came). Critical when a connect
// failed (refused and not followed by a fallback, or unanswered: the
// request behind it failed) or from CriticalAttempts attempts; else a
// warning (retries that connected cost latency), info when every
// attempt was a refusal followed by a fallback.
//
// False positives avoided: duplicated SYNs with (nearly) the same
// timestamp; connections whose SYN-ACK the capture missed but whose
// server sent data, or whose client went on to send ACKs, data or a FIN
// (it only does after a SYN-ACK: the capture holds one direction, or
// lost the answer); a single unanswered SYN less than the first
// retransmission timeout (1 s) before the end of the capture — the
// answer may simply not have been captured (a capture of 200 SYNs in
// 0.2 s says nothing about answers); a single unanswered SYN (no retry)
// from a client to a host from which the capture holds no packet to that
// client on any connection — a one-sided capture cannot show answers;
// port scans: attempts by a client that tried at least ScanPorts
// distinct ports of one host, none of those connections carrying
// payload (nmap, a port checker), are probes and not reported; a refused attempt followed
// within Fallback by a connection to another address of the same port
// (Happy Eyeballs, localhost ::1 then 127.0.0.1) is info only when every
// attempt to that server was such a fallback.
//
// Metrics: attempts, retransmitted_syns, refused, unanswered,
// connected_after_retry, fallbacks, failed_connects (refused without a
// fallback, and unanswered), max_retries, first_retry_delay_ms
// (median gap from the first SYN to its first retransmission),
// max_connect_delay_ms (first SYN to SYN-ACK of a retried attempt that
// connected).
//
// Memory: the end of the capture; per (client host, server host) pair
// the server ports tried (up to ScanPorts), whether any carried payload
// and whether the server spoke, for up to synMaxPairs pairs (later
// clients fold into one pair per server host); per server the attempts
// that may count, the first synKeep by id (later ones are decided when
// they finish and tallied: the finding then says so); per server port
// the first synKeep connections that got a SYN-ACK, as fallbacks.
type synFold struct {
	cfg       SYNRetransmitConfig
	end       time.Time
	pairs     map[hostPair]*pairInfo
	servers   map[netip.AddrPort]*synServer
	lastPair  lastEntry[hostPair, pairInfo]        // pairs'
	lastSrv   lastEntry[netip.AddrPort, synServer] // servers'
	connected map[uint16][]fallbackConn
	// merged is set once another fold was merged in: the attempts'
	// pair pointers may then be another fold's, and pairs are looked
	// up again.
	merged bool
}

// Bounds of synFold.
const (
	synKeep     = 4096
	synMaxPairs = 10000
)

// hostPair is a client and a server host.
type hostPair struct{ client, server netip.Addr }

// pairInfo is what syn_retransmit knows of a host pair.
type pairInfo struct {
	ports       []uint16 // distinct, at most ScanPorts
	payload     bool
	serverSpoke bool
}

// synServer is what syn_retransmit keeps per server.
type synServer struct {
	as []synAttempt
	// unsorted is set when as may be out of order by id (add).
	unsorted bool
	// over tallies the attempts past the first synKeep, each decided
	// when it finished.
	over *synTally
}

// synTally counts attempts.
type synTally struct {
	attempts, retx, refused, unanswered, connected, maxRetries int
	maxConnect                                                 float64
	reasons                                                    connReasons
}

func newSYNFold(cfg SYNRetransmitConfig) *synFold {
	return &synFold{cfg: cfg, pairs: map[hostPair]*pairInfo{}, servers: map[netip.AddrPort]*synServer{}, connected: map[uint16][]fallbackConn{}}
}

func (d *synFold) observe(*Conn) {}

// pair returns the pair of client and server, nil when none: past
// synMaxPairs pairs, that of the server host and any client.
//
// c, when not nil, is the connection being finalised, client its own: a
// full map skips the lookup of the pair when c.newClient says it cannot
// be there, and c.ownsKey is set when the pair is added.
func (d *synFold) pair(client, server netip.Addr, create bool, c *Conn) *pairInfo {
	k := hostPair{client, server}
	full := len(d.pairs) >= synMaxPairs
	if !full || c == nil || !c.newClient {
		if p := d.lastPair.get(d.pairs, k); p != nil {
			return p
		}
	}
	if full {
		k.client = netip.Addr{}
		if p := d.lastPair.get(d.pairs, k); p != nil || !create {
			return p
		}
	}
	if !create {
		return nil
	}
	p := &pairInfo{}
	d.lastPair.set(d.pairs, k, p)
	if c != nil && !full {
		c.ownsKey = true
	}
	return p
}

func (p *pairInfo) addPort(port uint16, limit int) {
	if len(p.ports) < max(limit, 1) && !slices.Contains(p.ports, port) {
		p.ports = append(p.ports, port)
	}
}

func (d *synFold) final(c *Conn) {
	t := c.TCP
	if t.LastTS.After(d.end) {
		d.end = t.LastTS
	}
	p := d.pair(c.Client(), c.Server().Addr(), true, c)
	p.addPort(c.Server().Port(), d.cfg.ScanPorts)
	p.payload = p.payload || t.Bytes.C2S > 0 || t.Bytes.S2C > 0
	p.serverSpoke = p.serverSpoke || t.Packets.S2C > 0
	if t.SYNACKs > 0 {
		port := c.Server().Port()
		d.connected[port], _ = trimLowest(append(d.connected[port], fallbackConn{c.ID(), c.Server(), t.FirstTS}), synKeep, byFallbackID)
	}
	if t.SYNs == 0 || t.ClientGuessed || len(c.SYNs) == 0 {
		return
	}
	a := synAttempt{id: c.ID(), client: c.Client(), server: c.Server(), last: t.LastTS, pair: p}
	syns := countedSYNs(c.SYNs, d.cfg.MinRetryDelay)
	a.first = syns[0]
	if len(syns) > 1 {
		a.rest = syns[1:] // more than one SYN: an array of their own
	}
	a.retx = len(a.rest)
	if t.SYNs > len(c.SYNs) && len(c.SYNs) > 1 {
		a.retx += t.SYNs - len(c.SYNs) // past the collector's bound
	}
	switch {
	case t.SYNACKs > 0:
	case c.RST[event.S2C] != nil && t.Bytes.S2C == 0:
		a.refused, a.rst = true, *c.RST[event.S2C]
	case t.Packets.C2S > uint64(t.SYNs):
	case t.Packets.S2C == 0:
		a.maybeUnanswered = true
	}
	if a.retx == 0 && !a.refused && !a.maybeUnanswered {
		return
	}
	if a.retx > 0 && t.SYNACKs > 0 && len(c.SYNACKs) > 0 {
		a.synack = synACKAfter(c.SYNACKs, a.lastSYN())
		a.connectMS = ms(a.synack.TS.Sub(a.first.TS))
	}
	a.reasons = reasonsOf(c)
	srv := d.lastSrv.get(d.servers, c.Server())
	if srv == nil {
		srv = &synServer{}
		d.lastSrv.set(d.servers, c.Server(), srv)
	}
	srv.add(d, a)
}

// countedSYNs returns syns without the capture's duplicates (a SYN
// closer than minGap after the previous one counted): syns itself,
// clipped, when there are none. An attempt keeps only the first of a
// lone SYN, which is the Conn's own storage, and shares the others,
// which are an array of their own that a finished connection never
// changes.
func countedSYNs(syns []event.Ref, minGap time.Duration) []event.Ref {
	for i := 1; i < len(syns); i++ {
		if syns[i].TS.Sub(syns[i-1].TS) >= minGap {
			continue
		}
		out := slices.Clone(syns[:i])
		for _, s := range syns[i+1:] {
			if s.TS.Sub(out[len(out)-1].TS) >= minGap {
				out = append(out, s)
			}
		}
		return out
	}
	return slices.Clip(syns)
}

func byFallbackID(a, b fallbackConn) int { return cmp.Compare(a.id, b.id) }

func byAttemptID(a, b synAttempt) int { return cmp.Compare(a.id, b.id) }

// add keeps a, or past synKeep attempts decides and tallies the latest.
func (s *synServer) add(d *synFold, as ...synAttempt) {
	for i := range as {
		if n := len(s.as); n > 0 && as[i].id < s.as[n-1].id {
			s.unsorted = true
		}
		s.as = append(s.as, as[i])
	}
	if len(s.as) >= 2*synKeep {
		s.cut(d)
	}
}

// cut sorts s's attempts by id and keeps the first synKeep, deciding and
// tallying the rest. A full sort: those tallied must be exactly those
// cut (keepLowest leaves copies of kept ones there when new ones sort
// below them).
func (s *synServer) cut(d *synFold) {
	// Connections mostly finish in order of id (a flood's always): then
	// the attempts are in order already, as add tells (sorting them,
	// 200 bytes each, was 5% of the analysis goroutine's time on a
	// million-SYN flood, and checking them 2%).
	if s.unsorted {
		slices.SortFunc(s.as, byAttemptID)
		s.unsorted = false
	}
	if len(s.as) <= synKeep {
		return
	}
	for i := range s.as[synKeep:] {
		d.tally(s, &s.as[synKeep+i])
	}
	// The array is reused for the next synKeep attempts: clipping it
	// made every round copy the kept ones into a new one (1.1 GB
	// allocated over a million-SYN flood).
	clear(s.as[synKeep:])
	s.as = s.as[:synKeep]
}

// decide decides whether a counts, as far as known, and whether it went
// unanswered.
func (d *synFold) decide(a *synAttempt) bool {
	pair := a.pair
	if pair == nil || d.merged {
		pair = d.pair(a.client, a.server.Addr(), false, nil)
	}
	if pair == nil {
		pair = &pairInfo{}
	}
	if d.cfg.ScanPorts > 0 && len(pair.ports) >= d.cfg.ScanPorts && !pair.payload {
		return false // a port scan's probe
	}
	a.unanswer = false
	if a.maybeUnanswered {
		last := a.lastSYN()
		if a.retx == 0 && d.end.Sub(last.TS) < time.Second {
			return false // the answer may have come after the capture ended
		}
		if a.retx == 0 && !pair.serverSpoke {
			return false // one-sided capture: answers would not show
		}
		a.unanswer = true
	}
	return a.retx > 0 || a.refused || a.unanswer
}

// tally decides a now and counts it in s.over.
func (d *synFold) tally(s *synServer, a *synAttempt) {
	if s.over == nil {
		s.over = &synTally{}
	}
	if !d.decide(a) {
		return
	}
	o := s.over
	o.attempts++
	o.retx += a.retx
	o.maxRetries = max(o.maxRetries, a.retx)
	switch {
	case a.refused:
		o.refused++
	case a.unanswer:
		o.unanswered++
	default:
		o.connected++
		o.maxConnect = max(o.maxConnect, a.connectMS)
	}
	o.reasons |= a.reasons
}

func (d *synFold) merge(o detector) {
	od := o.(*synFold)
	d.merged = true
	if od.end.After(d.end) {
		d.end = od.end
	}
	for k, op := range od.pairs {
		p := d.pairs[k]
		if p == nil {
			d.pairs[k] = op
			continue
		}
		for _, port := range op.ports {
			p.addPort(port, d.cfg.ScanPorts)
		}
		p.payload = p.payload || op.payload
		p.serverSpoke = p.serverSpoke || op.serverSpoke
	}
	for port, cs := range od.connected {
		for _, c := range cs {
			d.connected[port], _ = trimLowest(append(d.connected[port], c), synKeep, byFallbackID)
		}
	}
	for srv, os := range od.servers {
		s := d.servers[srv]
		if s == nil {
			d.servers[srv] = os
			continue
		}
		if os.over != nil {
			if s.over == nil {
				s.over = &synTally{}
			}
			s.over.merge(os.over)
		}
		s.add(d, os.as...)
	}
}

func (t *synTally) merge(o *synTally) {
	t.attempts += o.attempts
	t.retx += o.retx
	t.refused += o.refused
	t.unanswered += o.unanswered
	t.connected += o.connected
	t.maxRetries = max(t.maxRetries, o.maxRetries)
	t.maxConnect = max(t.maxConnect, o.maxConnect)
	t.reasons |= o.reasons
}

func (d *synFold) findings(in *capture) []Finding {
	var out []Finding
	for _, srv := range sortedAddrPorts(d.servers) {
		s := d.servers[srv]
		if s.over != nil {
			// Past synKeep, the first synKeep by id are listed and the
			// rest counted, whatever order the connections finished in
			// and however the fold was sharded (the attempts still
			// waiting for add's next cut would otherwise be listed
			// too: up to twice as many, and others in each order).
			s.cut(d)
		} else {
			slices.SortFunc(s.as, byAttemptID)
		}
		var as []synAttempt
		for i := range s.as {
			a := &s.as[i]
			if !d.decide(a) {
				continue
			}
			if a.refused {
				a.fallback = d.fallbackAfter(a, d.cfg.Fallback)
			}
			as = append(as, *a)
		}
		if len(as) == 0 && (s.over == nil || s.over.attempts == 0) {
			continue
		}
		out = append(out, synFinding(in, d.cfg, srv, as, s.over))
	}
	return out
}

// fallbackAfter returns the first connection (by id) to another address
// on a's server port that got a SYN-ACK and started within d after a's
// last frame.
func (s *synFold) fallbackAfter(a *synAttempt, d time.Duration) *fallbackConn {
	var best *fallbackConn
	for i, o := range s.connected[a.server.Port()] {
		if o.id == a.id || o.server.Addr() == a.server.Addr() {
			continue
		}
		if dt := o.first.Sub(a.last); dt >= 0 && dt <= d && (best == nil || o.id < best.id) {
			best = &s.connected[a.server.Port()][i]
		}
	}
	return best
}

// synFinding builds the finding for the attempts as to server srv.
func synFinding(in *capture, cfg SYNRetransmitConfig, srv netip.AddrPort, as []synAttempt, over *synTally) Finding {
	var retx, refused, unanswered, connected, fallbacks, maxRetries int
	var firstGaps []float64
	maxConnect := 0.0
	rs := make([]connReasons, 0, len(as)+1)
	f := Finding{Kind: KindSYNRetransmit, Severity: Warning}
	for i, a := range as {
		rs = append(rs, a.reasons)
		f.Connections = append(f.Connections, a.id)
		retx += a.retx
		maxRetries = max(maxRetries, a.retx)
		if len(a.rest) > 0 {
			firstGaps = append(firstGaps, ms(a.rest[0].TS.Sub(a.first.TS)))
		}
		switch {
		case a.refused:
			refused++
			if a.fallback != nil {
				fallbacks++
			}
		case a.unanswer:
			unanswered++
		default:
			connected++
			maxConnect = max(maxConnect, a.connectMS)
		}
		// Evidence, a few attempts in full.
		if i >= maxEvidence/4 {
			continue
		}
		id := a.id
		syns := append([]event.Ref{a.first}, a.rest...)
		for j, s := range syns {
			what := fmt.Sprintf("client SYN to %s", srv)
			if j > 0 {
				what = fmt.Sprintf("SYN retransmitted %s after the previous one (retry %d)", fmtDur(s.TS.Sub(syns[j-1].TS)), j)
			}
			f.Evidence = append(f.Evidence, evidence(id, 0, s, what))
		}
		switch {
		case a.refused:
			what := "server RST refuses the connection (nothing listening, or a firewall rejecting)"
			if a.fallback != nil {
				what += fmt.Sprintf("; the client then connected to %s (connection %s)", a.fallback.server, connText(a.fallback.id))
			}
			f.Evidence = append(f.Evidence, evidence(id, 0, a.rst, what))
		case a.unanswer:
			// The last SYN is the evidence.
		case a.synack.Frame > 0:
			f.Evidence = append(f.Evidence, evidence(id, 0, a.synack,
				fmt.Sprintf("SYN-ACK at last, %s after the first SYN", fmtMS(a.connectMS))))
		}
	}
	n := len(as)
	if over != nil {
		n += over.attempts
		retx += over.retx
		refused += over.refused
		unanswered += over.unanswered
		connected += over.connected
		maxRetries = max(maxRetries, over.maxRetries)
		maxConnect = max(maxConnect, over.maxConnect)
		rs = append(rs, over.reasons)
	}
	// Severity by the rule every detector follows: a connect that failed
	// (refused with no fallback to another address, or given up
	// unanswered) failed the request behind it: critical; retries that
	// connected cost latency: a warning, critical at scale; refusals
	// each followed by a fallback are harmless: info.
	failed := refused - fallbacks + unanswered
	switch {
	case n >= cfg.CriticalAttempts || failed > 0:
		f.Severity = Critical
	case fallbacks == n:
		f.Severity = Info
	}
	// The cause is what most attempts met.
	switch {
	case refused >= unanswered && refused >= connected:
		f.Cause = CauseRefused
	case unanswered >= connected:
		f.Cause = CauseUnanswered
	default:
		f.Cause = CauseRetried
	}
	m := map[string]any{
		"attempts":              n,
		"retransmitted_syns":    retx,
		"refused":               refused,
		"unanswered":            unanswered,
		"connected_after_retry": connected,
		"max_retries":           maxRetries,
	}
	if fallbacks > 0 {
		m["fallbacks"] = fallbacks
	}
	if failed > 0 {
		m["failed_connects"] = failed
	}
	if len(firstGaps) > 0 {
		m["first_retry_delay_ms"] = medianOf(firstGaps)
	}
	if over != nil && over.attempts > 0 {
		m["connections_listed"] = len(as)
		m["estimated"] = fmt.Sprintf("past the first %d attempts to this server, each was counted as the capture stood when it finished; fallbacks and first_retry_delay_ms are over the first %d", len(as), len(as))
	}
	if connected > 0 {
		m["max_connect_delay_ms"] = maxConnect
	}
	f.Metrics = m

	var parts []string
	if retx > 0 {
		parts = append(parts, fmt.Sprintf("%d SYN retransmission(s)", retx))
	}
	if connected > 0 {
		parts = append(parts, fmt.Sprintf("%d connected only after retrying (up to %s)", connected, fmtMS(maxConnect)))
	}
	if refused > 0 {
		s := fmt.Sprintf("%d refused with RST", refused)
		if fallbacks > 0 {
			s += fmt.Sprintf(" (%d then fell back to another address)", fallbacks)
		}
		parts = append(parts, s)
	}
	if unanswered > 0 {
		parts = append(parts, fmt.Sprintf("%d never answered", unanswered))
	}
	noun := "attempts"
	if n == 1 {
		noun = "attempt"
	}
	f.Summary = fmt.Sprintf("%d connection %s to %s failed or needed retries: %s", n, noun, srv, strings.Join(parts, ", "))
	f.Confidence = confidenceOf(in, rs...)
	var rem []string
	if refused > 0 {
		rem = append(rem, "Refused (RST to the SYN): nothing listens on "+srv.String()+" or a firewall rejects — check the "+
			"server process, its listen address (0.0.0.0 vs 127.0.0.1, IPv6 vs IPv4), the service/load-balancer target port.")
	}
	if unanswered > 0 || connected > 0 {
		rem = append(rem, "Unanswered or late SYN-ACKs: the server's accept queue overflows (raise net.core.somaxconn and "+
			"net.ipv4.tcp_max_syn_backlog, and the listen backlog; accept faster; watch ListenOverflows in nstat), "+
			"or a firewall / security group / network ACL drops the SYNs, or the path loses packets.")
	}
	rem = append(rem, "On the client, bound the wait (net.Dialer.Timeout, http.Transport.DialContext with a context deadline, "+
		"grpc.WithConnectParams MinConnectTimeout) and keep warm connections instead of dialing per request "+
		"(http.Transport.MaxIdleConnsPerHost, connection-pool pre-warming).")
	f.Remedy = strings.Join(rem, " ")
	return f
}
