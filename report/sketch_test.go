package report

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// refSketchAdd is poolSketch.add as the Misra-Gries summary states it.
func refSketchAdd(s *poolSketch, k overviewKey) {
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

// TestPoolSketchAdd: add counts as the plain Misra-Gries summary does,
// over floods of distinct pools mixed with a few busy ones.
func TestPoolSketchAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	server := netip.MustParseAddrPort("10.0.0.1:443")
	key := func(i uint32) overviewKey {
		return overviewKey{netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), server}
	}
	for _, busy := range []float64{0, 0.001, 0.3} {
		var got, want poolSketch
		for i := range 5 * maxSketchPools {
			k := key(uint32(1000 + i))
			if rng.Float64() < busy {
				k = key(uint32(rng.IntN(5)))
			}
			got.add(k)
			refSketchAdd(&want, k)
			if i%97 != 0 && i != 5*maxSketchPools-1 {
				continue
			}
			if got.distinct != want.distinct || got.overflowed != want.overflowed || !maps.Equal(got.counts, want.counts) {
				t.Fatalf("busy %v, add %d: %d pools (distinct %d), want %d (distinct %d)", busy, i, len(got.counts), got.distinct, len(want.counts), want.distinct)
			}
		}
	}
}
