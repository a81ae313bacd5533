package report

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// TestFindingConns holds findingConns to a map of each connection's
// findings, on findings whose lists repeat ids and are out of order.
func TestFindingConns(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 13))
	for round := range 200 {
		fs := make([]Finding, rng.IntN(6))
		want := map[event.ConnID][]int{}
		for i := range fs {
			for range rng.IntN(40) {
				c := event.ConnID(rng.IntN(50))
				if round%2 == 1 {
					c += 1<<32 - 60 // ids at the top of the range
				}
				fs[i].Connections = append(fs[i].Connections, c)
				if l := want[c]; len(l) == 0 || l[len(l)-1] != i {
					want[c] = append(want[c], i)
				}
			}
		}
		n := newFindingConns(fs)
		if got := n.count(); got != len(want) {
			t.Fatalf("round %d: count %d, want %d", round, got, len(want))
		}
		ids := slices.Sorted(func(yield func(event.ConnID) bool) {
			for id := range want {
				if !yield(id) {
					return
				}
			}
		})
		for _, max := range []int{0, 1, 3, 1000} {
			if got, w := n.first(max), ids[:min(max, len(ids))]; len(got)+len(w) > 0 && !reflect.DeepEqual(got, w) {
				t.Fatalf("round %d: first(%d) = %v, want %v", round, max, got, w)
			}
		}
		for _, base := range []event.ConnID{0, 1<<32 - 60} {
			for c := base; c < base+51; c++ {
				if got := n.has(c); got != (len(want[c]) > 0) {
					t.Fatalf("round %d: has(%d) = %v", round, c, got)
				}
				if got := n.of(c); !reflect.DeepEqual(got, want[c]) {
					t.Fatalf("round %d: of(%d) = %v, want %v", round, c, got, want[c])
				}
			}
		}
	}
}

// TestEachConnOnly checks that eachConn gives exactly the connections
// only allows, in id order, with the timelines the unfiltered walk gives
// them, from a Builder's spill file and from a report made by New.
func TestEachConnOnly(t *testing.T) {
	f := "../testdata/pcaps/http1-small-pool.pcapng"
	b := NewBuilder(Redaction{})
	t.Cleanup(func() { b.Close() })
	res, in, err := analyze.Stream(context.Background(), []string{f}, dissect.Options{}, analyze.DefaultConfig(), b)
	if err != nil {
		t.Fatal(err)
	}
	spilled := b.Report([]string{f}, in, res)
	res, in, err = analyze.Run(context.Background(), []string{f}, dissect.Options{}, analyze.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Report{"spilled": spilled, "New": New([]string{f}, in, res, Redaction{})} {
		walk := func(only func(event.ConnID) bool) map[event.ConnID]Timeline {
			got := map[event.ConnID]Timeline{}
			last := event.ConnID(0)
			err := r.eachConn(only, func(event.ConnID) bool { return false }, func(_ *connHead, _ *ConnRecord, tl *Timeline) error {
				if len(got) > 0 && tl.Conn <= last {
					t.Errorf("%s: connection %d after %d", name, tl.Conn, last)
				}
				last = tl.Conn
				got[tl.Conn] = *tl
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		all := walk(nil)
		if len(all) < 10 {
			t.Fatalf("%s: %d connections; the fixture changed", name, len(all))
		}
		odd := walk(func(id event.ConnID) bool { return id%2 == 1 })
		for id, tl := range all {
			got, ok := odd[id]
			switch {
			case ok != (id%2 == 1):
				t.Errorf("%s: connection %d given: %v", name, id, ok)
			case ok && !reflect.DeepEqual(got, tl):
				t.Errorf("%s: connection %d's timeline differs when filtered", name, id)
			}
		}
	}
}
