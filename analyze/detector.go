package analyze

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// A detector finds one kind of finding. The analysis streams and folds:
// each connection is observed once with its full records (HTTP/2
// streams, gRPC calls, exchanges, resets, pings), when its streams have
// ended (see dissect.Options.OnApp), and once more in its final summary
// form (final), when it finished: its final TCP summary, its SYN, FIN,
// RST and window refs, and the few facts connSummary keeps. The detector
// keeps what it needs of either, per pool (client, server, name), in
// state that does not hold the Conn; the connection is then let go.
// Once every connection was observed and finalised, findings reports
// from that state alone: no detector reads every connection at the end.
//
// Connections finish in any order, and the state of disjoint sets of
// connections merges (merge, associative and commutative: the sharded
// pipeline observes each shard's connections into its own state), so a
// detector orders what it keeps (by connection id, frame, time) when it
// reports: the findings are the same whatever the order of observation
// and whichever way the connections were split.
type detector interface {
	observe(c *Conn)
	final(c *Conn)
	// merge adds o's state, o being the same detector (same
	// configuration) over a disjoint set of connections; o is not used
	// afterwards.
	merge(o detector)
	findings(in *capture) []Finding
}

// capture is what the detectors know of the capture as a whole when they
// report: its reading statistics and the number of connections.
type capture struct {
	Stats dissect.Stats
	conns int
}

// detectors returns one detector per finding kind, in the order their
// findings are gathered before sorting.
func detectors(cfg Config) []detector {
	return []detector{
		&rstStorm{cfg: cfg.RSTStorm, servers: map[netip.AddrPort]*stormServer{}},
		newResumptionFold(cfg.Resumption),
		newChurnFold(cfg.Churn),
		&windowStall{cfg: cfg.WindowStall},
		&goAway{cfg: cfg.GoAway},
		&keepalive{cfg: cfg.Keepalive},
		newHandshakeFold(cfg.HandshakeLatency),
		newSYNFold(cfg.SYNRetransmit),
		&connectionLost{cfg: cfg.ConnectionLost, race: cfg.Keepalive.RaceWindow},
		&requestErrors{cfg: cfg.RequestErrors},
		&packetLoss{cfg: cfg.PacketLoss},
		&protocolAbuse{cfg: cfg.ProtocolAbuse},
	}
}

// analysis runs the detectors and the tables over connections as they
// finish. Its state merges: see State.
type analysis struct {
	dets   []detector
	tables *tableBuilder
	// clients are those owning a key of their own in a per-pool map
	// that folds (see clientSet and Conn.newClient).
	clients clientSet
	// conns counts the connections finalised.
	conns int
}

func newAnalysis(cfg Config) *analysis {
	a := &analysis{dets: detectors(cfg), tables: newTableBuilder()}
	for _, d := range a.dets {
		if r, ok := d.(*resumptionFold); ok {
			a.tables.res, a.tables.ownRes = r, false
		}
	}
	return a
}

// observe lets every detector and the tables read c's full records.
func (a *analysis) observe(c *Conn) {
	c.summarize()
	for _, d := range a.dets {
		d.observe(c)
	}
	a.tables.observe(c)
}

// final lets every detector and the tables read c's final summary.
func (a *analysis) final(c *Conn) {
	a.conns++
	c.newClient, c.ownsKey = !a.clients.known(c.Client()), false
	for _, d := range a.dets {
		d.final(c)
	}
	a.tables.final(c)
	if c.ownsKey {
		a.clients.add(c.Client())
	}
}

// merge adds o's state (the same configuration, disjoint connections).
func (a *analysis) merge(o *analysis) {
	a.conns += o.conns
	a.clients.off = true
	for i, d := range a.dets {
		d.merge(o.dets[i])
	}
	a.tables.merge(o.tables)
}

// result reports once every connection was observed and finalised.
func (a *analysis) result(st dissect.Stats) Result {
	in := &capture{Stats: st, conns: a.conns}
	var fs []Finding
	for _, d := range a.dets {
		fs = append(fs, d.findings(in)...)
	}
	fs = groupFindings(fs)
	for i := range fs {
		fs[i].finalIDs(st.IDs) // before sorting: it compares summaries
		fs[i].normalize()
	}
	sortFindings(fs)
	assignIDs(fs)
	relate(fs)
	if fs == nil {
		fs = []Finding{}
	}
	t := a.tables.tables(in)
	t.finalIDs(st.IDs)
	return Result{Findings: fs, Tables: t}
}

// pending is a finding built when its connection finished, before the
// capture's reading statistics are known: its confidence holds its
// connections' reasons (the first n) and then the detector's own.
type pending struct {
	conn event.ConnID
	f    Finding
	n    int
}

// newPending wraps f, a finding on conns (the first names it for
// ordering) whose confidence started from confidence(nil, conns...).
func newPending(f Finding, conns ...*Conn) pending {
	c := conns[0]
	f.pool = poolOf(c)
	return pending{conn: c.ID(), f: f, n: len(confidence(nil, conns...).Reasons)}
}

// finish returns the finding with the capture's reasons added where
// confidence(in, ...) puts them: after the connections', before the
// detector's.
func (p pending) finish(in *capture) Finding {
	r := p.f.Confidence.Reasons
	p.f.Confidence = Confidence{}.with(slices.Concat(r[:p.n], statsReasons(in), r[p.n:])...)
	return p.f
}

// finishAll finishes ps in connection id order (a connection's own
// findings keep the order they were made in).
func finishAll(in *capture, ps []pending) []Finding {
	slices.SortStableFunc(ps, func(a, b pending) int { return cmp.Compare(a.conn, b.conn) })
	var out []Finding
	for _, p := range ps {
		out = append(out, p.finish(in))
	}
	return out
}
