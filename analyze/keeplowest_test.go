package analyze

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// TestKeepLowest checks keepLowest against sorting and cutting, round
// after round as the bounded lists use it, with rising, falling and
// random values.
func TestKeepLowest(t *testing.T) {
	type item struct{ v, id int }
	less := func(a, b item) int { return cmp.Or(cmp.Compare(a.v, b.v), cmp.Compare(a.id, b.id)) }
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 5, 64} {
		for mode := range 4 {
			var got, want []item
			for id := range 40 * n {
				v := id
				switch mode {
				case 1:
					v = -id
				case 2:
					v = r.IntN(50)
				case 3:
					v = r.IntN(1 << 20)
				}
				x := item{v, id}
				got, want = append(got, x), append(want, x)
				if len(got) >= 2*n && r.IntN(3) == 0 || len(got) >= 5*n || id%(3*n+1) == 0 && len(got) >= n {
					got = keepLowest(got, n, less)
					slices.SortFunc(want, less)
					want = want[:n]
					if !slices.Equal(got, want) {
						t.Fatalf("n %d mode %d after %d: got %v, want %v", n, mode, id, got, want)
					}
				}
			}
		}
	}
}

// TestErrMethods checks errMethods against addLabel over a map, the
// labels given as strings and from a reused buffer, and merged from two
// halves.
func TestErrMethods(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 4))
		ref := map[string][2]int{}
		var largest string
		var byString, byBuf, left, right errMethods
		var buf []byte
		for i := range 3000 {
			l := fmt.Sprintf("GET /items/%d", r.IntN(40+i/10))
			if i%97 == 96 {
				l = otherLabel
			}
			n := failedPair(r.IntN(4) == 0)
			addLabel(ref, l, n, addPair, &largest)
			addMethod(&byString, l, n)
			buf = append(buf[:0], l...)
			addMethod(&byBuf, buf, n)
			if r.IntN(2) == 0 {
				addMethod(&left, l, n)
			} else {
				addMethod(&right, l, n)
			}
		}
		for _, l := range right.labels {
			addMethod(&left, l.name, l.n)
		}
		left.other = addPair(left.other, right.other)
		want := errMethods{other: ref[otherLabel]}
		for _, k := range sortedKeys(ref) {
			if k != otherLabel {
				want.labels = append(want.labels, errLabel{k, ref[k]})
			}
		}
		for name, got := range map[string]errMethods{"strings": byString, "buffer": byBuf, "merged": left} {
			if !reflect.DeepEqual(got, want) {
				t.Errorf("seed %d, %s: got %v, want %v", seed, name, got, want)
			}
		}
		if a := testing.AllocsPerRun(100, func() { addMethod(&byBuf, buf, [2]int{1, 0}) }); a != 0 {
			t.Errorf("seed %d: %v allocations counting a label counted already", seed, a)
		}
		past := []byte("GET /items/zz past every label kept")
		if a := testing.AllocsPerRun(100, func() { addMethod(&byBuf, past, [2]int{1, 0}) }); a != 0 {
			t.Errorf("seed %d: %v allocations counting a label as other", seed, a)
		}
	}
}

// TestPeakOpenNanos checks peakOpenNanos against peakOpen, which sorts
// the edges as times (what it replaced), on random spans with many
// shared instants (an end and a start at the same instant do not
// overlap) and on none.
func TestPeakOpenNanos(t *testing.T) {
	// both returns peakOpenNanos and peakOpen of spans in nanoseconds.
	both := func(ns [][2]int64) (got, want int) {
		spans := make([][2]time.Time, len(ns))
		for i, s := range ns {
			spans[i] = [2]time.Time{time.Unix(0, s[0]), time.Unix(0, s[1])}
		}
		return peakOpenNanos(len(ns), func(i int) (int64, int64) { return ns[i][0], ns[i][1] }), peakOpen(spans)
	}
	r := rand.New(rand.NewPCG(7, 8))
	for trial := range 500 {
		ns := make([][2]int64, r.IntN(40))
		for i := range ns {
			s := 1_700_000_000_000_000_000 + int64(r.IntN(20))
			ns[i] = [2]int64{s, s + int64(r.IntN(6))}
		}
		if got, want := both(ns); got != want {
			t.Fatalf("trial %d: peakOpenNanos %d, peakOpen %d on %v", trial, got, want, ns)
		}
	}
	// Times far apart, where doubled offsets would overflow (the
	// reviewer's case), and from one end of the int64 range to the other.
	for _, ns := range [][][2]int64{
		{{0, 10}, {1<<62 - 5, 1<<62 + 5}, {1<<62 + 1, 1<<62 + 3}},
		{{math.MinInt64, math.MinInt64 + 10}, {math.MinInt64 + 5, 0}, {math.MaxInt64 - 3, math.MaxInt64}, {math.MaxInt64 - 2, math.MaxInt64}},
	} {
		if got, want := both(ns); got != want || want != 2 {
			t.Errorf("peakOpenNanos %d, peakOpen %d (want 2) on %v", got, want, ns)
		}
	}
}

