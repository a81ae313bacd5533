package analyze

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// sketchAlpha is the relative error of a quantileSketch's values.
const sketchAlpha = 0.01

// sketchGamma is the ratio of a quantileSketch's bucket bounds,
// (1+α)/(1−α).
var sketchGamma = (1 + sketchAlpha) / (1 - sketchAlpha)

// logGamma is math.Log(sketchGamma), computed once: add divides by it
// for every value.
var logGamma = math.Log(sketchGamma)

// quantileSketch is a mergeable quantile sketch of positive values (a
// DDSketch): a value v > 0 counts in bucket ⌈log_γ v⌉ and is read back
// as 2γ^i/(γ+1), within a relative error α of v, so that a quantile it
// returns is within α of a value of that rank. Values at or below
// sketchMin count as zero. Its size grows with the logarithm of the
// values' range (about 1,200 buckets from 1 µs to an hour in
// milliseconds), never with their number; merging two sketches adds
// their buckets, which is exact, associative and commutative.
type quantileSketch struct {
	counts map[int32]int
	zeros  int
	n      int
}

// sketchMin is the smallest positive value a quantileSketch tells from
// zero.
const sketchMin = 1e-9

func (s *quantileSketch) add(v float64) {
	s.n++
	if !(v > sketchMin) {
		s.zeros++
		return
	}
	if s.counts == nil {
		s.counts = map[int32]int{}
	}
	s.counts[int32(math.Ceil(math.Log(v)/logGamma))]++
}

func (s *quantileSketch) merge(o *quantileSketch) {
	s.n += o.n
	s.zeros += o.zeros
	if len(o.counts) > 0 && s.counts == nil {
		s.counts = map[int32]int{}
	}
	for i, n := range o.counts {
		s.counts[i] += n
	}
}

// sketchValue returns the value that stands for bucket i.
func sketchValue(i int32) float64 {
	return 2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1)
}

// weighted is a value and how many times it counts.
type weighted struct {
	v float64
	n int
}

// values returns the sketch's values in increasing order, with counts.
func (s *quantileSketch) values() []weighted {
	ws := make([]weighted, 0, len(s.counts)+1)
	if s.zeros > 0 {
		ws = append(ws, weighted{0, s.zeros})
	}
	idx := make([]int32, 0, len(s.counts))
	for i := range s.counts {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		ws = append(ws, weighted{sketchValue(i), s.counts[i]})
	}
	return ws
}

// weightedMedian returns the value of rank ⌊(n−1)/2⌋ (0-based) of ws,
// sorted by value, n the sum of the counts; 0 when empty.
func weightedMedian(ws []weighted) float64 {
	n := 0
	for _, w := range ws {
		n += w.n
	}
	rank := (n - 1) / 2
	for _, w := range ws {
		if rank < w.n {
			return w.v
		}
		rank -= w.n
	}
	return 0
}

// quantile returns the estimated value of nearest rank ⌈p·n⌉ (p in
// (0, 1]); 0 when empty.
func (s *quantileSketch) quantile(p float64) float64 {
	rank := max(int(math.Ceil(p*float64(s.n)))-1, 0)
	for _, w := range s.values() {
		if rank < w.n {
			return w.v
		}
		rank -= w.n
	}
	return 0
}

// median returns the estimated median.
func (s *quantileSketch) median() float64 { return weightedMedian(s.values()) }

// mad returns the estimated median absolute deviation from median().
func (s *quantileSketch) mad() float64 {
	ws := s.values()
	med := weightedMedian(ws)
	dev := make([]weighted, len(ws))
	for i, w := range ws {
		dev[i] = weighted{math.Abs(w.v - med), w.n}
	}
	slices.SortFunc(dev, func(a, b weighted) int { return cmp.Compare(a.v, b.v) })
	return weightedMedian(dev)
}

// countAbove returns the estimated number of values above x.
func (s *quantileSketch) countAbove(x float64) int {
	n := 0
	for i, c := range s.counts {
		if sketchValue(i) > x {
			n += c
		}
	}
	if x < 0 {
		n += s.zeros
	}
	return n
}

// durSet holds durations for their minimum, median and maximum: every
// one up to hsExact, then a quantileSketch of them (in nanoseconds) with
// the exact minimum and maximum. It merges.
type durSet struct {
	exact  []time.Duration
	sk     *quantileSketch
	n      int
	lo, hi time.Duration
}

func (d *durSet) add(vs ...time.Duration) {
	for _, v := range vs {
		if d.n == 0 || v < d.lo {
			d.lo = v
		}
		if d.n == 0 || v > d.hi {
			d.hi = v
		}
		d.n++
		if d.sk != nil {
			d.sk.add(float64(v))
			continue
		}
		d.exact = append(d.exact, v)
		if len(d.exact) > hsExact {
			d.sk = &quantileSketch{}
			for _, x := range d.exact {
				d.sk.add(float64(x))
			}
			d.exact = nil
		}
	}
}

func (d *durSet) merge(o *durSet) {
	if o.sk == nil {
		d.add(o.exact...)
		return
	}
	if d.n == 0 || o.lo < d.lo {
		d.lo = o.lo
	}
	if d.n == 0 || o.hi > d.hi {
		d.hi = o.hi
	}
	if d.sk == nil {
		d.sk = &quantileSketch{}
		for _, x := range d.exact {
			d.sk.add(float64(x))
		}
		d.exact = nil
	}
	d.n += o.n
	d.sk.merge(o.sk)
}

// stats returns durationStats of the durations, the median estimated
// (relative error sketchAlpha) when estimated is set.
func (d *durSet) stats() (lo, mid, hi time.Duration, estimated bool) {
	if d.sk == nil {
		lo, mid, hi = durationStats(slices.Clone(d.exact))
		return lo, mid, hi, false
	}
	return d.lo, time.Duration(d.sk.median()), d.hi, true
}
