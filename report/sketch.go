package report

// poolSketch counts connections per pool (client address → server) in
// bounded memory, for the HTML overview's busiest pools: exactly while
// there are at most maxSketchPools pools, and past that as the
// Misra-Gries summary does (every pool holding more than 1/maxSketchPools
// of the connections is kept, its count low by at most that share), so
// that a flood from a million spoofed addresses costs no more than a
// few.
type poolSketch struct {
	counts map[overviewKey]int
	// heavy counts the pools in counts above 1, so that a sweep that
	// would delete them all clears the map instead.
	heavy int
	// distinct counts the pools seen while the sketch was exact;
	// overflowed is set once it no longer is (distinct is then a lower
	// bound).
	distinct   int
	overflowed bool
}

// maxSketchPools bounds the pools a poolSketch counts.
const maxSketchPools = 4096

func (s *poolSketch) add(k overviewKey) {
	if s.counts == nil {
		s.counts = map[overviewKey]int{}
	}
	// One hash of k for a new pool, as a flood's all are: the increment
	// adds it at 1 when it is new, which the map's growth tells.
	n := len(s.counts)
	s.counts[k]++
	if len(s.counts) == n {
		if s.counts[k] == 2 {
			s.heavy++
		}
		return
	}
	if !s.overflowed {
		s.distinct++
	}
	if n < maxSketchPools {
		return
	}
	delete(s.counts, k) // not counted: the sweep below takes its 1 away
	s.overflowed = true
	if s.heavy == 0 {
		clear(s.counts) // a flood of distinct pools
		return
	}
	s.heavy = 0
	for key, n := range s.counts {
		switch {
		case n <= 1:
			delete(s.counts, key)
		case n == 2:
			s.counts[key] = 1
		default:
			s.counts[key] = n - 1
			s.heavy++
		}
	}
}

// countHeavy sets heavy from counts.
func (s *poolSketch) countHeavy() {
	s.heavy = 0
	for _, n := range s.counts {
		if n > 1 {
			s.heavy++
		}
	}
}