// TestParallelFor checks that parallelFor calls fn once for each index
// and raises a call's panic on the caller's goroutine, where a caller
// that recovers (batch) can catch it.
func TestParallelFor(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 1000} {
		seen := make([]int, n)
		parallelFor(n, func(i int) { seen[i]++ })
		for i, k := range seen {
			if k != 1 {
				t.Fatalf("n %d: index %d called %d times", n, i, k)
			}
		}
	}
	defer func() {
		// A takePanic says the call's text (so does the bare value, on
		// one CPU).
		if x := recover(); fmt.Sprint(x) != "boom at 500" {
			t.Fatalf("recovered %v, want the call's panic", x)
		}
	}()
	parallelFor(1000, func(i int) {
		if i == 500 {
			panic(fmt.Sprintf("boom at %d", i))
		}
	})
	t.Fatal("parallelFor returned after a panic")
}

// TestLastEntry checks lastEntry.get against the map it fronts under
// random reads and new entries over a few hot keys and many cold ones.
func TestLastEntry(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m := map[int]*int{}
	var l lastEntry[int, int]
	for i := range 100000 {
		k := r.IntN(6)
		if r.IntN(4) == 0 {
			k = r.IntN(5000)
		}
		if m[k] == nil && r.IntN(3) == 0 {
			v := i
			l.set(m, k, &v)
			continue
		}
		if got, want := l.get(m, k), m[k]; got != want {
			t.Fatalf("step %d: get(%d) = %p, want %p", i, k, got, want)
		}
	}
}

// peakOpen returns the most of spans (first and last frame times) open
// at once: the reference for peakOpenNanos.
func peakOpen(spans [][2]time.Time) int {
	type edge struct {
		t time.Time
		d int
	}
	es := make([]edge, 0, 2*len(spans))
	for _, s := range spans {
		es = append(es, edge{s[0], 1}, edge{s[1], -1})
	}
	slices.SortFunc(es, func(a, b edge) int { return cmp.Or(a.t.Compare(b.t), cmp.Compare(a.d, b.d)) })
	n, peak := 0, 0
	for _, e := range es {
		n += e.d
		peak = max(peak, n)
	}
	return peak
}

// TestPoolSpans checks the pool table's packed lifetimes against keeping
// them all: the first poolSpans by (first frame, id) once twice that many
// were added (in batches, as merges add them), every one otherwise.
func TestPoolSpans(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, total := range []int{0, 1, 100, 2*poolSpans - 1, 2 * poolSpans, 3*poolSpans + 17} {
		var a poolAgg
		var all []poolSpan
		for len(all) < total {
			batch := make([]poolSpan, min(1+r.IntN(3000), total-len(all)))
			for i := range batch {
				first := 1_700_000_000_000_000_000 + int64(r.IntN(50000))
				batch[i] = poolSpan{id: event.ConnID(len(all) + i), first: first, last: first + int64(r.IntN(1000))}
			}
			all = append(all, batch...)
			a.addSpans(batch...)
		}
		want := slices.Clone(all)
		slices.SortFunc(want, poolSpan.compare)
		if total >= 2*poolSpans {
			want = want[:poolSpans]
		}
		got := a.spans.all()
		slices.SortFunc(got, poolSpan.compare)
		if a.over && len(got) > poolSpans {
			got = got[:poolSpans]
		}
		if a.over != (total >= 2*poolSpans) || !slices.Equal(got, want) {
			t.Errorf("%d spans: over %v, kept %d, want %d", total, a.over, len(got), len(want))
		}
	}
}

// TestPackedList: what a packedList holds reads back as it was added, for
// both kinds it packs (a pool's lifetimes, reconnect_churn's
// connections), with deltas that fall as well as rise and every
// optional churnConn field, and set replaces it whole.
func TestPackedList(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	spans := make([]poolSpan, 500)
	conns := make([]churnConn, 500)
	for i := range spans {
		first := r.Int64N(1e12) - 5e11
		spans[i] = poolSpan{id: event.ConnID(r.IntN(1 << 20)), first: first, last: first + r.Int64N(1e10)}
		c := &conns[i]
		c.id, c.port, c.closer, c.flags, c.reasons = event.ConnID(r.IntN(1<<20)), uint16(r.Uint32()), uint8(r.IntN(3)), uint8(r.IntN(16)), connReasons(r.IntN(64))
		c.first, c.last = first, first+r.Int64N(1e10)
		if c.flags&churnSYN != 0 {
			c.syn, c.synFrame = first-r.Int64N(1e6), r.Uint64N(1<<40)
		}
		if c.flags&churnFIN != 0 {
			c.fin = first + r.Int64N(1e10)
		}
		if c.flags&churnIdle != 0 {
			c.idle = first + r.Int64N(1e10)
		}
	}
	var sl spanList
	var cl churnConns
	for i := range spans {
		sl.add(&spans[i])
		cl.add(&conns[i])
	}
	if got := sl.all(); !slices.Equal(got, spans) {
		t.Errorf("spans read back differ: %v", got[:3])
	}
	if got := cl.all(); !slices.Equal(got, conns) {
		t.Errorf("churn connections read back differ: %+v", got[:3])
	}
	cl.set(conns[100:110])
	if got := cl.all(); cl.n != 10 || !slices.Equal(got, conns[100:110]) {
		t.Errorf("after set: %d connections, %+v", cl.n, got)
	}
}
