package analyze

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/h2scope/h2scope/dissect/event"
)

// A detector finds one kind of finding. The analysis is streaming: each
// connection is observed once, when its streams have ended (see
// dissect.Options.OnApp), with its full records
// (HTTP/2 streams, gRPC calls, exchanges, resets, pings); the detector
// keeps what it needs of them, and the records are then released. Once
// every connection was observed, findings reports from what was kept,
// with in.Conns holding every connection in id order but only in summary
// form (see Conn.release): the TCP summary, the application summaries,
// the SYN, FIN, RST and window refs, and the few facts connSummary keeps.
//
// Connections finish in any order, so a detector that keeps something per
// connection orders it by connection id before it reports: the findings
// are the same whether the connections are observed as they finish or in
// id order (Analyze).
type detector interface {
	observe(c *Conn)
	findings(in *Input) []Finding
}

// detectors returns one detector per finding kind, in the order their
// findings are gathered before sorting.
func detectors(cfg Config) []detector {
	return []detector{
		&rstStorm{cfg: cfg.RSTStorm, servers: map[netip.AddrPort]*stormServer{}},
		atEnd(func(in *Input) []Finding { return detectResumptionFailure(in, cfg.Resumption) }),
		atEnd(func(in *Input) []Finding { return detectReconnectChurn(in, cfg.Churn) }),
		&windowStall{cfg: cfg.WindowStall},
		&goAway{cfg: cfg.GoAway},
		&keepalive{cfg: cfg.Keepalive},
		atEnd(func(in *Input) []Finding { return detectHandshakeLatency(in, cfg.HandshakeLatency) }),
		atEnd(func(in *Input) []Finding { return detectSYNRetransmit(in, cfg.SYNRetransmit) }),
	}
}

// atEnd is a detector that reads only the connections' summaries, all at
// once at the end.
type atEnd func(in *Input) []Finding

func (atEnd) observe(*Conn)                  {}
func (d atEnd) findings(in *Input) []Finding { return d(in) }

// analysis runs the detectors and the tables over connections as they
// finish.
type analysis struct {
	dets   []detector
	tables *tableBuilder
}

func newAnalysis(cfg Config) *analysis {
	return &analysis{dets: detectors(cfg), tables: newTableBuilder()}
}

// observe lets every detector and the tables read c's full records.
func (a *analysis) observe(c *Conn) {
	for _, d := range a.dets {
		d.observe(c)
	}
	a.tables.observe(c)
}

// result reports once every connection of in was observed.
func (a *analysis) result(in *Input) Result {
	var fs []Finding
	for _, d := range a.dets {
		fs = append(fs, d.findings(in)...)
	}
	for i := range fs {
		fs[i].normalize()
	}
	sortFindings(fs)
	if fs == nil {
		fs = []Finding{}
	}
	return Result{Findings: fs, Tables: a.tables.tables(in)}
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
	return pending{conn: conns[0].ID(), f: f, n: len(confidence(nil, conns...).Reasons)}
}

// finish returns the finding with the capture's reasons added where
// confidence(in, ...) puts them: after the connections', before the
// detector's.
func (p pending) finish(in *Input) Finding {
	r := p.f.Confidence.Reasons
	p.f.Confidence = Confidence{}.with(slices.Concat(r[:p.n], statsReasons(in), r[p.n:])...)
	return p.f
}

// finishAll finishes ps in connection id order (a connection's own
// findings keep the order they were made in).
func finishAll(in *Input, ps []pending) []Finding {
	slices.SortStableFunc(ps, func(a, b pending) int { return cmp.Compare(a.conn, b.conn) })
	var out []Finding
	for _, p := range ps {
		out = append(out, p.finish(in))
	}
	return out
}
