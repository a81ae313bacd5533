package tcp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
)

// TestOATableRandom adds and removes entries at random, with hashes
// crowded into a few home slots and wrapping around the end, and checks
// after each step that every entry is found from its home slot (no
// removal left a gap before an entry) and that the count is right.
func TestOATableRandom(t *testing.T) {
	type item struct{ id int }
	for _, spread := range []uint64{1, 7, 64, 1 << 40} {
		r := rand.New(rand.NewPCG(1, spread))
		var tab oaTable[item]
		in := map[*item]uint64{}
		var all []*item
		find := func(p *item, h uint64) bool {
			mask := uint64(len(tab.slots) - 1)
			for i := h & mask; tab.slots[i].p != nil; i = (i + 1) & mask {
				if tab.slots[i].p == p {
					return true
				}
			}
			return false
		}
		steps := 20000
		if spread < 64 {
			steps = 2000 // every entry in one probe run: quadratic
		}
		for step := range steps {
			if len(all) > 0 && r.IntN(100) < 45 {
				k := r.IntN(len(all))
				p := all[k]
				all[k] = all[len(all)-1]
				all = all[:len(all)-1]
				tab.remove(p, in[p])
				delete(in, p)
			} else {
				p := &item{step}
				// Hashes near the end of the table wrap around.
				h := uint64(minSlots) - 3 + r.Uint64N(spread)
				tab.add(p, h)
				in[p] = h
				all = append(all, p)
			}
			if tab.n != len(in) {
				t.Fatalf("spread %d, step %d: n %d, want %d", spread, step, tab.n, len(in))
			}
			if step%97 == 0 || spread < 64 && step%7 == 0 {
				for p, h := range in {
					if !find(p, h) {
						t.Fatalf("spread %d, step %d: entry %d (hash %d) not reachable", spread, step, p.id, h)
					}
				}
			}
		}
		// Removing what is not there changes nothing.
		tab.remove(&item{-1}, 5)
		if tab.n != len(in) {
			t.Fatalf("spread %d: removing an absent entry changed n", spread)
		}
	}
}

// BenchmarkSYNFlood measures what an unanswered SYN costs the tracker in
// a flood past MaxConns: a new connection, demoted to a half, and the
// oldest half promoted and finished.
func BenchmarkSYNFlood(b *testing.B) {
	tr := NewTracker(Options{MaxConns: 4096, OnFinish: func(*Conn) {}})
	segs := make([]layer.Segment, 1<<16)
	for i := range segs {
		s := toSegment(seg{dir: c2s, flags: syn}, uint64(i+1))
		s.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(20000+i%30000))
		s.Seq = uint32(i) * 7919
		segs[i] = s
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := &segs[i%len(segs)]
		s.Ref.Frame = uint64(i + 1)
		s.Ref.TS = s.Ref.TS.Add(time.Microsecond)
		tr.Add(s)
		i++
	}
}

// TestHashEndForms checks that hashEnd hashes endpoints whose addresses
// have the same 16-byte form alike (tombstones tell endpoints apart by
// hash alone), and others apart.
func TestHashEndForms(t *testing.T) {
	tb := newTable()
	same := func(x, y string) bool {
		return tb.hashEnd(netip.MustParseAddrPort(x)) == tb.hashEnd(netip.MustParseAddrPort(y))
	}
	for _, p := range [][2]string{
		{"192.0.2.1:80", "[::ffff:192.0.2.1]:80"},
		{"[fe80::1%eth0]:80", "[fe80::1]:80"},
		{"[fe80::1%eth0]:80", "[fe80::1%eth1]:80"},
	} {
		if !same(p[0], p[1]) {
			t.Errorf("%s and %s hash apart", p[0], p[1])
		}
	}
	for _, p := range [][2]string{
		{"192.0.2.1:80", "192.0.2.1:81"},
		{"192.0.2.1:80", "192.0.2.2:80"},
		{"[2001:db8::1]:443", "[2001:db8::2]:443"},
		{"[::]:80", "0.0.0.0:80"},
	} {
		if same(p[0], p[1]) {
			t.Errorf("%s and %s hash alike", p[0], p[1])
		}
	}
}

