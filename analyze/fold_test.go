package analyze

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// The folds past their bounds, on synthetic connections (no capture of
// the project holds ten thousand pools or handshakes to one server).

// oneRequestConn is a short HTTP/1.1 connection from client:port, the
// i-th of its series (10 ms apart), closed by the client.
func oneRequestConn(id event.ConnID, client string, i int) *Conn {
	c := synConn{id: id, port: uint16(20000 + i%40000), start: time.Duration(i) * 10 * time.Millisecond,
		life: 5 * time.Millisecond, reqs: []time.Duration{time.Millisecond}, close: tcp.CloseFINClient}.build()
	c.TCP.Client = netip.AddrPortFrom(netip.MustParseAddr(client), c.TCP.Client.Port())
	return c
}

// observeAll folds conns into a new State, split into n shards by id and
// merged when n > 1.
func observeAll(conns []*Conn, n int) *State {
	shards := make([]*State, n)
	for i := range shards {
		shards[i] = NewState(DefaultConfig())
	}
	for _, c := range conns {
		shards[int(c.ID())%n].Observe(c)
	}
	for _, s := range shards[1:] {
		shards[0].Merge(s)
	}
	return shards[0]
}

// TestPoolsFoldPastMaxPools checks that past maxPools clients, new
// clients share one pool per server ("*") in the pool table and in
// reconnect_churn, whose finding names the heaviest of them.
func TestPoolsFoldPastMaxPools(t *testing.T) {
	var conns []*Conn
	id := event.ConnID(0)
	for i := range maxPools {
		conns = append(conns, oneRequestConn(id, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), 0))
		id++
	}
	// Past the bound: 300 clients with one connection, one with 100.
	for i := range 300 {
		conns = append(conns, oneRequestConn(id, fmt.Sprintf("10.100.%d.%d", i>>8&255, i&255), 0))
		id++
	}
	for i := range 100 {
		conns = append(conns, oneRequestConn(id, "10.200.0.1", i))
		id++
	}
	// A client with a pool of its own keeps it past the bound (the
	// clientSet must not fold it).
	conns = append(conns, oneRequestConn(id, "10.0.0.7", 1))
	res := observeAll(conns, 1).Result(dissect.Stats{})
	for _, p := range res.Tables.Pools {
		if p.Client == "10.0.0.7" && p.Connections != 2 {
			t.Errorf("pool row of 10.0.0.7 = %+v, want its 2 connections", p)
		}
	}
	if got := len(res.Tables.Pools); got != maxPools+1 {
		t.Fatalf("pool rows = %d, want %d", got, maxPools+1)
	}
	star := res.Tables.Pools[0]
	if star.Client != "*" || star.Connections != 400 || star.Requests != 400 {
		t.Errorf("first pool row = %+v, want client *, 400 connections and requests", star)
	}
	checkHeaviest(t, res.Tables.Pools, "10.200.0.1", 100)
	var f *Finding
	for i := range res.Findings {
		if res.Findings[i].Kind == KindReconnectChurn && strings.HasPrefix(res.Findings[i].Summary, "Client * ") {
			f = &res.Findings[i]
		}
	}
	if f == nil {
		t.Fatalf("no reconnect_churn finding on client *")
	}
	if got := metric(t, *f, "connections"); got != 400 {
		t.Errorf("connections = %v, want 400", got)
	}
	folded, _ := f.Metrics["clients_folded"].(string)
	if !strings.Contains(folded, "the heaviest: 10.200.0.1 (100 to ") {
		t.Errorf("clients_folded = %q, want 10.200.0.1 first with at least 100 connections", folded)
	}
}

