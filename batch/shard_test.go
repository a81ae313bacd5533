package batch

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/report"
)

// shardCaptures returns the project's captures and, when all is set,
// the shared corpus's when it is there.
func shardCaptures(t *testing.T, all bool) []string {
	t.Helper()
	globs := []string{"../testdata/pcaps/*.pcap*", "../testdata/pcaps/*/*.pcap*"}
	if all {
		globs = append(globs, "../../shared/corpus/*/*.pcap*", "../../shared/corpus/*/*/*.pcap*", "../../shared/corpus/*/*/*/*.pcap*", "../../shared/corpus/*/*.cap")
		if _, err := os.Stat("../../shared/corpus"); err != nil {
			t.Log("../shared/corpus is absent: testing the project's captures only")
		}
	}
	var files []string
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	slices.Sort(files)
	if len(files) == 0 {
		t.Fatal("no capture found")
	}
	return files
}

// shardedLine analyses c in k shards, each partial merged into the
// previous ones in turn (the last shard first, to merge out of order),
// and returns MergeShards' line.
func shardedLine(t *testing.T, c Capture, k int, opts Options) ([]byte, bool) {
	t.Helper()
	ctx := context.Background()
	var merged []byte
	var recs []io.Reader
	for i := k - 1; i >= 0; i-- {
		var buf bytes.Buffer
		p, err := AnalyseShard(ctx, c, dissect.ShardOf{Index: i, Count: k}, opts, &buf)
		if err != nil {
			t.Fatalf("%s: shard %d of %d: %v", c.Files[0], i, k, err)
		}
		recs = append(recs, &buf)
		if merged == nil {
			merged = p
		} else if merged, err = MergePartials(p, merged); err != nil {
			t.Fatalf("%s: merging shard %d of %d: %v", c.Files[0], i, k, err)
		}
	}
	line, failed, err := MergeShards(ctx, c, merged, recs, opts)
	if err != nil {
		t.Fatalf("%s: %d shards: %v", c.Files[0], k, err)
	}
	return line, failed
}

// TestShardsEqualWhole checks that a capture analysed in K shards (K =
// 1, 2, 3: AnalyseShard each, their partials merged, MergeShards) gives
// the line AnalyseCapture gives, byte for byte, on every project and
// corpus capture with every connection in the report (K = 1, 2, 3) and
// with the named ones (K = 3: the merge spills only those), and on the
// project's captures with none.
func TestShardsEqualWhole(t *testing.T) {
	ctx := context.Background()
	for _, sel := range []string{report.ConnsAll, report.ConnsNamed, report.ConnsNone} {
		opts := Options{Connections: sel, Version: "test"}
		split := 0
		for _, f := range shardCaptures(t, sel != report.ConnsNone) {
			c := Capture{Files: []string{f}}
			want, wantFailed, err := AnalyseCapture(ctx, c, opts)
			if err != nil {
				t.Fatal(err)
			}
			ks := []int{3}
			if sel == report.ConnsAll {
				ks = []int{1, 2, 3}
			}
			for _, k := range ks {
				got, failed := shardedLine(t, c, k, opts)
				if !bytes.Equal(got, want) || failed != wantFailed {
					at := 0
					for at < min(len(got), len(want)) && got[at] == want[at] {
						at++
					}
					t.Errorf("%s, connections %s, %d shards: the line differs at byte %d:\n%s\nwant\n%s", f, sel, k, at,
						got[max(at-150, 0):min(at+150, len(got))], want[max(at-150, 0):min(at+150, len(want))])
				}
			}
			if strings.Count(string(want), `"id":`) > 1 {
				split++
			}
		}
		t.Logf("connections %s: %d captures with several connections", sel, split)
	}
}

