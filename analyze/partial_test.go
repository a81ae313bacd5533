package analyze_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
)

// partialCaptures returns the project's captures and the shared corpus's,
// when it is there.
func partialCaptures(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, g := range []string{"../testdata/pcaps/*.pcap*", "../testdata/pcaps/*/*.pcap*", "../../shared/corpus/*/*.pcap*", "../../shared/corpus/*/*/*.pcap*", "../../shared/corpus/*/*/*/*.pcap*", "../../shared/corpus/*/*.cap"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if _, err := os.Stat("../../shared/corpus"); err != nil {
		t.Log("../shared/corpus is absent: testing the project's captures only")
	}
	slices.Sort(files)
	return files
}

// keyLog returns the key log beside capture f (NAME.keys, keylog.txt).
func keyLog(t *testing.T, f string) *tls.KeyLog {
	k := tls.NewKeyLog()
	base := strings.TrimSuffix(f, filepath.Ext(f))
	for _, name := range []string{base + ".keys", filepath.Join(filepath.Dir(f), "keylog.txt")} {
		if b, err := os.ReadFile(name); err == nil {
			k.Add(b, name)
		}
	}
	return k
}

// TestPartialEveryCapture checks, on every project and corpus capture,
// that the analysis of the capture split into K runs (K = 1, 2, 3), each
// run's Partial encoded to bytes and decoded, merged, equals the
// analysis of the whole capture, byte for byte in JSON: a field of the
// state that the encoding does not carry, or a count the runs do not
// split, shows here.
func TestPartialEveryCapture(t *testing.T) {
	ctx := context.Background()
	cfg := analyze.DefaultConfig()
	files := partialCaptures(t)
	if len(files) == 0 {
		t.Fatal("no capture found")
	}
	split := 0
	for _, f := range files {
		name := strings.TrimPrefix(f, "../")
		res, in, err := analyze.Stream(ctx, []string{f}, dissect.Options{Keys: keyLog(t, f)}, cfg, nil)
		want := resultJSON(t, res, in.Stats, err)
		for k := 1; k <= 3; k++ {
			var merged *analyze.Partial
			var runErr error
			nonEmpty := 0
			for i := range k {
				opts := dissect.Options{Keys: keyLog(t, f), ShardOf: dissect.ShardOf{Index: i, Count: k}}
				p, err := analyze.StreamShard(ctx, []string{f}, opts, cfg, nil)
				if err != nil {
					runErr = err
					break
				}
				if p.Stats.IDs.Len() > 0 {
					nonEmpty++
				}
				b, err := p.MarshalBinary()
				if err != nil {
					t.Fatalf("%s: shard %d of %d: %v", name, i, k, err)
				}
				var q analyze.Partial
				if err := q.UnmarshalBinary(b); err != nil {
					t.Fatalf("%s: shard %d of %d: %v", name, i, k, err)
				}
				if merged == nil {
					merged = &q
				} else {
					merged.Merge(&q)
				}
			}
			var got []byte
			if runErr != nil {
				got = resultJSON(t, analyze.Result{}, dissect.Stats{}, runErr)
			} else {
				got = resultJSON(t, merged.Result(), merged.Stats, nil)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %d runs merged differ from the whole run at byte %d:\n%s\nwant\n%s", name, k, diffAt(got, want), clip(got, diffAt(got, want)), clip(want, diffAt(got, want)))
			}
			if k == 3 && nonEmpty > 1 {
				split++
			}
		}
	}
	t.Logf("%d captures had connections in more than one of 3 runs", split)
	if split == 0 {
		t.Error("no capture was split over several runs")
	}
}

func resultJSON(t *testing.T, res analyze.Result, st dissect.Stats, err error) []byte {
	t.Helper()
	if err != nil {
		return []byte("error: " + err.Error())
	}
	st.IDs = nil
	b, e := json.Marshal(struct {
		R analyze.Result
		S dissect.Stats
		F []string
	}{res, st, faults(st)})
	if e != nil {
		t.Fatal(e)
	}
	return b
}

func faults(st dissect.Stats) []string {
	var out []string
	for _, f := range st.Faults {
		out = append(out, f.Error())
	}
	for _, e := range st.SecretErrors {
		out = append(out, e.Error())
	}
	return out
}

func diffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func clip(b []byte, at int) string {
	lo, hi := max(at-200, 0), min(at+200, len(b))
	return string(b[lo:hi])
}