// TestPoolsFoldPastMaxPoolsMerged checks that states of shards, each of
// which kept up to maxPools pools of its own, merge into at most
// maxPools entries in every per-pool map, as a whole run holds, the
// pools past the bound (the last by client) folded into "*" with every
// count: a merge of N shards does not make N bounds' worth of pool rows.
func TestPoolsFoldPastMaxPoolsMerged(t *testing.T) {
	var conns []*Conn
	id := event.ConnID(0)
	for i := range maxPools + 300 {
		conns = append(conns, oneRequestConn(id, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), 0))
		id++
	}
	for i := range 100 {
		conns = append(conns, oneRequestConn(id, "10.200.0.1", i))
		id++
	}
	for _, shards := range []int{1, 3} {
		st := observeAll(conns, shards)
		sizes := map[string]int{"pool table": ownPools(st.a.tables.pools), "routes": ownPools(st.a.tables.routes)}
		for _, d := range st.a.dets {
			switch d := d.(type) {
			case *churnFold:
				sizes["reconnect_churn"] = ownPools(d.pools)
			case *packetLoss:
				sizes["packet_loss"] = ownPools(d.pools)
			case *requestErrors:
				sizes["request_errors"] = ownPools(d.groups)
			}
		}
		for what, n := range sizes {
			if n != maxPools {
				t.Errorf("%d shards: %s holds %d clients' pools, want %d", shards, what, n, maxPools)
			}
		}
		res := st.Result(dissect.Stats{})
		total, star := 0, -1
		for i, p := range res.Tables.Pools {
			total += p.Connections
			if p.Client == "*" {
				star = i
			}
		}
		if total != len(conns) || star < 0 {
			t.Fatalf("%d shards: %d pool rows hold %d connections (a * row: %v), want all %d", shards, len(res.Tables.Pools), total, star >= 0, len(conns))
		}
		if shards == 1 {
			continue
		}
		// Merged, the pools kept are the first by client: 10.200.0.1's
		// 100 connections, split over the shards, fold whole into "*".
		if got := res.Tables.Pools[star].Connections; got != 400 {
			t.Errorf("the * row holds %d connections, want 400", got)
		}
		checkHeaviest(t, res.Tables.Pools, "10.200.0.1", 100)
		f := findKind(res.Findings, KindReconnectChurn)
		for i := range res.Findings {
			if res.Findings[i].Kind == KindReconnectChurn && strings.HasPrefix(res.Findings[i].Summary, "Client * ") {
				f = &res.Findings[i]
			}
		}
		if folded, _ := f.Metrics["clients_folded"].(string); !strings.Contains(folded, "the heaviest: 10.200.0.1 (100 to ") {
			t.Errorf("clients_folded = %q, want 10.200.0.1 first with its 100 connections", folded)
		}
	}
}

// checkHeaviest checks that the one "*" row of rows names client first
// among its heaviest, with at least n connections (and at most the
// sketch's bound above), and that no other row names any.
func checkHeaviest(t *testing.T, rows []PoolRow, client string, n int) {
	t.Helper()
	for _, r := range rows {
		switch {
		case r.Client != "*" && r.Heaviest != nil:
			t.Errorf("pool row of %s names heaviest clients: %+v", r.Client, r.Heaviest)
		case r.Client != "*":
		case len(r.Heaviest) == 0 || len(r.Heaviest) > heavyHittersK:
			t.Errorf("the * row names %d heaviest clients, want 1 to %d", len(r.Heaviest), heavyHittersK)
		case r.Heaviest[0].Client != client || r.Heaviest[0].Min != n || r.Heaviest[0].Max < n || r.Heaviest[0].Max > n+r.Connections/heavyHittersK:
			t.Errorf("the * row's heaviest client is %+v, want %s with %d connections", r.Heaviest[0], client, n)
		}
	}
}

// TestPoolsFoldMergeOrder checks that states merged past maxPools give
// the same result in any grouping, as Beam may combine them: three
// states over different clients, two of them each with maxPools clients
// of their own and more folded into "*".
func TestPoolsFoldMergeOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("folds 100,000 connections")
	}
	state := func(part int) *State {
		s := NewState(DefaultConfig())
		id := event.ConnID(part * 100000)
		add := func(client string, conns int) {
			for i := range conns {
				s.Observe(oneRequestConn(id, client, i))
				id++
			}
		}
		switch part {
		case 0, 1:
			for i := range maxPools + 40 {
				add(fmt.Sprintf("10.%d.%d.%d", part, i>>8&255, i&255), 1+max(0, i-maxPools)%5)
			}
		case 2:
			for i := range 30 {
				add(fmt.Sprintf("10.250.0.%d", i), 4)
			}
		}
		return s
	}
	result := func(order [3]int, rightFirst bool) string {
		a, b, c := state(order[0]), state(order[1]), state(order[2])
		if rightFirst {
			b.Merge(c)
			a.Merge(b)
		} else {
			a.Merge(b)
			a.Merge(c)
		}
		j, err := json.Marshal(a.Result(dissect.Stats{}))
		if err != nil {
			t.Fatal(err)
		}
		return string(j)
	}
	want := result([3]int{0, 2, 1}, false)
	for _, g := range []struct {
		order      [3]int
		rightFirst bool
	}{{[3]int{0, 1, 2}, false}, {[3]int{0, 1, 2}, true}, {[3]int{2, 1, 0}, false}, {[3]int{1, 2, 0}, true}} {
		if got := result(g.order, g.rightFirst); got != want {
			t.Errorf("merged as %v (right first: %v): the result differs", g.order, g.rightFirst)
		}
	}
}

