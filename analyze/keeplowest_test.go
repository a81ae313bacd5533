package analyze

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
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
