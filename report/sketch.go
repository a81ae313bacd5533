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
	if n, ok := s.counts[k]; ok {
		if n == 1 {
			s.heavy++
		}
		s.counts[k] = n + 1
		return
	}
	if !s.overflowed {
		s.distinct++
	}
	if len(s.counts) < maxSketchPools {
		s.counts[k] = 1
		return
	}
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
