package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/internal/golden"
)

// TestBuilderStreamMatchesNew: on every committed capture, the report a
// Builder makes while the analysis streams (records built when each
// connection's application part is over, completed from the final
// summaries) is byte for byte the report New makes from the kept records,
// and WriteJSON, which encodes it piece by piece, writes what one
// json.Encoder writes.
func TestBuilderStreamMatchesNew(t *testing.T) {
	defaultParallel, defaultBatch := parallelItems, itemBatch
	defer func() { parallelItems, itemBatch = defaultParallel, defaultBatch }()
	caps, err := filepath.Glob("../testdata/pcaps/*.pcapng")
	if err != nil || len(caps) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	for _, f := range caps {
		opts := func() dissect.Options {
			o := dissect.Options{Keys: tls.NewKeyLog()}
			if b, err := os.ReadFile(strings.TrimSuffix(f, ".pcapng") + ".keys"); err == nil {
				o.Keys.Add(b, "keys")
			}
			return o
		}
		res, in, err := analyze.Run(context.Background(), []string{f}, opts(), analyze.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		want := encodeWhole(t, New([]string{f}, in, res, Redaction{}))
		b := NewBuilder(Redaction{})
		res, in, err = analyze.Stream(context.Background(), []string{f}, opts(), analyze.DefaultConfig(), b)
		if err != nil {
			t.Fatal(err)
		}
		rep := b.Report([]string{f}, in, res)
		if rep.Timelines != nil || len(rep.Connections) > 0 && rep.src == nil {
			t.Errorf("%s: the Builder's report holds its timelines", f)
		}
		if got := encodeWhole(t, rep); got != want {
			t.Errorf("%s: streamed report differs from New's: %s", f, golden.FirstDiff(got, want))
		}
		// WriteJSON as it runs, then with lists encoded in parallel from
		// three items, in batches of two.
		for _, par := range [][2]int{{defaultParallel, defaultBatch}, {3, 2}} {
			parallelItems, itemBatch = par[0], par[1]
			var got bytes.Buffer
			if err := rep.WriteJSON(&got); err != nil {
				t.Fatal(err)
			}
			if got.String() != want {
				t.Errorf("%s (parallel from %d items): WriteJSON differs from json.Encoder: %s", f, parallelItems, golden.FirstDiff(got.String(), want))
			}
			got.Reset()
			if err := rep.WriteJSONLine(&got); err != nil {
				t.Fatal(err)
			}
			if wantLine := encodeWholeLine(t, rep); got.String() != wantLine {
				t.Errorf("%s (parallel from %d items): WriteJSONLine differs from json.Encoder", f, parallelItems)
			}
		}
	}
}

// TestBuilderNoOverview checks that a Builder told the report will not
// be HTML (Builder.NoOverview) counts no pools, writes the same JSON,
// JSON line and Markdown as one that counts them, and that WriteHTML
// refuses its report rather than draw an empty overview.
func TestBuilderNoOverview(t *testing.T) {
	for _, name := range []string{"http1-nokeepalive", "syn-refused", "grpc-cancel-storm", "h2-tls"} {
		f := "../testdata/pcaps/" + name + ".pcapng"
		build := func(noOverview bool) *Report {
			o := dissect.Options{Keys: tls.NewKeyLog()}
			if b, err := os.ReadFile(strings.TrimSuffix(f, ".pcapng") + ".keys"); err == nil {
				o.Keys.Add(b, "keys")
			}
			b := NewBuilder(Redaction{})
			b.NoOverview = noOverview
			t.Cleanup(func() { b.Close() })
			res, in, err := analyze.Stream(context.Background(), []string{f}, o, analyze.DefaultConfig(), b)
			if err != nil {
				t.Fatal(err)
			}
			return b.Report([]string{f}, in, res)
		}
		with, without := build(false), build(true)
		if len(with.pools.counts) == 0 || len(without.pools.counts) != 0 {
			t.Errorf("%s: %d pools counted by default, %d with NoOverview; want some and none", name, len(with.pools.counts), len(without.pools.counts))
		}
		for _, w := range []struct {
			what  string
			write func(*Report, io.Writer) error
		}{{"JSON", (*Report).WriteJSON}, {"JSON line", (*Report).WriteJSONLine}, {"Markdown", (*Report).WriteMarkdown}} {
			var a, b bytes.Buffer
			if err := w.write(with, &a); err != nil {
				t.Fatal(err)
			}
			if err := w.write(without, &b); err != nil {
				t.Fatal(err)
			}
			if a.String() != b.String() {
				t.Errorf("%s: %s differs with NoOverview: %s", name, w.what, golden.FirstDiff(b.String(), a.String()))
			}
		}
		if err := with.WriteHTML(io.Discard); err != nil {
			t.Errorf("%s: WriteHTML: %v", name, err)
		}
		if err := without.WriteHTML(io.Discard); err == nil || !strings.Contains(err.Error(), "NoOverview") {
			t.Errorf("%s: WriteHTML of a NoOverview report: %v, want a refusal", name, err)
		}
	}
}

// encodeWholeLine encodes r, every timeline made, as one json.Encoder
// line, controls escaped (escapeJSONControls, tested on its own).
func encodeWholeLine(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&jsonSafeWriter{w: &b})
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wholeOf(r)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// encodeWhole encodes r as WriteJSON did before it streamed, with every
// timeline made, controls escaped.
func encodeWhole(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&jsonSafeWriter{w: &b})
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(wholeOf(r)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// shortWriter accepts n bytes, then fails.
type shortWriter struct{ n int }

var errShort = errors.New("disk full")

func (w *shortWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errShort
	}
	w.n -= len(p)
	return len(p), nil
}

// TestWriteJSONError: a writer that fails part way, in the lists encoded
// in parallel or elsewhere, makes WriteJSON return its error (and not
// hang with goroutines waiting).
func TestWriteJSONError(t *testing.T) {
	defer func(p, b int) { parallelItems, itemBatch = p, b }(parallelItems, itemBatch)
	parallelItems, itemBatch = 3, 2
	f := "../testdata/pcaps/http1-small-pool.pcapng"
	b := NewBuilder(Redaction{})
	res, in, err := analyze.Stream(context.Background(), []string{f}, dissect.Options{}, analyze.DefaultConfig(), b)
	if err != nil {
		t.Fatal(err)
	}
	rep := b.Report([]string{f}, in, res)
	var whole bytes.Buffer
	if err := rep.WriteJSON(&whole); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 10, 70 << 10, whole.Len() / 2, whole.Len() - 100} {
		if err := rep.WriteJSON(&shortWriter{n: n}); !errors.Is(err, errShort) {
			t.Errorf("writer failing after %d of %d bytes: WriteJSON returned %v", n, whole.Len(), err)
		}
	}
}