// ownPools counts the pools of m that are one client's, not "*".
func ownPools[K foldableKey[K], V any](m map[K]*V) int {
	n := 0
	for k := range m {
		if k != k.folded() {
			n++
		}
	}
	return n
}

// TestChurnPastKeepMerges checks that a pool past churnKeep connections
// keeps exact counts and says which figures are over the connections
// kept, and that shards of it merge into the same result.
func TestChurnPastKeepMerges(t *testing.T) {
	n := churnKeep*2 + 500
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i] = oneRequestConn(event.ConnID(i), "10.0.0.5", i)
	}
	whole := observeAll(conns, 1).Result(dissect.Stats{})
	f := findKind(whole.Findings, KindReconnectChurn)
	if f == nil {
		t.Fatal("no reconnect_churn finding")
	}
	for name, want := range map[string]float64{"connections": float64(n), "requests": float64(n), "one_request_conns": float64(n),
		"client_ports": float64(n), "connections_listed": churnKeep} {
		if got := metric(t, *f, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if _, ok := f.Metrics["estimated"]; !ok {
		t.Error("no estimated metric past churnKeep")
	}
	if len(f.Connections) != churnKeep {
		t.Errorf("connections listed = %d, want %d", len(f.Connections), churnKeep)
	}
	want := resultJSON(t, whole)
	for _, shards := range []int{2, 3, 7} {
		if got := resultJSON(t, observeAll(conns, shards).Result(dissect.Stats{})); string(got) != string(want) {
			t.Errorf("%d shards: result differs\n got: %s\nwant: %s", shards, firstDiff(got, want), firstDiff(want, got))
		}
	}
}

// TestHandshakeSketch checks handshake_latency past hsExact samples to
// one server: the median and the slow handshakes come from the sketch
// and the slowest kept, marked as estimates, and shards merge to the
// same figures.
func TestHandshakeSketch(t *testing.T) {
	n := 3 * hsExact
	var conns []*Conn
	for i := range n {
		c := conn(event.ConnID(i), fmt.Sprintf("10.1.%d.%d:40000", i>>8&255, i&255), "10.0.0.9:443", uint64(i)*10+1,
			time.Duration(i)*time.Millisecond, time.Duration(i)*time.Millisecond+time.Second)
		v := 10 + float64(i%7)*0.5 // 10 to 13 ms
		if i%1000 == 999 {
			v = 2000 // slow: 12 of them
		}
		c.TCP.HandshakeRTTMS = &v
		conns = append(conns, c)
	}
	res := observeAll(conns, 1).Result(dissect.Stats{})
	f := findKind(res.Findings, KindHandshakeLatency)
	if f == nil {
		t.Fatal("no handshake_latency finding")
	}
	if got := metric(t, *f, "samples"); got != float64(n) {
		t.Errorf("samples = %v, want %d", got, n)
	}
	// The true median is 11.5 ms; the sketch's is within 1 %.
	if got := metric(t, *f, "median_ms"); math.Abs(got-11.5)/11.5 > sketchAlpha {
		t.Errorf("median_ms = %v, want 11.5 within %g", got, sketchAlpha)
	}
	if got := metric(t, *f, "slow"); got != 12 {
		t.Errorf("slow = %v, want 12", got)
	}
	if len(f.Connections) != 12 || f.Severity != Warning {
		t.Errorf("connections %v, severity %v: want the 12 slow ones, a warning (latency is a cost)", f.Connections, f.Severity)
	}
	if est, _ := f.Metrics["estimated"].(string); !strings.Contains(est, "relative error at most 1%") {
		t.Errorf("estimated = %q", est)
	}
	a, _ := json.Marshal(res.Findings)
	b, _ := json.Marshal(observeAll(conns, 3).Result(dissect.Stats{}).Findings)
	if string(a) != string(b) {
		t.Errorf("3 shards: findings differ\n got: %s\nwant: %s", firstDiff(b, a), firstDiff(a, b))
	}
}

// TestQuantileSketch checks the sketch's bound on every quantile of a
// skewed sample, and that merging is exact.
func TestQuantileSketch(t *testing.T) {
	var vals []float64
	var whole, left, right quantileSketch
	for i := range 10000 {
		v := math.Exp(float64(i%997) / 100) // 1 to ~20,000
		vals = append(vals, v)
		whole.add(v)
		if i%3 == 0 {
			left.add(v)
		} else {
			right.add(v)
		}
	}
	left.merge(&right)
	if fmt.Sprint(left.n, left.zeros, left.buckets()) != fmt.Sprint(whole.n, whole.zeros, whole.buckets()) {
		t.Errorf("merged sketch differs from the whole's")
	}
	slices.Sort(vals)
	want := vals[(len(vals)-1)/2]
	if got := whole.median(); math.Abs(got-want)/want > sketchAlpha {
		t.Errorf("median = %v, want %v within %g", got, want, sketchAlpha)
	}
}

// TestQuantileSketchBuckets checks the sketch's window of buckets
// against a map of bucket counts, on values that make it grow down and
// up, ones too far for it (tiny and huge, +Inf) and zeros, added in
// any order and merged.
func TestQuantileSketchBuckets(t *testing.T) {
	tests := []struct {
		name string
		vals []float64
	}{
		{"ascending", []float64{1, 2, 4, 8, 1e3, 1e6, 1e9}},
		{"descending", []float64{1e9, 1e6, 1e3, 8, 4, 2, 1}},
		{"zeros", []float64{0, -1, math.NaN(), 1e-10, 5}},
		{"too far", []float64{1, 1e-8, 1e30, 1e-8, 1e200, math.Inf(1), 1e300, 2}},
		{"far then near", []float64{1e200, 1e-8, 1e100, 1e120, 3}},
		{"few far apart", []float64{1e-6, 3.6e9}},
		{"far taken in", append(slices.Repeat([]float64{1, 1e5}, 40), 1e3, 1e-3)},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var random []float64
	for range 5000 {
		random = append(random, math.Exp(rnd.NormFloat64()*20))
	}
	tests = append(tests, struct {
		name string
		vals []float64
	}{"random", random})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := map[int32]int{}
			var whole, a, b quantileSketch
			for i, v := range tt.vals {
				whole.add(v)
				if i%2 == 0 {
					a.add(v)
				} else {
					b.add(v)
				}
				if v > sketchMin {
					want[sketchIndex(v)]++
				}
			}
			b.merge(&a)
			for _, s := range []*quantileSketch{&whole, &b} {
				got := map[int32]int{}
				prev := int32(math.MinInt32)
				for _, k := range s.buckets() {
					if k.i <= prev {
						t.Fatalf("buckets out of order: %d after %d", k.i, prev)
					}
					prev = k.i
					got[k.i] = k.n
				}
				if !maps.Equal(got, want) {
					t.Errorf("buckets %v, want %v", got, want)
				}
				if len(s.bins) > min(sketchMaxBins, 32+8*s.n) {
					t.Errorf("window of %d buckets for %d values", len(s.bins), s.n)
				}
				for f := range s.far {
					if j := int(f) - int(s.lo); j >= 0 && j < len(s.bins) {
						t.Errorf("far bucket %d inside the window [%d, %d)", f, s.lo, int(s.lo)+len(s.bins))
					}
				}
				if s.n != len(tt.vals) {
					t.Errorf("n = %d, want %d", s.n, len(tt.vals))
				}
				if q := s.quantile(1); math.IsInf(q, 0) || math.IsNaN(q) {
					t.Errorf("max quantile = %v", q)
				}
			}
		})
	}
}

