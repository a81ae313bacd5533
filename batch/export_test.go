package batch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSeriesKeyName checks the key of each kind of rotated name, and that
// every key seriesName gives a file to leads to the same SeriesKey.
func TestSeriesKeyName(t *testing.T) {
	tests := []struct{ path, want string }{
		{"d/cap.pcap", "d/\x00cap"},
		{"d/cap.pcap7", "d/\x00cap"},
		{"d/cap.pcap07.gz", "d/\x00cap"},
		{"d/name-1.pcap", "d/\x00name"},
		{"d/name-1.pcap3", "d/\x00name"},
		{"d/web-20261122-101500.pcap", "d/\x00web"},
		{"d/ring_00001_20261122101500.pcapng.zst", "d/\x00ring"},
		{"d/name.1", "d/\x00name"},
		{"d/h2-tls12.pcap", "d/\x00h2-tls12"},
		{"d/rawdump", "d/\x00rawdump"},
		{"e/cap.pcap", "e/\x00cap"},
	}
	for _, tt := range tests {
		if got := SeriesKey(tt.path); got != tt.want {
			t.Errorf("SeriesKey(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// TestSeriesKeyGroup checks that Group over the files of each SeriesKey
// gives what Group gives over all the files, on TestGroupRotated's names
// and on names that can join either of two series.
func TestSeriesKeyGroup(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	m := time.Minute
	at := func(i int) []frame { return filler(t0.Add(time.Duration(i)*2*m), time.Second, 5) }
	for i, name := range []string{"c/cap.pcap", "c/cap.pcap1", "c/cap.pcap2", "c/cap.pcap10",
		"g/web-20261122-101500.pcap", "g/web-20261122-102000.pcap",
		"r/ring_00001_20261122101500.pcap", "r/ring_00002_20261122101600.pcap.gz",
		"a/name-1.pcap", "a/name-1.pcap1", "a/name-2.pcap", "a/name-3.pcap",
		"b/x-1.pcap", "b/x-2.pcap", "b/x.pcap", "b/y.pcap", "b/rawdump"} {
		writePcap(t, p(name), at(i))
	}
	files, bad, err := Find([]string{dir})
	if err != nil || len(bad) != 0 {
		t.Fatalf("Find: %v %v", bad, err)
	}
	ctx := context.Background()
	want := Group(ctx, files, 0, 2)
	by := map[string][]string{}
	for _, f := range files {
		by[SeriesKey(f)] = append(by[SeriesKey(f)], f)
	}
	var got []Capture
	for _, fs := range by {
		got = append(got, Group(ctx, fs, 0, 2)...)
	}
	slices.SortFunc(got, CompareCaptures)
	if !slices.EqualFunc(got, want, func(a, b Capture) bool { return slices.Equal(a.Files, b.Files) }) {
		t.Errorf("grouped by SeriesKey:\n%v\nwant\n%v", got, want)
	}
}

// TestAnalyseCaptureLines checks that AnalyseCapture gives Run's lines.
func TestAnalyseCaptureLines(t *testing.T) {
	dir := t.TempDir()
	writePcap(t, filepath.Join(dir, "a.pcap"), filler(t0, time.Second, 3))
	writePcap(t, filepath.Join(dir, "b.pcap"), filler(t0, time.Second, 2))
	if err := os.WriteFile(filepath.Join(dir, "c.pcap"), []byte("not a capture"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Workers: 1, Version: "test"}
	_, out := runBatch(t, filepath.Join(t.TempDir(), "out.ndjson"), opts, dir)
	files, _, err := Find([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	var failed int
	for _, c := range Group(context.Background(), files, 0, 1) {
		line, f, err := AnalyseCapture(context.Background(), c, opts)
		if err != nil {
			t.Fatal(err)
		}
		if f {
			failed++
		}
		got = append(got, line...)
	}
	if !bytes.Equal(got, out) {
		t.Errorf("AnalyseCapture lines:\n%s\nRun's:\n%s", got, out)
	}
	if failed != 1 {
		t.Errorf("%d error records, want 1", failed)
	}
}