// wholeOf returns r as one value for json.Encoder: every timeline made,
// the connections as their JSON was written (a Builder's report decodes
// them for the renderers only in part).
func wholeOf(r *Report) any {
	v := struct {
		Schema              string         `json:"schema"`
		ConnectionsIncluded string         `json:"connections_included"`
		Captures            []Capture      `json:"captures"`
		Connections         any            `json:"connections"`
		Findings            []Finding      `json:"findings"`
		Tables              analyze.Tables `json:"tables"`
		Timelines           []Timeline     `json:"timelines"`
	}{r.Schema, r.ConnectionsIncluded, r.Captures, r.Connections, r.jsonFindings(), r.Tables, r.allTimelines()}
	if r.src != nil {
		v.Connections = r.raw
	}
	return v
}

// TestTimelineCache: a Builder's report gives the same timelines from
// the ones its Report kept (Report.tls) as from the spill file, keeps
// none past maxTimelineCache, and reads none after Close.
func TestTimelineCache(t *testing.T) {
	defer func(n int) { maxTimelineCache = n }(maxTimelineCache)
	caps, err := filepath.Glob("../testdata/pcaps/*.pcapng")
	if err != nil || len(caps) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	collect := func(r *Report) ([]Timeline, error) {
		var out []Timeline
		err := r.EachTimeline(func(tl *Timeline) error {
			out = append(out, *tl)
			return nil
		})
		return out, err
	}
	cached := 0
	for _, f := range caps {
		for _, budget := range []int{4 << 20, 1} {
			maxTimelineCache = budget
			b := NewBuilder(Redaction{})
			b.SpillDir = t.TempDir()
			res, in, err := analyze.Stream(context.Background(), []string{f}, dissect.Options{}, analyze.DefaultConfig(), b)
			if err != nil {
				t.Fatal(err)
			}
			r := b.Report([]string{f}, in, res)
			got, err := collect(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(r.Connections) {
				t.Errorf("%s: %d timelines for %d connections", f, len(got), len(r.Connections))
			}
			if r.tlCached && len(got) > 0 {
				cached++
				if budget == 1 {
					t.Errorf("%s: timelines kept past the budget", f)
				}
			}
			r.tlCached = false
			want, err := collect(r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s (budget %d): kept timelines differ from the spill's", f, budget)
			}
			r.tlCached = budget > 1
			b.Close()
			if _, err := collect(r); len(got) > 0 && !errors.Is(err, errSpillClosed) {
				t.Errorf("%s: timelines read after Close: %v", f, err)
			}
		}
	}
	if cached == 0 {
		t.Fatal("no report kept its timelines")
	}
}

// TestListBatch: a long list is encoded in batches of itemBatch, a short
// one of two or more items in batches that give each core about two
// (its items may be a few long connections' timelines), and one item, or
// any list on one core, on the writer's goroutine.
func TestListBatch(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct{ procs, n, want int }{
		{2, 0, 0}, {2, 1, 0}, {2, 2, 1}, {2, 4, 1}, {2, 9, 2}, {2, 255, 63}, {2, 256, itemBatch}, {2, 100000, itemBatch},
		{8, 4, 1}, {8, 64, 4}, {1, 4, 0}, {1, 300, itemBatch},
	} {
		runtime.GOMAXPROCS(tc.procs)
		if got := listBatch(tc.n); got != tc.want {
			t.Errorf("GOMAXPROCS %d: listBatch(%d) = %d, want %d", tc.procs, tc.n, got, tc.want)
		}
	}
}