// TestHeavyHitters checks that the heaviest clients are kept among many
// light ones, in any merge.
func TestHeavyHitters(t *testing.T) {
	var a, b heavyHitters
	heavy := netip.MustParseAddr("192.0.2.1")
	for i := range 5000 {
		h := &a
		if i%2 == 1 {
			h = &b
		}
		h.add(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 1)
		if i%10 == 0 {
			h.add(heavy, 1)
		}
	}
	a.merge(&b)
	top := a.top()
	if top[0].client != heavy || top[0].n-top[0].err > 500 || top[0].n < 500 {
		t.Errorf("top = %+v, want %v with 500 connections", top[0], heavy)
	}
}

// TestHeavyHittersSpaceSaving holds heavyHitters to Space-Saving as
// written plainly (a scan for the smallest counter, ties to the first
// client in netip.Addr's order), on random sequences of IPv4, IPv6 and
// zoned addresses with many ties.
func TestHeavyHittersSpaceSaving(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	pool := []netip.Addr{netip.Addr{}}
	for i := range 40 {
		pool = append(pool, netip.AddrFrom4([4]byte{10, 0, byte(i / 7), byte(i)}),
			netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(i)}),
			netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(i)}).WithZone(fmt.Sprint("eth", i%3)))
	}
	for round := range 300 {
		var h heavyHitters
		var ref []hitter
		for range rng.IntN(400) {
			c, n := pool[rng.IntN(len(pool))], 1+rng.IntN(3)*rng.IntN(2)
			h.add(c, n)
			if i := slices.IndexFunc(ref, func(x hitter) bool { return x.client == c }); i >= 0 {
				ref[i].n += n
				continue
			}
			if len(ref) < heavyHittersK {
				ref = append(ref, hitter{c, n, 0})
				continue
			}
			lo := 0
			for i := range ref {
				if ref[i].n < ref[lo].n || ref[i].n == ref[lo].n && ref[i].client.Less(ref[lo].client) {
					lo = i
				}
			}
			ref[lo] = hitter{c, ref[lo].n + n, ref[lo].n}
		}
		sortHitters(ref)
		if got := h.top(); !reflect.DeepEqual(got, ref) && len(got)+len(ref) > 0 {
			t.Fatalf("round %d: top = %v, want %v", round, got, ref)
		}
	}
}

