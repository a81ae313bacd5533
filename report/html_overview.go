package report

import (
	"cmp"
	"container/heap"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
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

// overviewPool is one lane set being counted.
type overviewPool struct {
	key   overviewKey
	conns int
	// open tracks the connections open at once.
	open           openSweep
	opened, closed []int
	resets, failed []int
	stall          []float64
}

// openSweep counts the most connections open at once per bucket as
// connections arrive in order of their start: the ends of those still
// open wait in a heap (so it holds the connections open at once, not
// all of them). Opens come before closes at the same time: a connection
// replacing another counts both, briefly.
type openSweep struct {
	downs floatHeap
	open  int
	cur   int // the bucket reached
	max   []int
}

type floatHeap []float64

func (h floatHeap) Len() int           { return len(h) }
func (h floatHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h floatHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *floatHeap) Push(x any)        { *h = append(*h, x.(float64)) }
func (h *floatHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// advance carries the connections open into the buckets up to i.
func (s *openSweep) advance(i int) {
	for s.cur < i {
		s.cur++
		s.max[s.cur] = max(s.max[s.cur], s.open)
	}
}

// closeBefore closes the connections that ended before t.
func (s *openSweep) closeBefore(b *overviewBuilder, t float64) {
	for len(s.downs) > 0 && s.downs[0] < t {
		d := heap.Pop(&s.downs).(float64)
		s.advance(b.bucket(d))
		s.open--
	}
}

// add counts a connection open from start, until end when closed.
func (s *openSweep) add(b *overviewBuilder, start, end float64, closed bool) {
	s.closeBefore(b, start)
	i := b.bucket(start)
	s.advance(i)
	s.open++
	s.max[i] = max(s.max[i], s.open)
	if closed {
		heap.Push(&s.downs, end)
	}
}

// finish closes the rest and returns the counts.
func (s *openSweep) finish(b *overviewBuilder) []int {
	s.closeBefore(b, math.Inf(1))
	s.advance(b.n - 1)
	return s.max
}

type overviewBuilder struct {
	r       *Report
	t0      time.Time
	span, w float64
	n       int
	// lanes holds the pools drawn on their own, other the rest (nil
	// when none is folded), all every connection (nil for one pool).
	lanes       map[overviewKey]*overviewPool
	other, all  *overviewPool
	poolsFolded int
	// poolOf holds the pool of each connection evidence cites.
	poolOf     map[event.ConnID]overviewKey
	omitted    int
	evidenceOn map[[2]int]bool // finding index, conn: cited
	cited      map[event.ConnID]bool
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

// newOverviewBuilder starts the overview of a capture whose connections
// span first to last, in pools counted by pools: the busiest
// maxOverviewPools get lanes of their own (all of them when one more
// would be folded alone), the others share one.
func newOverviewBuilder(r *Report, first, last time.Time, pools *poolSketch) *overviewBuilder {
	b := &overviewBuilder{r: r, t0: first, lanes: map[overviewKey]*overviewPool{},
		poolOf: map[event.ConnID]overviewKey{}, evidenceOn: map[[2]int]bool{}, cited: map[event.ConnID]bool{},
		sev: map[[2]int]analyze.Severity{}}
	b.span = math.Max(0, float64(last.Sub(first))/1e6)
	b.w = overviewBucketMS(b.span)
	b.n = max(1, int(math.Ceil(b.span/b.w-1e-9)))
	for i := range r.Findings {
		for _, e := range r.Findings[i].Evidence {
			b.evidenceOn[[2]int{i, int(e.Conn)}] = true
			b.cited[e.Conn] = true
		}
	}
	type counted struct {
		key overviewKey
		n   int
	}
	var keys []counted
	for k, n := range pools.counts {
		keys = append(keys, counted{k, n})
	}
	slices.SortFunc(keys, func(x, y counted) int {
		return cmp.Or(cmp.Compare(y.n, x.n), x.key.client.Compare(y.key.client), x.key.server.Compare(y.key.server))
	})
	distinct := pools.distinct
	if distinct > maxOverviewPools+1 {
		keys = keys[:min(len(keys), maxOverviewPools)]
		b.other = b.newPool(overviewKey{})
		b.poolsFolded = distinct - len(keys)
	}
	for _, k := range keys {
		b.lanes[k.key] = b.newPool(k.key)
	}
	if distinct > 1 {
		b.all = b.newPool(overviewKey{})
	}
	return b
}

func (b *overviewBuilder) newPool(k overviewKey) *overviewPool {
	return &overviewPool{key: k, opened: make([]int, b.n), closed: make([]int, b.n), resets: make([]int, b.n),
		failed: make([]int, b.n), stall: make([]float64, b.n), open: openSweep{max: make([]int, b.n)}}
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

// add counts one connection; connections come in id order (that of
// their first packets).
func (b *overviewBuilder) add(h *connHead, tl *Timeline) {
	if h == nil {
		return
	}
	key := overviewKey{h.client.Addr(), h.server}
	p := b.lanes[key]
	if p == nil {
		p = b.other
	}
	if p == nil { // a pool the counts missed: not when they are exact
		return
	}
	if b.cited[h.id] {
		b.poolOf[h.id] = key
	}
	b.addTo(p, h, tl)
	if b.all != nil {
		b.addTo(b.all, h, tl)
	}
	if tl != nil {
		b.omitted += tl.EventsOmitted
	}
}

func (b *overviewBuilder) addTo(p *overviewPool, h *connHead, tl *Timeline) {
	p.conns++
	start, end := b.ms(h.first), b.ms(h.last)
	if h.syn {
		p.opened[b.bucket(start)]++
	}
	p.open.add(b, start, end, h.closed)
	if h.closed {
		p.closed[b.bucket(end)]++
	}
	if tl == nil {
		return
	}
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
			ts = h.last
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

func (b *overviewBuilder) finish() *htmlOverview {
	conns := 0
	pools := make([]*overviewPool, 0, len(b.lanes))
	for _, p := range b.lanes {
		conns += p.conns
		pools = append(pools, p)
	}
	if b.other != nil {
		conns += b.other.conns
	}
	if conns == 0 {
		return nil
	}
	o := &htmlOverview{Start: b.t0.UTC().Format(time.RFC3339Nano), SpanMS: htmlRoundUS(b.span),
		BucketMS: b.w, Buckets: b.n, EventsOmitted: b.omitted, Marks: []htmlOverviewMark{}, Conns: conns}
	slices.SortFunc(pools, func(x, y *overviewPool) int {
		return cmp.Or(cmp.Compare(y.conns, x.conns), x.key.client.Compare(y.key.client), x.key.server.Compare(y.key.server))
	})
	if b.all != nil {
		o.All = b.lanes2(b.all, "all "+htmlPlural(b.poolsFolded+len(pools), "pool"))
	}
	index := map[overviewKey]int{}
	names := b.poolNames()
	for i, p := range pools {
		index[p.key] = i
		name := p.key.client.String() + " → " + p.key.server.String()
		if n := names[p.key]; len(n) > 0 {
			name += " (" + n[0]
			if len(n) > 1 {
				name += " and " + htmlPlural(len(n)-1, "other name")
			}
			name += ")"
		}
		o.Pools = append(o.Pools, *b.lanes2(p, name))
	}
	if b.other != nil {
		o.PoolsFolded = b.poolsFolded
		o.Pools = append(o.Pools, *b.lanes2(b.other, htmlPlural(o.PoolsFolded, "other pool")))
	}
	seen := map[htmlOverviewMark]bool{}
	for fi := range b.r.Findings {
		f := &b.r.Findings[fi]
		for _, e := range f.Evidence {
			key, ok := b.poolOf[e.Conn]
			if !ok {
				continue
			}
			pool, ok := index[key]
			if !ok {
				pool = len(pools) // the other pools
			}
			s, ok := b.sev[[2]int{fi, int(e.Conn)}]
			if !ok {
				s = f.Severity
			}
			m := htmlOverviewMark{T: htmlRoundUS(math.Max(0, b.ms(e.TS))), Pool: pool, Conn: e.Conn,
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

// lanes2 returns p's lanes as the page holds them.
func (b *overviewBuilder) lanes2(p *overviewPool, name string) *htmlOverviewPool {
	hp := &htmlOverviewPool{Name: name, Conns: p.conns, Opened: p.opened, Closed: p.closed,
		Open: p.open.finish(b), Resets: p.resets, Failed: p.failed, StallMS: p.stall}
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
