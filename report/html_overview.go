package report

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// The overview: the whole capture at a glance, drawn first in the page.
//
// Per pool (client address → server, with the names its requests gave),
// over the capture's whole time span cut into at most maxOverviewBuckets
// buckets of a round width, it counts connections opened (SYN seen) and
// closed (FIN or RST), the most connections open at once, RST_STREAMs
// and TCP RSTs, stalled time (flow-control stalls, summed over the
// pool's connections) and failed requests (ended in an error, a reset or
// never completed), and marks each finding's evidence at its time. All
// of it is counted here; the page holds a fixed number of numbers per
// pool whatever the number of connections, and app.js draws one path
// per lane. At most maxOverviewPools pools are drawn, by connections;
// the others are folded into one "other pools" row.

const (
	maxOverviewBuckets = 300
	maxOverviewPools   = 8
)

// htmlOverview is the overview's data in the page.
type htmlOverview struct {
	// Start is the time of the first bucket's start (RFC 3339); SpanMS
	// the capture's span; BucketMS the width of a bucket; Buckets their
	// number (every lane has that many values).
	Start    string  `json:"start"`
	SpanMS   float64 `json:"span_ms"`
	BucketMS float64 `json:"bucket_ms"`
	Buckets  int     `json:"n"`
	// Conns counts the connections; Pools are the lanes, the busiest
	// first; PoolsFolded counts the pools in the last, "other" one.
	Conns int `json:"conns"`
	// All sums the pools, when there are several, drawn first.
	All         *htmlOverviewPool  `json:"all,omitempty"`
	Pools       []htmlOverviewPool `json:"pools"`
	PoolsFolded int                `json:"pools_folded,omitempty"`
	// Marks are the findings' evidence, in time order.
	Marks []htmlOverviewMark `json:"marks"`
	// EventsOmitted counts timeline events past the per-connection caps,
	// which the resets and stalls lanes do not see.
	EventsOmitted int `json:"events_omitted,omitempty"`
}

// htmlOverviewPool is one pool's lanes, one value per bucket.
type htmlOverviewPool struct {
	Name  string `json:"name"`
	Conns int    `json:"conns"`
	// Opened and Closed count connections opened (SYN) and closed (FIN
	// or RST) in each bucket; Open is the most open at once in it.
	Opened []int `json:"opened,omitempty"`
	Closed []int `json:"closed,omitempty"`
	Open   []int `json:"open,omitempty"`
	// Resets counts RST_STREAMs and TCP RSTs; StallMS the stalled time
	// in milliseconds summed over the pool's connections (above the
	// bucket width when several stall at once); Failed the requests
	// that ended in an error, a reset or never completed.
	Resets  []int     `json:"resets,omitempty"`
	StallMS []float64 `json:"stall_ms,omitempty"`
	Failed  []int     `json:"failed,omitempty"`
}

// htmlOverviewMark is one evidence item of a finding.
type htmlOverviewMark struct {
	T       float64      `json:"t"` // ms since Start
	Pool    int          `json:"p"` // index in Pools
	Conn    event.ConnID `json:"c"`
	Frame   uint64       `json:"f"`
	Finding int          `json:"n"` // 1-based, as #finding-N
	Kind    string       `json:"k"`
	Sev     string       `json:"s"` // the finding's severity on this connection (connSeverity)
	What    string       `json:"w"`
}

type overviewKey struct {
	client netip.Addr
	server netip.AddrPort
}

type overviewPool struct {
	key   overviewKey
	conns int
	// ups and downs are the times connections opened and closed, for
	// the most open at once.
	ups, downs     []float64
	opened, closed []int
	resets, failed []int
	stall          []float64
}

type overviewBuilder struct {
	r          *Report
	t0         time.Time
	span, w    float64
	n          int
	pools      map[overviewKey]*overviewPool
	poolOf     map[event.ConnID]overviewKey
	omitted    int
	evidenceOn map[[2]int]bool // finding index, conn: cited
	sev        map[[2]int]analyze.Severity
}

// overviewBucketMS returns the smallest round bucket width (1, 2 or 5
// × 10^k ms, at least a microsecond) that covers span in at most
// maxOverviewBuckets buckets.
func overviewBucketMS(span float64) float64 {
	for p := 1e-3; ; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if w := m * p; span/w <= maxOverviewBuckets {
				return w
			}
		}
	}
}

func newOverviewBuilder(r *Report, first, last time.Time) *overviewBuilder {
	b := &overviewBuilder{r: r, t0: first, pools: map[overviewKey]*overviewPool{},
		poolOf: map[event.ConnID]overviewKey{}, evidenceOn: map[[2]int]bool{}, sev: map[[2]int]analyze.Severity{}}
	b.span = math.Max(0, float64(last.Sub(first))/1e6)
	b.w = overviewBucketMS(b.span)
	b.n = max(1, int(math.Ceil(b.span/b.w-1e-9)))
	for i := range r.Findings {
		for _, e := range r.Findings[i].Evidence {
			b.evidenceOn[[2]int{i, int(e.Conn)}] = true
		}
	}
	return b
}

