package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"slices"

	"github.com/h2scope/h2scope/dissect/event"
)

// PacketLossConfig holds packet_loss's thresholds.
type PacketLossConfig struct {
	// MinRetransmissions is the least number of retransmissions (not
	// spurious) of a pool that makes a finding, MinShare the least share
	// of its packets they must be, CriticalShare the share from which
	// the finding is critical.
	MinRetransmissions int
	MinShare           float64
	CriticalShare      float64
}

func defaultPacketLoss() PacketLossConfig {
	return PacketLossConfig{MinRetransmissions: 10, MinShare: 0.02, CriticalShare: 0.2}
}

func (c *PacketLossConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.MinRetransmissions, "loss-min", c.MinRetransmissions, "packet_loss: retransmissions between one client and server that make a finding")
	fs.Float64Var(&c.MinShare, "loss-min-share", c.MinShare, "packet_loss: least share of the packets retransmitted")
	fs.Float64Var(&c.CriticalShare, "loss-critical-share", c.CriticalShare, "packet_loss: share of the packets retransmitted that makes the finding critical")
}

// Causes of packet_loss.
const (
	CauseTimeouts       = "timeouts"        // most retransmissions waited for the retransmission timer (RTO): stalls
	CauseFastRetransmit = "fast_retransmit" // most were fast retransmissions, after duplicate ACKs
	CauseCaptureLoss    = "capture_loss"    // the capture missed bytes the peer acknowledged: not the network (info)
)

// packetLoss reports TCP loss between a client and a server.
//
// Signal: per client, server and name, the connections' TCP analysis
// (Wireshark's tcp.analysis flags): retransmissions of data (a SYN or a
// FIN sent again is none) less the spurious ones, the fast ones among
// them: driven by the receiver's duplicate ACKs (Wireshark's
// fast_retransmission, and any other within recoveryWindow of a
// duplicate ACK from the peer: SACK recovery retransmits every hole
// after one run of duplicate ACKs, and Wireshark flags at most the
// first); the rest waited for the retransmission timer, the expensive
// kind; duplicate ACKs, and
// capture loss: segments the peer acknowledged that the capture never
// held (ack_lost_segments, missed_bytes), which are the capture's fault,
// not the network's.
//
// Thresholds: MinRetransmissions making MinShare of the pool's packets
// are a warning, CriticalShare a critical. A pool whose only loss is the
// capture's gets an info finding (capture_loss), which lowers nothing
// but says the other findings on it stand on partial data.
//
// Metrics: connections, lossy_connections, packets, retransmissions,
// fast_retransmissions (Wireshark's flag), recovery_retransmissions
// (driven by duplicate ACKs, the fast ones included),
// timeout_retransmissions, spurious_retransmissions,
// retransmitted_share, dup_acks, capture_lost_segments, missed_bytes.
type packetLoss struct {
	cfg   PacketLossConfig
	pools map[findingPool]*lossPool
	last  lastEntry[findingPool, lossPool]
}

// lossPool is one pool's tally.
type lossPool struct {
	conns, lossy                           int
	packets, retx, fast, spurious, dupACKs int
	recovery                               int // retransmissions driven by duplicate ACKs (Conn.RecoveryRetransmissions)
	ackLost                                int
	missed                                 uint64
	worst                                  []lossConn // the lossiest few, by retransmissions then id
}

// lossConn is one connection with loss, for evidence.
type lossConn struct {
	id        event.ConnID
	retx      int
	first     event.Ref
	reasons   connReasons
	ackLost   int
	missedLen uint64
}

// maxLossConns bounds the connections a loss pool names.
const maxLossConns = 8

func (d *packetLoss) observe(*Conn) {}

func (d *packetLoss) final(c *Conn) {
	t := c.TCP
	if t == nil {
		return
	}
	p := poolEntry(&d.pools, &d.last, poolOf(c), c, newLossPool)
	retx := c.DataRetransmissions - c.SpuriousData
	p.conns++
	p.packets += int(t.Packets.C2S + t.Packets.S2C)
	p.retx += retx
	p.fast += c.FastData // tshark's count less the spurious and capture duplicates
	p.recovery += c.RecoveryRetransmissions
	p.spurious += t.SpuriousRetransmissions
	p.dupACKs += t.DupACKs
	p.ackLost += t.AckLostSegments
	p.missed += t.MissedBytes
	if retx > 0 || t.AckLostSegments > 0 || t.MissedBytes > 0 {
		p.lossy++
		p.keep(lossConn{id: c.ID(), retx: retx, first: event.Ref{Frame: t.FirstFrame, TS: t.FirstTS}, reasons: reasonsOf(c),
			ackLost: t.AckLostSegments, missedLen: t.MissedBytes})
	}
}

