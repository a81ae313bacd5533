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
	if _, ok := s.counts[k]; ok {
		s.counts[k]++
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
	for key, n := range s.counts {
		if n <= 1 {
			delete(s.counts, key)
		} else {
			s.counts[key] = n - 1
		}
	}
}