func (b *overviewBuilder) ms(t time.Time) float64 { return float64(t.Sub(b.t0)) / 1e6 }

func (b *overviewBuilder) bucket(ms float64) int {
	return min(b.n-1, max(0, int(ms/b.w)))
}

// severity records a finding's severity on a connection it names.
func (b *overviewBuilder) severity(finding int, conn event.ConnID, s analyze.Severity) {
	if k := [2]int{finding, int(conn)}; b.evidenceOn[k] {
		b.sev[k] = s
	}
}

// add counts one connection.
func (b *overviewBuilder) add(rec *ConnRecord, tl *Timeline) {
	if rec == nil || rec.Summary == nil {
		return
	}
	key := overviewKey{rec.Client.Addr(), rec.Server}
	p := b.pools[key]
	if p == nil {
		p = &overviewPool{key: key, opened: make([]int, b.n), closed: make([]int, b.n),
			resets: make([]int, b.n), failed: make([]int, b.n), stall: make([]float64, b.n)}
		b.pools[key] = p
	}
	b.poolOf[rec.ID] = key
	p.conns++
	start, end := b.ms(rec.FirstTS), b.ms(rec.LastTS)
	if rec.SYNs > 0 {
		p.opened[b.bucket(start)]++
	}
	p.ups = append(p.ups, start)
	if rec.Close != tcp.CloseOpen && rec.Close != "" {
		p.closed[b.bucket(end)]++
		p.downs = append(p.downs, end)
	}
	if tl == nil {
		return
	}
	b.omitted += tl.EventsOmitted
	for i := range tl.Events {
		e := &tl.Events[i]
		switch {
		case e.Lane == LaneReset, e.Lane == LaneTCP && e.What == "RST":
			p.resets[b.bucket(b.ms(e.TS))]++
		case e.Lane == LaneStall:
			from, to := b.ms(e.TS), b.ms(e.EndTS)
			if e.EndTS.IsZero() {
				if !strings.HasPrefix(e.What, "HTTP/2") {
					continue // a TCP zero window: an instant
				}
				to = b.span // still open at the end
			}
			b.addStall(p, from, to)
		}
	}
	for i := range tl.Spans {
		s := &tl.Spans[i]
		if s.Outcome == "ok" {
			continue
		}
		ts := s.EndTS
		if ts.IsZero() {
			ts = s.StartTS
		}
		if ts.IsZero() {
			ts = rec.LastTS
		}
		p.failed[b.bucket(b.ms(ts))]++
	}
}

// addStall spreads the stalled time from..to over its buckets.
func (b *overviewBuilder) addStall(p *overviewPool, from, to float64) {
	from, to = max(0, from), min(b.span, to)
	if to <= from {
		return
	}
	for i := b.bucket(from); i < b.n; i++ {
		lo, hi := float64(i)*b.w, float64(i+1)*b.w
		if lo >= to {
			break
		}
		p.stall[i] += min(hi, to) - max(lo, from)
	}
}

// openMax returns, per bucket, the most connections open at once.
func (b *overviewBuilder) openMax(ups, downs []float64) []int {
	slices.Sort(ups)
	slices.Sort(downs)
	out := make([]int, b.n)
	open, u, d := 0, 0, 0
	for i := range b.n {
		end := float64(i+1) * b.w
		if i == b.n-1 {
			end = math.Inf(1)
		}
		best := open
		// Opens before closes at the same time: a connection replacing
		// another counts both, briefly.
		for u < len(ups) && ups[u] < end || d < len(downs) && downs[d] < end {
			if u < len(ups) && ups[u] < end && (d >= len(downs) || ups[u] <= downs[d]) {
				open++
				u++
				best = max(best, open)
			} else {
				open--
				d++
			}
		}
		out[i] = max(best, open)
	}
	return out
}

