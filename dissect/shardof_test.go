package dissect

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// TestShardOfAddsUp checks, on every project and corpus capture, that
// the runs of a capture split over K runs (K = 2, 3; ShardOf, with and
// without goroutine shards inside each run) track each connection once,
// at the first frame the whole run gives it: their Stats add up to the
// whole run's, and MergeConnIDs over their IDs gives the whole run's
// connections their IDs.
func TestShardOfAddsUp(t *testing.T) {
	ctx := context.Background()
	for _, f := range shardCaptures(t) {
		var firsts []event.ConnID // the whole run's connections, by first frame
		whole, err := Run(ctx, []string{f}, Options{Dissect: true, Keys: keyLogFor(t, f),
			OnConn: func(c *tcp.Conn, _ *App) { firsts = append(firsts, event.ConnID(c.Summary.FirstFrame)) }})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		slices.Sort(firsts)
		whole.IDs = nil
		for _, k := range []int{2, 3} {
			for _, local := range []int{0, 2} {
				var sum Stats
				var ids []*ConnIDs
				for i := range k {
					st, err := Run(ctx, []string{f}, Options{Dissect: true, Keys: keyLogFor(t, f), Shards: local, ShardOf: ShardOf{Index: i, Count: k}})
					if err != nil {
						t.Fatalf("%s: shard %d of %d: %v", f, i, k, err)
					}
					if i > 0 && (st.Packets != 0 || st.Bytes != 0 || len(st.Faults) != 0) {
						t.Errorf("%s: shard %d of %d counts what the reader reads", f, i, k)
					}
					ids = append(ids, st.IDs)
					sum.Add(st)
				}
				if a, b := statsJSON(t, sum), statsJSON(t, whole); a != b {
					t.Errorf("%s: %d runs (%d goroutines each) add up to\n%s\nwant\n%s", f, k, local, a, b)
				}
				m := MergeConnIDs(ids...)
				if !slices.Equal(m.Provisional(), firsts) {
					t.Errorf("%s: %d runs: %d connections, first frames differ from the whole run's %d", f, k, m.Len(), len(firsts))
				}
			}
		}
	}
}

func statsJSON(t *testing.T, st Stats) string {
	t.Helper()
	var faults []string
	for _, f := range st.Faults {
		faults = append(faults, f.Error())
	}
	b, err := json.Marshal(struct {
		P, B   uint64
		L, T   any
		F      []string
		S, SED int
	}{st.Packets, st.Bytes, st.Layer, st.TCP, faults, st.Secrets, st.SecretErrorsDropped})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestShardOfRefused checks that a shard that does not exist is an
// error.
func TestShardOfRefused(t *testing.T) {
	for _, s := range []ShardOf{{Index: 3, Count: 3}, {Index: -1, Count: 2}, {Index: 0, Count: -1}} {
		if _, err := Run(context.Background(), []string{"../testdata/pcaps/grpc-goaway.pcapng"}, Options{ShardOf: s}); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}
