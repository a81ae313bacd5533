package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
)

// corpusKeys names the key logs of the shared corpus's captures
// (MANIFEST.md), by capture path.
var corpusKeys = map[string]string{
	"wireshark-test/http2-data-reassembly.pcap": "wireshark-test/http2-data-reassembly.keys",
	"wireshark-notes/http2-16-ssl.pcapng":       "wireshark-notes/http2-16-ssl.keys.txt",
	"wireshark-notes/works/dump.pcapng":         "wireshark-notes/works/premaster.txt",
	"illustrated-tls13/capture.pcap":            "illustrated-tls13/keylog.txt",
	"illustrated-tls12/capture.pcap":            "illustrated-tls12/keylog.txt",
}

// mergeCaptures lists the captures the merge test runs on: every capture
// of testdata/pcaps with its key log, and of the shared corpus when it is
// present ($H2SCOPE_CORPUS or ../../shared/corpus).
func mergeCaptures(t *testing.T) (paths, keys []string) {
	files, err := filepath.Glob(filepath.Join(pcaps, "*.pcapng"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s: %v", pcaps, err)
	}
	// and those of attacks/ and stacks/
	more, _ := filepath.Glob(filepath.Join(pcaps, "*", "*.pcapng"))
	files = append(files, more...)
	for _, f := range files {
		k := strings.TrimSuffix(f, ".pcapng") + ".keys"
		if _, err := os.Stat(k); err != nil {
			k = ""
		}
		paths, keys = append(paths, f), append(keys, k)
	}
	dir := os.Getenv("H2SCOPE_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "corpus")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Logf("shared corpus %s not found (set H2SCOPE_CORPUS): testdata/pcaps only", dir)
		return paths, keys
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !strings.HasSuffix(p, ".pcap") && !strings.HasSuffix(p, ".pcapng") && !strings.HasSuffix(p, ".pcap.gz") && !strings.HasSuffix(p, ".cap") {
			return nil
		}
		k := ""
		if kr, ok := corpusKeys[filepath.ToSlash(rel)]; ok {
			k = filepath.Join(dir, kr)
		}
		paths, keys = append(paths, p), append(keys, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths, keys
}

// TestStateMerge checks that the analysis state merges exactly: on
// every capture, the connections split by a hash of their address pair
// into 2, 3 and 7 shards, each shard observed into its own State (in
// reverse id order, so that observation order differs too) and the
// shards merged in several orders, give the findings and tables of one
// State observing every connection.
func TestStateMerge(t *testing.T) {
	paths, keys := mergeCaptures(t)
	for i, path := range paths {
		name := strings.TrimPrefix(path, filepath.Join("..", "..", "shared")+string(filepath.Separator))
		t.Run(name, func(t *testing.T) {
			opts := dissect.Options{Keys: tls.NewKeyLog()}
			if keys[i] != "" {
				b, err := os.ReadFile(keys[i])
				if err != nil {
					t.Fatal(err)
				}
				opts.Keys.Add(b, keys[i])
			}
			_, in, err := Run(context.Background(), []string{path}, opts, DefaultConfig())
			if err != nil {
				t.Skipf("%s: %v", path, err)
			}
			whole := NewState(DefaultConfig())
			for _, c := range in.Conns {
				whole.Observe(c)
			}
			want := resultJSON(t, whole.Result(in.Stats))
			for _, n := range []int{2, 3, 7} {
				for _, order := range []string{"left", "right", "pairs"} {
					shards := make([]*State, n)
					for j := range shards {
						shards[j] = NewState(DefaultConfig())
					}
					for _, c := range slices.Backward(in.Conns) {
						shards[shardOf(c, n)].Observe(c)
					}
					got := resultJSON(t, mergeStates(shards, order).Result(in.Stats))
					if !bytes.Equal(got, want) {
						t.Errorf("%d shards merged %s: result differs from one state's\n got: %s\nwant: %s", n, order, firstDiff(got, want), firstDiff(want, got))
					}
				}
			}
		})
	}
}

// shardOf returns the shard of c among n, by a hash of its address pair
// (the same whichever side is the client).
func shardOf(c *Conn, n int) int {
	a, b := c.TCP.Client.String(), c.TCP.Server.String()
	if a > b {
		a, b = b, a
	}
	h := fnv.New32a()
	h.Write([]byte(a + "|" + b))
	return int(h.Sum32() % uint32(n))
}

// mergeStates merges shards into one State: "left" folds them in order,
// "right" from the last, "pairs" merges neighbours pairwise until one
// is left.
func mergeStates(shards []*State, order string) *State {
	switch order {
	case "right":
		s := shards[len(shards)-1]
		for i := len(shards) - 2; i >= 0; i-- {
			shards[i].Merge(s)
			s = shards[i]
		}
		return s
	case "pairs":
		for len(shards) > 1 {
			var next []*State
			for i := 0; i < len(shards); i += 2 {
				if i+1 < len(shards) {
					shards[i+1].Merge(shards[i])
				}
				next = append(next, shards[min(i+1, len(shards)-1)])
			}
			shards = next
		}
		return shards[0]
	}
	for _, s := range shards[1:] {
		shards[0].Merge(s)
	}
	return shards[0]
}

func resultJSON(t *testing.T, r Result) []byte {
	t.Helper()
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstDiff returns a from a little before where it first differs from b.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo, hi := max(i-200, 0), min(i+200, len(a))
	return string(a[lo:hi])
}