// TestPrehashSameAsPlain: random traffic past MaxConns (every new
// connection evicts one, so that Add hashes its segment's endpoints
// before the eviction, see prehash) is classified and summarised exactly
// as by a tracker that hashes them in lookup only.
func TestPrehashSameAsPlain(t *testing.T) {
	flags := []layer.Flags{syn, syn, syn, synack, ack, ack, psh, fin, rst}
	run := func(seed uint64, plain bool) (log []string, prehashed int) {
		r := rand.New(rand.NewPCG(seed, 2))
		opts := Options{MaxConns: 64, MaxClosed: 8, IdleTimeout: 20 * time.Second, ClosedTimeout: 5 * time.Second, StreamGrace: time.Second}
		opts.OnFinish = func(c *Conn) { log = append(log, "finish "+summaryJSON(t, c)) }
		tr := NewTracker(opts)
		tr.noPrehash = plain
		ts := time.Unix(1e9, 0)
		for frame := uint64(1); frame < 30000; frame++ {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(3))}), uint16(1000+r.IntN(200)))
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 9, 9}), 80)
			if r.IntN(3) == 0 {
				src, dst = dst, src
			}
			ts = ts.Add(time.Duration(r.IntN(30)) * time.Millisecond)
			s := layer.Segment{
				Ref: event.Ref{Frame: frame, TS: ts}, Src: src, Dst: dst,
				Flags: flags[r.IntN(len(flags))], Seq: uint32(r.IntN(3)) * 1000, Ack: uint32(r.IntN(3)) * 1000,
				Win: 1000, WScale: -1,
			}
			if s.Flags == psh {
				s.PayloadLen = 1 + r.IntN(100)
				s.Payload = make([]byte, s.PayloadLen)
			}
			if tr.open.n+tr.hlist.n >= opts.MaxConns {
				prehashed++
			}
			c, dir, a := tr.Add(&s)
			log = append(log, fmt.Sprintf("%d: conn %d %s %s", frame, c.ID, dir, a))
		}
		tr.Flush()
		return log, prehashed
	}
	for seed := range uint64(3) {
		got, n := run(seed, false)
		want, _ := run(seed, true)
		if n < 1000 {
			t.Errorf("seed %d: %d segments added past MaxConns, want many", seed, n)
		}
		if d := logDiff(got, want); d != "" {
			t.Fatalf("seed %d: %s", seed, d)
		}
	}
}

// TestClientHash: the client endpoint's hash newConn keeps (for the
// tombstone retire makes) is hashEnd's of Client, and the pair's hash
// less it that of Server, whichever endpoint sent the first segment and
// however its address is written.
func TestClientHash(t *testing.T) {
	tr := NewTracker(Options{})
	a, b := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("[::ffff:192.0.2.2]:80")
	for i, g := range []struct {
		src, dst netip.AddrPort
		flags    layer.Flags
	}{
		{a, b, syn}, {b, a, synack}, {a, b, ack}, {b, a, ack}, {b, a, syn}, {a, b, synack},
	} {
		port := uint16(1000 + i)
		src, dst := g.src, g.dst
		if src == a {
			src = netip.AddrPortFrom(a.Addr(), port)
		} else {
			dst = netip.AddrPortFrom(a.Addr(), port)
		}
		s := layer.Segment{Ref: event.Ref{Frame: uint64(i + 1), TS: t0}, Src: src, Dst: dst, Flags: g.flags, WScale: -1}
		c, _, _ := tr.Add(&s)
		cli, srv := tr.conns.hashEnd(c.Client), tr.conns.hashEnd(c.Server)
		if !c.cliSet || c.cliHash != cli || c.hash-c.cliHash != srv {
			t.Errorf("%d: %s -> %s %v: client %s, cliSet %v, hashes do not match", i, src, dst, g.flags, c.Client, c.cliSet)
		}
	}
}