// TestShardUnreadable checks that the shards of a capture that cannot
// be read merge into the error record AnalyseCapture writes.
func TestShardUnreadable(t *testing.T) {
	c := Capture{Files: []string{filepath.Join(t.TempDir(), "missing.pcap")}}
	want, _, err := AnalyseCapture(context.Background(), c, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	got, failed := shardedLine(t, c, 2, Options{Version: "test"})
	if !failed || !bytes.Equal(got, want) {
		t.Errorf("got %s (failed %v), want %s", got, failed, want)
	}
}

// TestMergeShardsRefuses checks the errors of partials that do not fit.
func TestMergeShardsRefuses(t *testing.T) {
	ctx := context.Background()
	c := Capture{Files: []string{"../testdata/pcaps/grpc-goaway.pcapng"}}
	opts := Options{Connections: report.ConnsNone, Version: "test"}
	p0, err := AnalyseShard(ctx, c, dissect.ShardOf{Index: 0, Count: 2}, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := MergeShards(ctx, c, p0, nil, opts); err == nil || !strings.Contains(err.Error(), "1 shards of 2") {
		t.Errorf("one shard of two merged: %v", err)
	}
	p3, _ := AnalyseShard(ctx, c, dissect.ShardOf{Index: 0, Count: 3}, opts, nil)
	if _, err := MergePartials(p0, p3); err == nil {
		t.Error("a shard of 2 merged with a shard of 3")
	}
	if _, err := MergePartials(p0, p0[:len(p0)-3]); err == nil {
		t.Error("a cut partial merged")
	}
	if _, err := AnalyseShard(ctx, c, dissect.ShardOf{Index: 2, Count: 2}, opts, nil); err == nil {
		t.Error("shard 2 of 2 analysed")
	}
}

// TestShardPartialDamaged checks that a partial damaged anywhere, or cut
// short, is refused with an error, never a panic.
func TestShardPartialDamaged(t *testing.T) {
	ctx := context.Background()
	c := Capture{Files: []string{"../testdata/pcaps/grpc-goaway.pcapng"}}
	opts := Options{Connections: report.ConnsNone, Version: "test"}
	p0, err := AnalyseShard(ctx, c, dissect.ShardOf{Index: 0, Count: 2}, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := AnalyseShard(ctx, c, dissect.ShardOf{Index: 1, Count: 2}, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(p1); i += 1 + len(p1)/300 {
		d := bytes.Clone(p1)
		d[i] ^= 0x41
		if _, err := MergePartials(p0, d); err == nil {
			t.Errorf("byte %d of %d damaged: merged", i, len(p1))
		}
	}
	for _, n := range []int{0, 3, len(shardMagic) + 2, len(p1) / 2, len(p1) - 1} {
		if _, err := MergePartials(p0, p1[:n]); err == nil {
			t.Errorf("the first %d of %d bytes merged", n, len(p1))
		}
	}
}

// TestMergeStopsPastNamed checks that a merge for a report of the named
// connections reads each shard's records only up to the last connection
// named: a damaged tail appended to every record stream leaves the line
// unchanged when every stream goes on past the last one named (and is
// refused when the merge reads it: with every connection in the report).
func TestMergeStopsPastNamed(t *testing.T) {
	ctx := context.Background()
	const k = 3
	damaged := []byte{0x05, 0x01} // a record of 5 bytes, cut after 1
	stopped := 0
	for _, f := range shardCaptures(t, false) {
		c := Capture{Files: []string{f}}
		for _, sel := range []string{report.ConnsNamed, report.ConnsAll} {
			opts := Options{Connections: sel, Version: "test"}
			want, _, err := AnalyseCapture(ctx, c, opts)
			if err != nil {
				t.Fatal(err)
			}
			var merged []byte
			var recs []io.Reader
			for i := range k {
				var buf bytes.Buffer
				p, err := AnalyseShard(ctx, c, dissect.ShardOf{Index: i, Count: k}, opts, &buf)
				if err != nil {
					t.Fatal(err)
				}
				buf.Write(damaged)
				recs = append(recs, &buf)
				if merged == nil {
					merged = p
				} else if merged, err = MergePartials(merged, p); err != nil {
					t.Fatal(err)
				}
			}
			got, failed, err := MergeShards(ctx, c, merged, recs, opts)
			switch {
			case failed:
				// An unreadable capture: no record read.
			case sel == report.ConnsAll:
				if err == nil {
					t.Errorf("%s: connections all: the damaged tail of the records was not read", f)
				}
			case err == nil:
				stopped++
				if !bytes.Equal(got, want) {
					t.Errorf("%s: connections named: the line differs from AnalyseCapture's", f)
				}
			case !strings.Contains(err.Error(), "records"):
				t.Errorf("%s: connections named: %v", f, err)
			}
		}
	}
	if stopped == 0 {
		t.Error("no merge of named connections stopped before the end of the records")
	}
	t.Logf("%d captures merged without reading their records to the end", stopped)
}

// TestMergeShardsRecordsVersion checks that shard records without this
// version's header (an older build's, or not records at all) are
// refused, and the same records with it merge.
func TestMergeShardsRecordsVersion(t *testing.T) {
	ctx := context.Background()
	c := Capture{Files: []string{"../testdata/pcaps/grpc-goaway.pcapng"}}
	opts := Options{Connections: report.ConnsAll, Version: "test"}
	var buf bytes.Buffer
	p, err := AnalyseShard(ctx, c, dissect.ShardOf{Index: 0, Count: 1}, opts, &buf)
	if err != nil {
		t.Fatal(err)
	}
	recs := buf.Bytes()
	if _, _, err := MergeShards(ctx, c, p, []io.Reader{bytes.NewReader(recs)}, opts); err != nil {
		t.Fatalf("this version's records: %v", err)
	}
	i := bytes.IndexByte(recs, '\n')
	if i < 0 {
		t.Fatal("no header in the records")
	}
	for name, r := range map[string][]byte{
		"no header":   recs[i+1:],
		"old header":  append([]byte("h2scope.report-records/1\n"), recs[i+1:]...),
		"cut in it":   recs[:i/2],
		"not records": []byte("PK\x03\x04 a zip file, say"),
	} {
		if _, _, err := MergeShards(ctx, c, p, []io.Reader{bytes.NewReader(r)}, opts); err == nil {
			t.Errorf("%s: merged", name)
		}
	}
}
