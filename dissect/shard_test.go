package dissect

import (
	"cmp"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// shardCaptures returns the project's test captures and the shared
// corpus's, when it is there.
func shardCaptures(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, g := range []string{"../testdata/pcaps/*.pcap*", "../../shared/corpus/*/*.pcap*", "../../shared/corpus/*/*/*.pcap*", "../../shared/corpus/*/*/*/*.pcap*"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if _, err := os.Stat("../../shared/corpus"); err != nil {
		t.Log("../shared/corpus is absent: testing the project's captures only")
	}
	slices.Sort(files)
	return files
}

// keyLogFor returns a key log with what lies beside capture f: F.keys
// (NAME.keys for NAME.pcapng) or keylog.txt in its directory.
func keyLogFor(t *testing.T, f string) *tls.KeyLog {
	keys := tls.NewKeyLog()
	base := strings.TrimSuffix(strings.TrimSuffix(f, ".gz"), filepath.Ext(strings.TrimSuffix(f, ".gz")))
	for _, k := range []string{base + ".keys", filepath.Join(filepath.Dir(f), "keylog.txt")} {
		if b, err := os.ReadFile(k); err == nil {
			keys.Add(b, k)
		}
	}
	return keys
}

// shardRecord is what a run showed: each connection's records (what
// OnApp and OnConn received), and the events, with final IDs.
type shardRecord struct {
	conns  map[event.ConnID]string
	events []event.Event
	stats  string
	// used counts the shards that had connections.
	used int
}

// collector gathers what one shard's callbacks receive, with provisional
// IDs.
type collector struct {
	conns  map[event.ConnID][]callback
	events []event.Event
}

// callback is one call of OnApp or OnConn: the summary then, and the App
// as JSON.
type callback struct {
	what string
	sum  tcp.Summary
	app  string
}

func (k *collector) hooks(t *testing.T) ShardHooks {
	k.conns = map[event.ConnID][]callback{}
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return ShardHooks{
		Sink: event.SinkFunc(func(e *event.Event) { k.events = append(k.events, keepEvent(e)) }),
		OnApp: func(c *tcp.Conn, app *App) {
			k.conns[c.ID] = append(k.conns[c.ID], callback{"app", c.Summary, js(app)})
		},
		OnConn: func(c *tcp.Conn, app *App) {
			k.conns[c.ID] = append(k.conns[c.ID], callback{"conn", c.Summary, js(app)})
		},
	}
}

// runShards dissects f with n shards (0: without) and returns what the
// callbacks saw, IDs made final. With locked, the callbacks of Options
// are shared by the shards rather than given per shard.
func runShards(t *testing.T, f string, n int, locked bool, to tcp.Options) shardRecord {
	t.Helper()
	opts := Options{Dissect: true, Shards: n, Sequential: true, Keys: keyLogFor(t, f), TCP: to}
	var ks []*collector
	if locked || n <= 1 {
		k := &collector{}
		h := k.hooks(t)
		opts.Sink, opts.OnApp, opts.OnConn = h.Sink, h.OnApp, h.OnConn
		ks = append(ks, k)
	} else {
		ks = make([]*collector, n)
		hooks := make([]ShardHooks, n)
		for i := range ks {
			ks[i] = &collector{}
			hooks[i] = ks[i].hooks(t)
		}
		opts.Shard = func(i int) ShardHooks { return hooks[i] }
	}
	st, err := Run(context.Background(), []string{f}, opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := shardRecord{conns: map[event.ConnID]string{}}
	for _, k := range ks {
		if len(k.conns) > 0 {
			rec.used++
		}
		for id, calls := range k.conns {
			final := st.IDs.Final(id)
			if _, dup := rec.conns[final]; dup {
				t.Errorf("%s, %d shards: connection %d twice", f, n, final)
			}
			var lines []string
			for _, c := range calls {
				c.sum.ID = final
				b, err := json.Marshal(&c.sum)
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, c.what+" "+string(b)+" "+c.app)
			}
			rec.conns[final] = strings.Join(lines, "\n")
		}
		for _, e := range k.events {
			e.Conn = st.IDs.Final(e.Conn)
			rec.events = append(rec.events, e)
		}
	}
	// Events of one connection come in the same order either way;
	// connections of different shards interleave differently.
	slices.SortStableFunc(rec.events, func(a, b event.Event) int {
		return cmp.Or(cmp.Compare(a.Ref.Frame, b.Ref.Frame), cmp.Compare(a.Conn, b.Conn))
	})
	if n > 1 && st.IDs.Len() != int(st.TCP.Conns) {
		t.Errorf("%s, %d shards: %d IDs for %d connections", f, n, st.IDs.Len(), st.TCP.Conns)
	}
	st.IDs = nil
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	rec.stats = string(b)
	return rec
}

// TestShardsSameAsOne: on every test and corpus capture, a run split over
// 2 or 3 shards finds the same connections, with the same IDs, summaries
// and application records, the same events (sorted by frame and
// connection) and the same Stats as a run without shards.
func TestShardsSameAsOne(t *testing.T) {
	// Captures between one pair of addresses (the project's, made on
	// loopback) keep all their connections in one shard; these spread.
	files := append(shardCaptures(t), manyConnsCapture(t, "http1", 3000), manyConnsCapture(t, "syn", 3000))
	spread := 0
	for _, f := range files {
		// Short timeouts make connections time out and be handed over
		// at sweeps of the clock, which the shards must follow.
		short := tcp.Options{IdleTimeout: 2 * time.Second, ClosedTimeout: time.Second, StreamGrace: 100 * time.Millisecond}
		want := runShards(t, f, 0, false, tcp.Options{})
		wantShort := runShards(t, f, 0, false, short)
		for _, c := range []struct {
			n      int
			locked bool
			short  bool
		}{{1, false, false}, {2, false, false}, {3, false, false}, {3, true, false}, {3, false, true}} {
			to, want := tcp.Options{}, want
			if c.short {
				to, want = short, wantShort
			}
			got := runShards(t, f, c.n, c.locked, to)
			if c.n == 3 && !c.locked && got.used > 1 {
				spread++
			}
			if got.stats != want.stats {
				t.Errorf("%s, %d shards: stats\n%s\nwant\n%s", f, c.n, got.stats, want.stats)
			}
			if len(got.conns) != len(want.conns) {
				t.Errorf("%s, %d shards: %d connections, want %d", f, c.n, len(got.conns), len(want.conns))
			}
			for id, w := range want.conns {
				if g := got.conns[id]; g != w {
					t.Errorf("%s, %d shards: connection %d:\n%s\nwant\n%s", f, c.n, id, g, w)
					break
				}
			}
			if len(got.events) != len(want.events) {
				t.Errorf("%s, %d shards: %d events, want %d", f, c.n, len(got.events), len(want.events))
			}
			for i := range min(len(got.events), len(want.events)) {
				g, _ := json.Marshal(&got.events[i])
				w, _ := json.Marshal(&want.events[i])
				if string(g) != string(w) {
					t.Errorf("%s, %d shards: event %d:\n%s\nwant\n%s", f, c.n, i, g, w)
					break
				}
			}
		}
	}
	t.Logf("%d captures, %d with connections in more than one of 3 shards", len(files), spread)
	if spread < 2 {
		t.Errorf("only %d captures spread over shards", spread)
	}
}

// TestShardsTinyBatchesFaultsProgress runs shards with batches of three
// items, over a capture cut short (a fault) and a capture holding a
// Decryption Secrets Block, and checks they agree with a run without
// shards; and that Progress is called as without shards.
func TestShardsTinyBatchesFaultsProgress(t *testing.T) {
	defer func(d, n, b int) { pipeDepth, batchItems, batchBufBytes = d, n, b }(pipeDepth, batchItems, batchBufBytes)
	pipeDepth, batchItems, batchBufBytes = 2, 3, 100
	b, err := os.ReadFile("../testdata/pcaps/http1-keepalive.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcapng")
	if err := os.WriteFile(cut, b[:len(b)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{cut, "../testdata/pcaps/h2-tls-dsb.pcapng", manyConnsCapture(t, "http1", 300)} {
		want := runShards(t, f, 0, false, tcp.Options{})
		got := runShards(t, f, 3, false, tcp.Options{})
		if got.stats != want.stats || len(got.events) != len(want.events) || len(got.conns) != len(want.conns) {
			t.Errorf("%s: 3 shards: stats %s, %d events, %d connections; want %s, %d, %d", f, got.stats, len(got.events), len(got.conns), want.stats, len(want.events), len(want.conns))
		}
		for id, w := range want.conns {
			if got.conns[id] != w {
				t.Errorf("%s: connection %d differs with 3 shards", f, id)
			}
		}
	}
	if st := runShards(t, cut, 3, false, tcp.Options{}).stats; !strings.Contains(st, `"Faults":[{`) {
		t.Errorf("the cut capture has no fault: %s", st)
	}

	big := writePcap(t, 2*ProgressInterval+100)
	calls := map[int]int{}
	for _, n := range []int{0, 2} {
		if _, err := Run(context.Background(), []string{big}, Options{Shards: n, Progress: func(read, total int64) { calls[n]++ }}); err != nil {
			t.Fatal(err)
		}
	}
	if calls[2] != calls[0] || calls[0] == 0 {
		t.Errorf("Progress called %d times with 2 shards, %d without", calls[2], calls[0])
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, []string{"../testdata/pcaps/http1-keepalive.pcapng"}, Options{Dissect: true, Shards: 2}); err != context.Canceled {
		t.Errorf("cancelled sharded run: err %v, want context.Canceled", err)
	}
}

// keepEvent returns a copy of e that stays valid after the Sink's call:
// e and what it points to are the dissectors', valid only during it (the
// HTTP/1 dissector, for one, is reused by the next connection).
func keepEvent(e *event.Event) event.Event {
	k := *e
	if e.HTTP1 != nil {
		h := *e.HTTP1
		h.Headers, h.Trailers = slices.Clone(h.Headers), slices.Clone(h.Trailers)
		k.HTTP1 = &h
	}
	if e.HTTP2 != nil {
		h := *e.HTTP2
		h.Headers, h.Settings = slices.Clone(h.Headers), slices.Clone(h.Settings)
		k.HTTP2 = &h
	}
	if e.GRPC != nil {
		g := *e.GRPC
		k.GRPC = &g
	}
	return k
}
