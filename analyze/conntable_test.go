package analyze

import (
	"math/rand/v2"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// TestConnTable checks a connTable against a map under the patterns the
// Collector meets: IDs in increasing order, mostly forgotten soon, some
// kept long (pushed out of the window), gaps wider than the window (a
// shard's IDs), and IDs below the window.
func TestConnTable(t *testing.T) {
	tests := []struct {
		name                string
		ops                 int
		step                func(r *rand.Rand) event.ConnID // the next ID's distance
		life                int                             // how many later IDs an ID lives, at most
		longShare, lowShare float64
	}{
		{"short", 200_000, func(*rand.Rand) event.ConnID { return 1 }, 50, 0, 0},
		{"flood", 300_000, func(*rand.Rand) event.ConnID { return 1 }, 70_000, 0, 0},
		{"long ones", 300_000, func(*rand.Rand) event.ConnID { return 1 }, 100, 0.01, 0},
		{"frame numbers", 100_000, func(r *rand.Rand) event.ConnID { return 1 + event.ConnID(r.IntN(20)) }, 200, 0.01, 0},
		{"gaps", 50_000, func(r *rand.Rand) event.ConnID {
			if r.IntN(100) == 0 {
				return connTableMax + event.ConnID(r.IntN(3*connTableMax))
			}
			return 1
		}, 300, 0.02, 0},
		{"below", 50_000, func(*rand.Rand) event.ConnID { return 1 }, 100, 0.01, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var tab connTable[int]
			want := map[event.ConnID]int{}
			ends := map[int][]event.ConnID{} // op -> IDs to delete then
			var id event.ConnID
			check := func(id event.ConnID) {
				t.Helper()
				v, ok := tab.get(id)
				w, wok := want[id]
				if v != w || ok != wok {
					t.Fatalf("get(%d) = %d, %v; want %d, %v", id, v, ok, w, wok)
				}
			}
			for op := range tt.ops {
				id += tt.step(r)
				nid := id
				if r.Float64() < tt.lowShare && id > 1000 {
					nid = id - 1 - event.ConnID(r.IntN(1000))
				}
				tab.set(nid, op)
				want[nid] = op
				end := op + 1 + r.IntN(tt.life)
				if r.Float64() < tt.longShare {
					end = op + tt.ops/2
				}
				ends[end] = append(ends[end], nid)
				for _, d := range ends[op] {
					check(d)
					tab.delete(d)
					delete(want, d)
					check(d)
				}
				delete(ends, op)
				if op%97 == 0 {
					check(id - event.ConnID(r.IntN(2*connTableMax)))
				}
				if tab.len() != len(want) {
					t.Fatalf("op %d: len %d, want %d", op, tab.len(), len(want))
				}
			}
			seen := 0
			tab.each(func(id event.ConnID, v int) {
				seen++
				if want[id] != v {
					t.Errorf("each: %d = %d, want %d", id, v, want[id])
				}
			})
			if seen != len(want) {
				t.Errorf("each saw %d, want %d", seen, len(want))
			}
			if len(tab.slots) > connTableMax {
				t.Errorf("the ring grew to %d slots, past %d", len(tab.slots), connTableMax)
			}
		})
	}
}