func (b *overviewBuilder) finish() *htmlOverview {
	if len(b.pools) == 0 {
		return nil
	}
	o := &htmlOverview{Start: b.t0.UTC().Format(time.RFC3339Nano), SpanMS: htmlRoundUS(b.span),
		BucketMS: b.w, Buckets: b.n, EventsOmitted: b.omitted, Marks: []htmlOverviewMark{}}
	pools := make([]*overviewPool, 0, len(b.pools))
	for _, p := range b.pools {
		o.Conns += p.conns
		pools = append(pools, p)
	}
	slices.SortFunc(pools, func(x, y *overviewPool) int {
		return cmp.Or(cmp.Compare(y.conns, x.conns), x.key.client.Compare(y.key.client), x.key.server.Compare(y.key.server))
	})
	if len(pools) > 1 {
		all := &overviewPool{opened: make([]int, b.n), closed: make([]int, b.n),
			resets: make([]int, b.n), failed: make([]int, b.n), stall: make([]float64, b.n)}
		for _, p := range pools {
			b.fold(all, p)
		}
		o.All = b.lanes(all, "all "+htmlPlural(len(pools), "pool"))
	}
	index := map[overviewKey]int{}
	if len(pools) > maxOverviewPools+1 {
		other := &overviewPool{opened: make([]int, b.n), closed: make([]int, b.n),
			resets: make([]int, b.n), failed: make([]int, b.n), stall: make([]float64, b.n)}
		for _, p := range pools[maxOverviewPools:] {
			index[p.key] = maxOverviewPools
			b.fold(other, p)
		}
		o.PoolsFolded = len(pools) - maxOverviewPools
		pools = append(pools[:maxOverviewPools], other)
	}
	names := b.poolNames()
	for i, p := range pools {
		if _, folded := index[p.key]; !folded && p.key.client.IsValid() {
			index[p.key] = i
		}
		name := "other pools"
		if p.key.client.IsValid() {
			name = p.key.client.String() + " → " + p.key.server.String()
			if n := names[p.key]; len(n) > 0 {
				name += " (" + n[0]
				if len(n) > 1 {
					name += " and " + htmlPlural(len(n)-1, "other name")
				}
				name += ")"
			}
		} else {
			name = htmlPlural(o.PoolsFolded, "other pool")
		}
		hp := *b.lanes(p, name)
		o.Pools = append(o.Pools, hp)
	}
	seen := map[htmlOverviewMark]bool{}
	for fi := range b.r.Findings {
		f := &b.r.Findings[fi]
		for _, e := range f.Evidence {
			key, ok := b.poolOf[e.Conn]
			if !ok {
				continue
			}
			s, ok := b.sev[[2]int{fi, int(e.Conn)}]
			if !ok {
				s = f.Severity
			}
			m := htmlOverviewMark{T: htmlRoundUS(math.Max(0, b.ms(e.TS))), Pool: index[key], Conn: e.Conn,
				Frame: e.Frame, Finding: fi + 1, Kind: f.Kind, Sev: s.String(), What: e.What}
			if seen[m] {
				continue
			}
			seen[m] = true
			o.Marks = append(o.Marks, m)
		}
	}
	slices.SortStableFunc(o.Marks, func(x, y htmlOverviewMark) int {
		return cmp.Or(cmp.Compare(x.T, y.T), cmp.Compare(x.Pool, y.Pool))
	})
	return o
}

// fold adds p's counts to into.
func (b *overviewBuilder) fold(into, p *overviewPool) {
	into.conns += p.conns
	into.ups, into.downs = append(into.ups, p.ups...), append(into.downs, p.downs...)
	for i := range b.n {
		into.opened[i] += p.opened[i]
		into.closed[i] += p.closed[i]
		into.resets[i] += p.resets[i]
		into.failed[i] += p.failed[i]
		into.stall[i] += p.stall[i]
	}
}

// lanes returns p's lanes as the page holds them.
func (b *overviewBuilder) lanes(p *overviewPool, name string) *htmlOverviewPool {
	hp := &htmlOverviewPool{Name: name, Conns: p.conns, Opened: slices.Clone(p.opened), Closed: slices.Clone(p.closed),
		Open: b.openMax(slices.Clone(p.ups), slices.Clone(p.downs)), Resets: slices.Clone(p.resets), Failed: slices.Clone(p.failed),
		StallMS: slices.Clone(p.stall)}
	for j := range hp.StallMS {
		hp.StallMS[j] = htmlRoundUS(hp.StallMS[j])
	}
	// A lane of zeros is left out (app.js reads it as zeros).
	hp.Opened, hp.Closed, hp.Open = overviewLane(hp.Opened), overviewLane(hp.Closed), overviewLane(hp.Open)
	hp.Resets, hp.Failed, hp.StallMS = overviewLane(hp.Resets), overviewLane(hp.Failed), overviewLane(hp.StallMS)
	return hp
}

// poolNames returns the names (SNI, authority) of each pool from the
// pool table, which keys pools by client, server and name.
func (b *overviewBuilder) poolNames() map[overviewKey][]string {
	out := map[overviewKey][]string{}
	for _, row := range b.r.Tables.Pools {
		if row.Name == "" || row.Name == row.Server {
			continue
		}
		c, err1 := netip.ParseAddr(row.Client)
		s, err2 := netip.ParseAddrPort(row.Server)
		if err1 != nil || err2 != nil {
			continue
		}
		k := overviewKey{c, s}
		if !slices.Contains(out[k], row.Name) {
			out[k] = append(out[k], row.Name)
		}
	}
	return out
}

// overviewLane returns lane, or nil when it holds only zeros.
func overviewLane[T int | float64](lane []T) []T {
	for _, v := range lane {
		if v != 0 {
			return lane
		}
	}
	return nil
}
