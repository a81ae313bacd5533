package analyze

import (
	"flag"
	"fmt"
	"net/netip"
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

// synAttempt is one connection attempt that needed retries or failed.
type synAttempt struct {
	c         *Conn
	syns      []event.Ref // counted SYNs (capture duplicates left out)
	retx      int
	refused   bool
	unanswer  bool
	fallback  *Conn
	connectMS float64 // first SYN to SYN-ACK, when it connected
	synack    event.Ref
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

// detectSYNRetransmit reports connection attempts that needed SYN
// retransmissions, were refused or were never answered.
//
// Signal: per connection whose client SYN was seen (Conn.SYNs, the TCP
// summary's SYN and SYN-ACK counts, the server's RST): a retried attempt
// has more than one SYN (copies closer than MinRetryDelay are the capture
// duplicating a packet and are left out); a refused one got a RST from
// the server and no SYN-ACK; an unanswered one got nothing back at all
// (Zeek conn_state S0) and the client sent nothing after its SYNs. Attempts are grouped per server address
// (ip:port), one finding per server with evidence per attempt (its SYNs,
// the RST, the SYN-ACK that finally came). A warning; critical from
// CriticalAttempts attempts.
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
// connected_after_retry, fallbacks, max_retries, first_retry_delay_ms
// (median gap from the first SYN to its first retransmission),
// max_connect_delay_ms (first SYN to SYN-ACK of a retried attempt that
// connected).
func detectSYNRetransmit(in *Input, cfg SYNRetransmitConfig) []Finding {
	var end time.Time
	for _, c := range in.Conns {
		if c.TCP.LastTS.After(end) {
			end = c.TCP.LastTS
		}
	}
	// Per (client, server host): distinct server ports, whether any
	// connection carried payload, and whether the capture holds packets
	// from the server to the client.
	type hostPair struct{ client, server netip.Addr }
	type pairInfo struct {
		ports       map[uint16]bool
		payload     bool
		serverSpoke bool
	}
	pairs := map[hostPair]*pairInfo{}
	pairOf := func(c *Conn) *pairInfo {
		k := hostPair{c.Client(), c.Server().Addr()}
		p := pairs[k]
		if p == nil {
			p = &pairInfo{ports: map[uint16]bool{}}
			pairs[k] = p
		}
		return p
	}
	for _, c := range in.Conns {
		p := pairOf(c)
		p.ports[c.Server().Port()] = true
		p.payload = p.payload || c.TCP.Bytes.C2S > 0 || c.TCP.Bytes.S2C > 0
		p.serverSpoke = p.serverSpoke || c.TCP.Packets.S2C > 0
	}
	byServer := map[netip.AddrPort][]synAttempt{}
	for _, c := range in.Conns {
		t := c.TCP
		if t.SYNs == 0 || t.ClientGuessed || len(c.SYNs) == 0 {
			continue
		}
		pair := pairOf(c)
		if cfg.ScanPorts > 0 && len(pair.ports) >= cfg.ScanPorts && !pair.payload {
			continue // a port scan's probe
		}
		a := synAttempt{c: c}
		for _, s := range c.SYNs {
			if n := len(a.syns); n > 0 && s.TS.Sub(a.syns[n-1].TS) < cfg.MinRetryDelay {
				continue
			}
			a.syns = append(a.syns, s)
		}
		a.retx = len(a.syns) - 1
		if t.SYNs > len(c.SYNs) && len(c.SYNs) > 1 {
			a.retx += t.SYNs - len(c.SYNs) // past the collector's bound
		}
		serverSpoke := t.Packets.S2C > 0
		switch {
		case t.SYNACKs > 0:
		case c.RST[event.S2C] != nil && t.Bytes.S2C == 0:
			a.refused = true
			a.fallback = fallbackAfter(in, c, cfg.Fallback)
		case t.Packets.C2S > uint64(t.SYNs):
			// The client went on after its SYNs: it was answered, and
			// the capture missed the answer.
		case !serverSpoke:
			last := a.syns[len(a.syns)-1]
			if a.retx == 0 && end.Sub(last.TS) < time.Second {
				continue // the answer may have come after the capture ended
			}
			if a.retx == 0 && !pair.serverSpoke {
				continue // one-sided capture: answers would not show
			}
			a.unanswer = true
		}
		if a.retx == 0 && !a.refused && !a.unanswer {
			continue
		}
		if a.retx > 0 && t.SYNACKs > 0 && len(c.SYNACKs) > 0 {
			a.synack = synACKAfter(c.SYNACKs, a.syns[len(a.syns)-1])
			a.connectMS = ms(a.synack.TS.Sub(a.syns[0].TS))
		}
		byServer[c.Server()] = append(byServer[c.Server()], a)
	}
	var out []Finding
	for _, srv := range sortedAddrPorts(byServer) {
		out = append(out, synFinding(in, cfg, srv, byServer[srv]))
	}
	return out
}

// fallbackAfter returns a connection from c's client host to another
// address on c's server port, handshaken within d after c's last frame.
func fallbackAfter(in *Input, c *Conn, d time.Duration) *Conn {
	for _, o := range in.Conns {
		if o == c || o.Server().Port() != c.Server().Port() || o.Server().Addr() == c.Server().Addr() || o.TCP.SYNACKs == 0 {
			continue
		}
		if dt := o.TCP.FirstTS.Sub(c.TCP.LastTS); dt >= 0 && dt <= d {
			return o
		}
	}
	return nil
}

// synFinding builds the finding for the attempts as to server srv.
func synFinding(in *Input, cfg SYNRetransmitConfig, srv netip.AddrPort, as []synAttempt) Finding {
	var retx, refused, unanswered, connected, fallbacks, maxRetries int
	var firstGaps []float64
	maxConnect := 0.0
	conns := make([]*Conn, 0, len(as))
	f := Finding{Kind: KindSYNRetransmit, Severity: Warning}
	for i, a := range as {
		conns = append(conns, a.c)
		f.Connections = append(f.Connections, a.c.ID())
		retx += a.retx
		maxRetries = max(maxRetries, a.retx)
		if len(a.syns) > 1 {
			firstGaps = append(firstGaps, ms(a.syns[1].TS.Sub(a.syns[0].TS)))
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
		id := a.c.ID()
		for j, s := range a.syns {
			what := fmt.Sprintf("client SYN to %s", srv)
			if j > 0 {
				what = fmt.Sprintf("SYN retransmitted %s after the previous one (retry %d)", fmtDur(s.TS.Sub(a.syns[j-1].TS)), j)
			}
			f.Evidence = append(f.Evidence, evidence(id, 0, s, what))
		}
		switch {
		case a.refused:
			what := "server RST refuses the connection (nothing listening, or a firewall rejecting)"
			if a.fallback != nil {
				what += fmt.Sprintf("; the client then connected to %s (connection %d)", a.fallback.Server(), a.fallback.ID())
			}
			f.Evidence = append(f.Evidence, evidence(id, 0, *a.c.RST[event.S2C], what))
		case a.unanswer:
			// The last SYN is the evidence.
		case a.synack.Frame > 0:
			f.Evidence = append(f.Evidence, evidence(id, 0, a.synack,
				fmt.Sprintf("SYN-ACK at last, %s after the first SYN", fmtMS(a.connectMS))))
		}
	}
	n := len(as)
	switch {
	case n >= cfg.CriticalAttempts:
		f.Severity = Critical
	case fallbacks == n:
		f.Severity = Info
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
	if len(firstGaps) > 0 {
		m["first_retry_delay_ms"] = medianOf(firstGaps)
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
	f.Confidence = confidence(in.capture(), conns...)
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