// keep keeps lc if it is among the lossiest maxLossConns.
func (p *lossPool) keep(lc lossConn) {
	worse := func(a, b lossConn) int {
		return cmp.Or(cmp.Compare(b.retx, a.retx), cmp.Compare(b.missedLen, a.missedLen), cmp.Compare(a.id, b.id))
	}
	i, _ := slices.BinarySearchFunc(p.worst, lc, worse)
	if i >= maxLossConns {
		return
	}
	p.worst = slices.Insert(p.worst, i, lc)
	if len(p.worst) > maxLossConns {
		p.worst = p.worst[:maxLossConns]
	}
}

func newLossPool(findingPool) *lossPool { return &lossPool{} }

func (d *packetLoss) merge(o detector) {
	mergePools(&d.pools, o.(*packetLoss).pools, &d.last, findingPool.compare, newLossPool, (*lossPool).merge)
}

// merge adds op's counts and connections, op being over other connections.
func (p *lossPool) merge(op *lossPool, _ findingPool, _ bool) {
	p.conns += op.conns
	p.lossy += op.lossy
	p.packets += op.packets
	p.retx += op.retx
	p.fast += op.fast
	p.recovery += op.recovery
	p.spurious += op.spurious
	p.dupACKs += op.dupACKs
	p.ackLost += op.ackLost
	p.missed += op.missed
	for _, lc := range op.worst {
		p.keep(lc)
	}
}

func (d *packetLoss) findings(in *capture) []Finding {
	var out []Finding
	for _, k := range sortedPoolKeysOf(d.pools) {
		if f, ok := lossFinding(in, d.cfg, k, d.pools[k]); ok {
			out = append(out, f)
		}
	}
	return out
}

// lossFinding builds the finding of one pool, if its loss is one.
func lossFinding(in *capture, cfg PacketLossConfig, k findingPool, p *lossPool) (Finding, bool) {
	share := float64(p.retx) / float64(max(p.packets, 1))
	network := p.retx >= max(cfg.MinRetransmissions, 1) && share >= cfg.MinShare
	if !network && p.missed == 0 {
		return Finding{}, false
	}
	f := Finding{Kind: KindPacketLoss, Severity: Warning}
	fast := min(p.fast, p.retx)
	recovery := min(max(p.recovery, fast), p.retx)
	timeouts := p.retx - recovery
	switch {
	case !network:
		f.Cause, f.Severity = CauseCaptureLoss, Info
	case timeouts >= recovery:
		f.Cause = CauseTimeouts
	default:
		f.Cause = CauseFastRetransmit
	}
	if network && share >= cfg.CriticalShare {
		f.Severity = Critical
	}
	f.Metrics = map[string]any{
		"connections":              p.conns,
		"lossy_connections":        p.lossy,
		"packets":                  p.packets,
		"retransmissions":          p.retx,
		"fast_retransmissions":     fast,
		"recovery_retransmissions": recovery,
		"timeout_retransmissions":  timeouts,
		"spurious_retransmissions": p.spurious,
		"retransmitted_share":      roundTo(share, 4),
		"dup_acks":                 p.dupACKs,
		"capture_lost_segments":    p.ackLost,
		"missed_bytes":             p.missed,
	}
	dest := k.dest()
	if network {
		f.Summary = fmt.Sprintf("%d of %d packets between %s and %s were retransmitted (%.1f%%) on %d of %d connections: %d after a retransmission timeout, %d fast (%d duplicate ACKs)",
			p.retx, p.packets, clientString(k.client), dest, 100*share, p.lossy, p.conns, timeouts, recovery, p.dupACKs)
	} else {
		f.Summary = fmt.Sprintf("The capture missed %d bytes (%d segments acknowledged but never captured) between %s and %s on %d of %d connections: the capture's loss, not the network's; findings there stand on partial data",
			p.missed, p.ackLost, clientString(k.client), dest, p.lossy, p.conns)
	}
	var reasons []connReasons
	for _, lc := range p.worst {
		f.Connections = append(f.Connections, lc.id)
		reasons = append(reasons, lc.reasons)
		what := fmt.Sprintf("connection with %d retransmissions", lc.retx)
		if lc.missedLen > 0 {
			what += fmt.Sprintf(", %d bytes missed by the capture", lc.missedLen)
		}
		f.Evidence = append(f.Evidence, evidence(lc.id, 0, lc.first, what))
	}
	f.Confidence = confidenceOf(in, reasons...)
	switch f.Cause {
	case CauseCaptureLoss:
		f.Remedy = "Capture with less loss: a larger capture buffer (tcpdump -B, dumpcap -B), a snap length no larger than " +
			"needed, capturing on the host rather than a busy SPAN port, or writing to faster storage."
	case CauseTimeouts:
		f.Remedy = "Packets are lost and the senders wait for their retransmission timer (200 ms or more each): look for a " +
			"congested or faulty link, NIC or middlebox (interface drop and error counters, qdisc drops, MTU or PMTU " +
			"black holes for large segments); tail loss on short exchanges is what hurts request latency most."
	default:
		f.Remedy = "Packets are lost but recovered quickly by fast retransmission: some congestion on the path; check " +
			"interface and queue drop counters, and the congestion control (BBR copes with random loss better than CUBIC)."
	}
	return f, true
}
