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
	// bins counts buckets lo, lo+1, … : a value's bucket is an index
	// into it, not a map lookup (a map cost a sixth of the route
	// table's time on 250k connections). far counts the buckets the
	// window cannot take yet (see grow): values far apart in a sketch
	// of few, or apart by a factor over γ^sketchMaxBins ≈ e^82.
	lo    int32
	bins  []int
	far   map[int32]int
	zeros int
	n     int
}

// sketchMaxBins bounds a quantileSketch's window of buckets.
const sketchMaxBins = 4096

// sketchMin is the smallest positive value a quantileSketch tells from
// zero.
const sketchMin = 1e-9

func (s *quantileSketch) add(v float64) {
	s.n++
	if !(v > sketchMin) {
		s.zeros++
		return
	}
	s.addBucket(sketchIndex(v), 1)
}

// sketchIndex returns the bucket of v > sketchMin. Values past
// γ^sketchTop (about 1e260, and +Inf) count in bucket sketchTop, whose
// value is finite.
func sketchIndex(v float64) int32 {
	return int32(min(math.Ceil(math.Log(v)/logGamma), sketchTop))
}

// sketchTop is the highest bucket of a quantileSketch.
const sketchTop = 30000

// addBucket counts n more values in bucket i.
func (s *quantileSketch) addBucket(i int32, n int) {
	j := int(i) - int(s.lo)
	if j < 0 || j >= len(s.bins) {
		if !s.grow(i) {
			if s.far == nil {
				s.far = map[int32]int{}
			}
			s.far[i] += n
			return
		}
		j = int(i) - int(s.lo)
	}
	s.bins[j] += n
}

// grow widens the window to take bucket i, with room to spare on that
// side, and reports whether it could: the window is at most
// sketchMaxBins wide, and at most 32+8n for n values, so that a sketch
// of a few values far apart (10,000 pools × 32 routes of them) stays
// as small as the map it replaced. Buckets kept in far that the wider
// window covers move into it.
func (s *quantileSketch) grow(i int32) bool {
	limit := min(sketchMaxBins, 32+8*s.n)
	if s.bins == nil {
		s.lo = i - 8
		s.bins = make([]int, 32)
		return true
	}
	lo, hi := int(s.lo), int(s.lo)+len(s.bins)-1
	if int(i) < lo {
		if hi-int(i) >= limit {
			return false
		}
		lo = max(int(i)-max(len(s.bins)/2, 8), hi-limit+1)
	} else {
		if int(i)-lo >= limit {
			return false
		}
		hi = min(int(i)+max(len(s.bins)/2, 8), lo+limit-1)
	}
	bins := make([]int, hi-lo+1)
	copy(bins[int(s.lo)-lo:], s.bins)
	s.lo, s.bins = int32(lo), bins
	for f, n := range s.far {
		if j := int(f) - lo; j >= 0 && j < len(bins) {
			bins[j] += n
			delete(s.far, f)
		}
	}
	return true
}

func (s *quantileSketch) merge(o *quantileSketch) {
	s.n += o.n
	s.zeros += o.zeros
	for j, n := range o.bins {
		if n > 0 {
			s.addBucket(o.lo+int32(j), n)
		}
	}
	for i, n := range o.far {
		s.addBucket(i, n)
	}
}

// buckets returns the sketch's non-empty buckets in increasing order.
func (s *quantileSketch) buckets() []sketchBucket {
	bs := make([]sketchBucket, 0, len(s.far)+16)
	for j, n := range s.bins {
		if n > 0 {
			bs = append(bs, sketchBucket{s.lo + int32(j), n})
		}
	}
	if len(s.far) > 0 {
		for i, n := range s.far {
			bs = append(bs, sketchBucket{i, n})
		}
		slices.SortFunc(bs, func(a, b sketchBucket) int { return cmp.Compare(a.i, b.i) })
	}
	return bs
}

// sketchBucket is a bucket of a quantileSketch and its count.
type sketchBucket struct {
	i int32
	n int
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
	bs := s.buckets()
	ws := make([]weighted, 0, len(bs)+1)
	if s.zeros > 0 {
		ws = append(ws, weighted{0, s.zeros})
	}
	for _, b := range bs {
		ws = append(ws, weighted{sketchValue(b.i), b.n})
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
	for _, b := range s.buckets() {
		if sketchValue(b.i) > x {
			n += b.n
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