// TestTypedEvents checks that the Collector reads events' typed flags
// and codes: the TCP analysis bits, the SYN/FIN/RST control flags, a
// PING's ACK and an RST_STREAM's error code, read or lost (HasCode).
func TestTypedEvents(t *testing.T) {
	k := NewCollector(DefaultConfig())
	at := func(n uint64) event.Ref { return event.Ref{Frame: n} }
	for _, e := range []event.Event{
		{Ref: at(1), Proto: event.ProtoTCP, Kind: uint16(layer.SYN)},
		{Ref: at(2), Proto: event.ProtoTCP, Dir: event.S2C, Kind: uint16(layer.SYN | layer.ACK)},
		{Ref: at(3), Proto: event.ProtoTCP, Dir: event.S2C, Kind: uint16(layer.ACK), Bits: uint32(tcp.ZeroWindow | tcp.WindowFull)},
		{Ref: at(4), Proto: event.ProtoHTTP2, Kind: uint16(http2.FramePing), Bits: uint32(http2.FlagAck)},
		{Ref: at(5), Proto: event.ProtoHTTP2, Kind: uint16(http2.FrameRSTStream), Stream: 1, Code: uint32(http2.ErrCodeCancel), HasCode: true, Error: "CANCEL"},
		{Ref: at(6), Proto: event.ProtoHTTP2, Kind: uint16(http2.FrameRSTStream), Stream: 3}, // code lost
		{Ref: at(7), Proto: event.ProtoTCP, Kind: uint16(layer.FIN | layer.ACK)},
		{Ref: at(8), Proto: event.ProtoTCP, Dir: event.S2C, Kind: uint16(layer.RST | layer.ACK)},
	} {
		k.Event(&e)
	}
	c := k.openConn(0)
	if len(c.SYNs) != 1 || len(c.SYNACKs) != 1 || c.FIN[event.C2S] == nil || c.RST[event.S2C] == nil || c.FIN[event.S2C] != nil {
		t.Errorf("control flags: SYNs %v, SYN-ACKs %v, FIN %v, RST %v", c.SYNs, c.SYNACKs, c.FIN, c.RST)
	}
	if len(c.ZeroWindows[event.S2C]) != 1 || len(c.WindowFulls[event.S2C]) != 1 {
		t.Errorf("analysis bits: zero windows %v, window fulls %v", c.ZeroWindows, c.WindowFulls)
	}
	if len(c.Records.Pings) != 1 || !c.Records.Pings[0].Ack {
		t.Errorf("pings: %+v", c.Records.Pings)
	}
	rs := c.Records.Resets
	if len(rs) != 2 || rs[0].Code != http2.ErrCodeCancel || rs[0].Lost || rs[0].CodeName() != "CANCEL" || !rs[1].Lost || rs[1].CodeName() != "" || rs[1].noError() {
		t.Errorf("resets: %+v", rs)
	}
}

