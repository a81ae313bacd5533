package tcp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/layer"
)

// TestReuseConnsSameAsNew checks that a Tracker reusing finished Conns
// (Options.ReuseConns) tells every handler and callback exactly what one
// making a new Conn for each connection does, on every capture, with the
// default bounds and with tight ones that evict, time out and finish
// connections still in the StreamGrace queue or the young ring.
func TestReuseConnsSameAsNew(t *testing.T) {
	tight := Options{MaxConns: 3, IdleTimeout: 2 * time.Second, ClosedTimeout: time.Second, StreamGrace: 100 * time.Millisecond}
	for _, f := range captures(t) {
		for _, o := range []Options{{}, tight} {
			for _, handlers := range []bool{true, false} {
				want := trackFile(t, f, o, true, handlers, nil)
				o.ReuseConns = true
				got := trackFile(t, f, o, true, handlers, nil)
				o.ReuseConns = false
				if d := logDiff(got, want); d != "" {
					t.Errorf("%s (%+v, handlers %v): %s", f, o, handlers, d)
				}
			}
		}
	}
}

// TestReuseConnsRandom is TestReuseConnsSameAsNew on random segments of
// every flag combination between few endpoints, so that connections are
// finished in every state (halves, evicted, reused ports, in the grace
// queue and the young ring) while others start.
func TestReuseConnsRandom(t *testing.T) {
	flags := []layer.Flags{syn, syn, synack, ack, 0, syn | 0x40 | 0x80, psh, layer.URG, fin, rst, syn | layer.FIN}
	run := func(seed uint64, reuse bool) []string {
		var log []string
		opts := Options{MaxConns: 300, IdleTimeout: 30 * time.Second, ClosedTimeout: 5 * time.Second, StreamGrace: time.Second, ReuseConns: reuse}
		opts.NewHandler = func(c *Conn) StreamHandler { return logger{c.ID, &log} }
		opts.OnStreamsDone = func(c *Conn) { log = append(log, "streams done "+summaryJSON(t, c)) }
		opts.OnFinish = func(c *Conn) { log = append(log, "finish "+summaryJSON(t, c)) }
		tr := NewTracker(opts)
		r := rand.New(rand.NewPCG(seed, 2))
		ts := time.Unix(1e9, 0)
		for frame := uint64(1); frame < 20000; frame++ {
			s := randomSegment(r, frame, &ts, flags)
			c, dir, a := tr.Add(&s)
			log = append(log, fmt.Sprintf("%d: conn %d %s %s", frame, c.ID, dir, a))
		}
		tr.Flush()
		return log
	}
	for seed := range uint64(3) {
		want, got := run(seed, false), run(seed, true)
		if d := logDiff(got, want); d != "" {
			t.Fatalf("seed %d: %s", seed, d)
		}
	}
}

// TestReuseConnsAllocates checks that a SYN flood past MaxConns makes no
// new Conn per SYN once the Tracker reuses the finished ones.
func TestReuseConnsAllocates(t *testing.T) {
	const n = 4096 + 2001
	segs := make([]layer.Segment, n)
	for i := range segs {
		segs[i] = toSegment(seg{dir: c2s, flags: syn}, uint64(i+1))
		segs[i].Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 16), byte(i >> 8)}), uint16(i))
	}
	for _, reuse := range []bool{false, true} {
		tr := NewTracker(Options{MaxConns: 1024, ReuseConns: reuse, OnFinish: func(*Conn) {}})
		next := 0
		add := func() {
			tr.Add(&segs[next])
			next++
		}
		for range 4096 { // past MaxConns: each new SYN finishes the oldest
			add()
		}
		allocs := testing.AllocsPerRun(2000, add)
		if reuse && allocs >= 0.5 || !reuse && allocs < 0.5 {
			t.Errorf("ReuseConns %v: %.2f allocations per SYN past MaxConns", reuse, allocs)
		}
	}
}

// TestReuseConnsAllocatesInGrace checks that short connections retired
// past MaxClosed while still in the StreamGrace queue (a capture of many
// short connections in less than the grace) make no new Conn each once
// the Tracker reuses the finished ones: the queue tells the next
// connection in the Conn from the one it queued by gen.
func TestReuseConnsAllocatesInGrace(t *testing.T) {
	conv := withHandshake(
		seg{dir: c2s, flags: psh, seq: 1, ack: 1, data: "GET / HTTP/1.1\r\n\r\n", ms: 21},
		seg{dir: s2c, flags: psh, seq: 1, ack: 19, data: "HTTP/1.1 200 OK\r\n\r\n", ms: 22},
		seg{dir: s2c, flags: fin, seq: 20, ack: 19, ms: 23},
		seg{dir: c2s, flags: fin, seq: 19, ack: 21, ms: 24},
		seg{dir: s2c, flags: ack, seq: 21, ack: 20, ms: 25},
	)
	const n = 6000
	segs := make([]layer.Segment, 0, n*len(conv))
	for i := range n {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), uint16(1024+i))
		for _, g := range conv {
			s := toSegment(g, uint64(len(segs)+1))
			if g.dir == c2s {
				s.Src = cli
			} else {
				s.Dst = cli
			}
			segs = append(segs, s)
		}
	}
	for _, reuse := range []bool{false, true} {
		tr := NewTracker(Options{MaxConns: 1024, StreamGrace: 5 * time.Second, ReuseConns: reuse,
			NewHandler: func(*Conn) StreamHandler { return discard{} }, OnFinish: func(*Conn) {}})
		next := 0
		conn := func() {
			for range conv {
				tr.Add(&segs[next])
				next++
			}
		}
		for range 2048 { // past MaxClosed (64): each close retires the oldest closed
			conn()
		}
		if tr.grace.len() < 1000 {
			t.Fatalf("ReuseConns %v: %d connections in the grace queue, want them retired while there", reuse, tr.grace.len())
		}
		allocs := testing.AllocsPerRun(2000, conn)
		// One allocation a connection stays: its summary's handshake
		// RTT (a *float64).
		if reuse && allocs >= 1.5 || !reuse && allocs < 1.5 {
			t.Errorf("ReuseConns %v: %.2f allocations per connection", reuse, allocs)
		}
	}
}

// TestGraceQueue checks the StreamGrace queue against a plain slice
// under random pushes and pops, and that a steady stream of them stops
// growing its array.
func TestGraceQueue(t *testing.T) {
	var g graceQueue
	var model []uint32
	r := rand.New(rand.NewPCG(1, 2))
	for i := range uint32(200000) {
		if r.IntN(100) < 52 || len(model) == 0 {
			g.push(graceEntry{gen: i})
			model = append(model, i)
		} else {
			if got := g.front().gen; got != model[0] {
				t.Fatalf("step %d: front %d, want %d", i, got, model[0])
			}
			g.pop()
			model = model[1:]
		}
		if g.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", i, g.len(), len(model))
		}
	}
	g.reset()
	for i := range uint32(64) {
		g.push(graceEntry{gen: i})
	}
	steady := func() {
		g.push(graceEntry{})
		g.pop()
	}
	steady()
	if n := testing.AllocsPerRun(10000, steady); n != 0 {
		t.Errorf("%.2f allocations per push and pop at a steady length", n)
	}
}
