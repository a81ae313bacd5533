package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shardTestCaptures returns the project's captures (attacks/ and
// stacks/ too) and the shared corpus's ($H2SCOPE_CORPUS or
// ../shared/corpus next to the repository), when it is there, and
// whether it was.
func shardTestCaptures(t *testing.T) (files []string, corpus bool) {
	t.Helper()
	for _, g := range []string{"../../testdata/pcaps/*.pcap*", "../../testdata/pcaps/*/*.pcap*"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	dir := os.Getenv("H2SCOPE_CORPUS")
	if dir == "" {
		dir = "../../../shared/corpus"
	}
	if _, err := os.Stat(dir); err != nil {
		t.Logf("shared corpus %s is absent (set H2SCOPE_CORPUS): testing the project's captures only, whose connections are all on loopback (one shard)", dir)
	} else {
		corpus = true
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.Contains(filepath.Base(p), ".pcap") || strings.HasSuffix(p, ".cap")) {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(files)
	return files, corpus
}

// keyLogArgs returns the --keylog flags of what lies beside capture f:
// NAME.keys or keylog.txt in its directory.
func keyLogArgs(f string) []string {
	base := strings.TrimSuffix(f, filepath.Ext(f))
	var args []string
	for _, k := range []string{base + ".keys", filepath.Join(filepath.Dir(f), "keylog.txt")} {
		if _, err := os.Stat(k); err == nil {
			args = append(args, "--keylog", k)
		}
	}
	return args
}

// TestShardsIdentical checks that analyze --shards N writes the same
// reports, byte for byte, as --shards 1, every connection included, on
// every project and corpus capture: the merged analysis equals the whole
// one and the provisional IDs of the shards become final ones.
func TestShardsIdentical(t *testing.T) {
	multi := 0 // captures whose connections span several address pairs
	files, corpus := shardTestCaptures(t)
	for _, f := range files {
		var outs [2][3][]byte
		var codes [2]int
		var errs [2]string
		for i, n := range []string{"1", "3"} {
			dir := t.TempDir()
			j, md, html := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md"), filepath.Join(dir, "r.html")
			args := append([]string{"analyze", "--shards", n, "--connections", "all", "--json", j, "--md", md, "--html", html}, keyLogArgs(f)...)
			_, errs[i], codes[i] = runCLI(t, append(args, f)...)
			for k, name := range []string{j, md, html} {
				outs[i][k], _ = os.ReadFile(name)
			}
		}
		name, _ := filepath.Rel("../..", f)
		if codes[0] != codes[1] || errs[0] != errs[1] {
			t.Errorf("%s: --shards 3 exit %d, stderr %q; --shards 1 exit %d, stderr %q", name, codes[1], errs[1], codes[0], errs[0])
			continue
		}
		for k, kind := range []string{"JSON", "Markdown", "HTML"} {
			if !bytes.Equal(outs[0][k], outs[1][k]) {
				t.Errorf("%s: the %s report of --shards 3 differs from --shards 1's at byte %d", name, kind, firstDiff(outs[0][k], outs[1][k]))
			}
		}
		if addressPairs(outs[0][0]) > 1 {
			multi++
		}
	}
	if corpus && multi < 10 {
		t.Errorf("only %d captures have connections between several address pairs: the shards were hardly split", multi)
	}
	t.Logf("%d captures, %d with several address pairs", len(files), multi)
}

// firstDiff returns the offset of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// addressPairs counts the distinct address pairs of a JSON report's
// connections, the unit a sharded run splits by.
func addressPairs(report []byte) int {
	var rep struct {
		Connections []struct {
			Client, Server netip.AddrPort
		} `json:"connections"`
	}
	if json.Unmarshal(report, &rep) != nil {
		return 0
	}
	pairs := map[[2]netip.Addr]bool{}
	for _, c := range rep.Connections {
		a, b := c.Client.Addr(), c.Server.Addr()
		if b.Less(a) {
			a, b = b, a
		}
		pairs[[2]netip.Addr{a, b}] = true
	}
	return len(pairs)
}

// TestShardsFor checks the shards --shards chooses: the number given,
// else one per CPU but one (at most maxAutoShards) for captures of
// autoShardBytes or more on 3 CPUs or more, else one.
func TestShardsFor(t *testing.T) {
	dir := t.TempDir()
	small, big, half := filepath.Join(dir, "small.pcap"), filepath.Join(dir, "big.pcap"), filepath.Join(dir, "half.pcap")
	for _, f := range []struct {
		name string
		size int64
	}{{small, 1 << 20}, {big, autoShardBytes}, {half, autoShardBytes / 2}} {
		h, err := os.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Truncate(f.size); err != nil { // sparse: no disk
			t.Fatal(err)
		}
		h.Close()
	}
	for _, c := range []struct {
		n     int
		files []string
		cpus  int
		want  int
	}{
		{5, []string{small}, 2, 5},             // given
		{0, []string{big}, 2, 1},               // no CPU to spare
		{0, []string{small}, 8, 1},             // too small to pay
		{0, []string{big}, 8, 7},               // one per CPU but the reader's
		{0, []string{half, half}, 4, 3},        // the captures' total counts
		{0, []string{big, "-"}, 8, 1},          // standard input: size unknown
		{0, []string{big}, 128, maxAutoShards}, // bounded
		{0, []string{filepath.Join(dir, "absent")}, 8, 1},
	} {
		if got := shardsOn(c.n, c.files, c.cpus); got != c.want {
			t.Errorf("shardsOn(%d, %v, %d CPUs) = %d, want %d", c.n, c.files, c.cpus, got, c.want)
		}
	}
}