// TestStateHeapFlat checks that the analysis state stops growing with
// the connections it folds once its pools are past their bounds: the
// live heap after 60,000 more short connections of one pool grows by
// less than 32 bytes a connection (it measures about 0).
func TestStateHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("folds 120,000 connections")
	}
	s := NewState(DefaultConfig())
	const n = 60000
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for i := range n {
		s.Observe(oneRequestConn(event.ConnID(i), "10.0.0.5", i))
	}
	before := heap()
	for i := n; i < 2*n; i++ {
		s.Observe(oneRequestConn(event.ConnID(i), "10.0.0.5", i))
	}
	after := heap()
	per := (float64(after) - float64(before)) / n
	t.Logf("live heap %d → %d bytes: %.1f bytes per further connection", before, after, per)
	if per > 32 {
		t.Errorf("the state grows by %.1f bytes per connection, want < 32", per)
	}
	runtime.KeepAlive(s)
}

// TestStateObserveAllocs bounds the allocations of folding one more
// connection of a pool already seen (the connections themselves built
// beforehand): what a capture of short connections costs per connection
// in the analysis, past its pools' first connections.
func TestStateObserveAllocs(t *testing.T) {
	const warm, n = 20000, 5000
	conns := make([]*Conn, warm+n)
	for i := range conns {
		conns[i] = oneRequestConn(event.ConnID(i), "10.0.0.5", i)
	}
	s := NewState(DefaultConfig())
	for _, c := range conns[:warm] {
		s.Observe(c)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, c := range conns[warm:] {
		s.Observe(c)
	}
	runtime.ReadMemStats(&after)
	per := float64(after.Mallocs-before.Mallocs) / n
	t.Logf("%.2f allocations per connection", per)
	if per > maxObserveAllocs {
		t.Errorf("%.2f allocations per connection folded, want at most %d", per, maxObserveAllocs)
	}
}

// TestDurSet checks durSet past hsExact: exact minimum and maximum, the
// median within the sketch's bound, and the same figures when merged
// from parts.
func TestDurSet(t *testing.T) {
	var whole durSet
	parts := make([]durSet, 3)
	var all []time.Duration
	for i := range 3 * hsExact {
		v := time.Duration(1+i%1000) * time.Millisecond
		all = append(all, v)
		whole.add(v)
		parts[i%3].add(v)
	}
	parts[2].merge(&parts[0])
	parts[1].merge(&parts[2])
	lo, mid, hi, est := whole.stats()
	wlo, wmid, whi := durationStats(slices.Clone(all))
	if !est || lo != wlo || hi != whi || math.Abs(float64(mid-wmid))/float64(wmid) > sketchAlpha {
		t.Errorf("stats = %v %v %v %v, want %v %v %v estimated", lo, mid, hi, est, wlo, wmid, whi)
	}
	if mlo, mmid, mhi, _ := parts[1].stats(); mlo != lo || mmid != mid || mhi != hi {
		t.Errorf("merged stats = %v %v %v, want %v %v %v", mlo, mmid, mhi, lo, mid, hi)
	}
}

// maxObserveAllocs bounds TestStateObserveAllocs: 4 today.
const maxObserveAllocs = 6
