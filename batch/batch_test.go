package batch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNaturalCompare(t *testing.T) {
	got := []string{"a/n.pcap10", "a/n.pcap2", "a/n.pcap", "a/n.pcap1", "b", "a/n.pcap02", "a/m.pcap"}
	slices.SortFunc(got, naturalCompare)
	want := []string{"a/m.pcap", "a/n.pcap", "a/n.pcap1", "a/n.pcap02", "a/n.pcap2", "a/n.pcap10", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("sorted %q, want %q", got, want)
	}
}

func TestSeriesName(t *testing.T) {
	tests := []struct {
		name      string
		key, nums string // nums joined by ","; key "" when not a series
	}{
		{"d/cap.pcap1", "c|d/|cap.pcap", "1"},
		{"d/cap.pcap0012.gz", "c|d/|cap.pcap", "0012"},
		{"d/web-20261122-101500.pcap", "s|d/|web|.pcap", "20261122,101500"},
		{"d/ring_00001_20261122101500.pcapng.zst", "s|d/|ring|.pcapng", "00001,20261122101500"},
		{"d/x.2026-11-22T10:15:00.pcap", "s|d/|x|.pcap", "2026,11,22,10,15,00"},
		{"dump.7", "s||dump|", "7"},
		{"h2-tls12.pcapng", "", ""},
		{"cap.pcap", "", ""},
		{"grpc-unary-h2c.pcapng", "", ""},
	}
	for _, tt := range tests {
		key, nums, _, ok := seriesName(tt.name)
		key = strings.ReplaceAll(key, "\x00", "|")
		if !ok {
			key = ""
		}
		if key != tt.key || strings.Join(nums, ",") != tt.nums {
			t.Errorf("seriesName(%q) = %q %q, want %q %q", tt.name, key, nums, tt.key, tt.nums)
		}
	}
}

// TestGroupRotated checks which synthetic files Find takes and how Group
// joins rotated files: tcpdump -C (counters sorted as numbers), tcpdump -G
// timestamps, a dumpcap ring buffer partly gzipped, and look-alike names
// that must stay apart because their times overlap or are far apart.
func TestGroupRotated(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	min := time.Minute
	// tcpdump -C: name.pcap, name.pcap1, name.pcap2, name.pcap10, in time
	// order by counter; lexical order would put pcap10 before pcap2 and
	// break the chain.
	for i, name := range []string{"c/cap.pcap", "c/cap.pcap1", "c/cap.pcap2", "c/cap.pcap10"} {
		writePcap(t, p(name), filler(t0.Add(time.Duration(i)*2*min), time.Second, 5))
	}
	// tcpdump -G 300 with strftime names, 1 minute apart from one file to
	// the next.
	writePcap(t, p("g/web-20261122-101500.pcap"), filler(t0, time.Minute, 5))
	writePcap(t, p("g/web-20261122-102000.pcap"), filler(t0.Add(5*min), time.Minute, 5))
	// dumpcap ring buffer, the last file gzipped, then a third file an hour
	// later: a new capture in the same ring.
	writePcap(t, p("r/ring_00001_20261122101500.pcap"), filler(t0, time.Second, 3))
	writePcap(t, p("r/ring_00002_20261122101600.pcap.gz"), filler(t0.Add(min), time.Second, 3))
	writePcap(t, p("r/ring_00003_20261122111600.pcap.gz"), filler(t0.Add(61*min), time.Second, 3))
	// Unrelated captures with look-alike names: a day apart; and two taken
	// at the same time on two hosts.
	writePcap(t, p("u/api-1.pcap"), filler(t0, time.Second, 3))
	writePcap(t, p("u/api-2.pcap"), filler(t0.Add(24*time.Hour), time.Second, 3))
	writePcap(t, p("u/host_1.pcap"), filler(t0, time.Second, 10))
	writePcap(t, p("u/host_2.pcap"), filler(t0.Add(5*time.Second), time.Second, 10))
	// No separator before the digits: a name, not a counter.
	writePcap(t, p("u/h2-tls.pcap"), filler(t0, time.Second, 3))
	writePcap(t, p("u/h2-tls12.pcap"), filler(t0.Add(3*time.Second), time.Second, 3))
	// Taken by content; left out: not a capture, hidden.
	writePcap(t, p("u/rawdump"), filler(t0, time.Second, 1))
	writePcap(t, p("u/.hidden.pcap"), filler(t0, time.Second, 1))
	if err := os.WriteFile(p("u/notes.txt"), []byte("not a capture\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	files, bad, err := Find([]string{dir})
	if err != nil || len(bad) != 0 {
		t.Fatalf("Find: %v %v", bad, err)
	}
	caps := Group(context.Background(), files, 0, 2)
	var got []string
	for _, c := range caps {
		var names []string
		for _, f := range c.Files {
			rel, _ := filepath.Rel(dir, f)
			names = append(names, filepath.ToSlash(rel))
		}
		got = append(got, strings.Join(names, " + "))
	}
	want := []string{
		"c/cap.pcap + c/cap.pcap1 + c/cap.pcap2 + c/cap.pcap10",
		"g/web-20261122-101500.pcap + g/web-20261122-102000.pcap",
		"r/ring_00001_20261122101500.pcap + r/ring_00002_20261122101600.pcap.gz",
		"r/ring_00003_20261122111600.pcap.gz",
		"u/api-1.pcap",
		"u/api-2.pcap",
		"u/h2-tls.pcap",
		"u/h2-tls12.pcap",
		"u/host_1.pcap",
		"u/host_2.pcap",
		"u/rawdump",
	}
	if !slices.Equal(got, want) {
		t.Errorf("captures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// With a gap shorter than the time between files, nothing is joined.
	caps = Group(context.Background(), files, 30*time.Second, 2)
	if len(caps) != 16 {
		t.Errorf("gap 30s: %d captures, want 16", len(caps))
	}
}

// TestRotatedFlowWhole checks that a connection whose packets are spread
// over two rotated files is analysed as one connection.
func TestRotatedFlowWhole(t *testing.T) {
	dir := t.TempDir()
	c := &tcpConn{t: t, ts: t0, cseq: 1000, sseq: 5000}
	c.seg(true, true, false, false, "")
	c.seg(false, true, true, false, "")
	c.seg(true, false, true, false, "")
	c.seg(true, false, true, false, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.seg(false, false, true, false, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c.seg(true, false, true, true, "")
	c.seg(false, false, true, true, "")
	c.seg(true, false, true, false, "")
	writePcap(t, filepath.Join(dir, "in", "cap.pcap"), c.frames[:4])
	writePcap(t, filepath.Join(dir, "in", "cap.pcap1"), c.frames[4:])
	_, out := runBatch(t, filepath.Join(dir, "out.ndjson"), Options{Workers: 2}, filepath.Join(dir, "in"))
	rs := records(t, out)
	if len(rs) != 1 {
		t.Fatalf("%d lines, want 1:\n%s", len(rs), out)
	}
	c0 := rs[0].Captures[0]
	if len(c0.Files) != 2 || c0.Packets != 8 || c0.Connections != 1 {
		t.Errorf("capture %+v, want 2 files, 8 packets, 1 connection", c0)
	}
}

// badDir copies a few committed captures to a directory, with a capture
// cut inside its file header, one cut part-way and a garbage file among
// them, and returns it with the names in output order.
func badDir(t *testing.T) (dir string, names []string) {
	dir = t.TempDir()
	for _, n := range []string{"grpc-goaway.pcapng", "http1-keepalive.pcapng", "tls13-resume.pcapng"} {
		copyFile(t, filepath.Join(pcapsDir, n), filepath.Join(dir, n), -1)
	}
	copyFile(t, filepath.Join(pcapsDir, "h2-tls.pcapng"), filepath.Join(dir, "h2-cut-header.pcapng"), 10)
	copyFile(t, filepath.Join(pcapsDir, "h2c-large-slow.pcapng"), filepath.Join(dir, "h2c-cut.pcapng"), 300_000)
	if err := os.WriteFile(filepath.Join(dir, "garbage.pcap"), bytes.Repeat([]byte("junk"), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, []string{"garbage.pcap", "grpc-goaway.pcapng", "h2-cut-header.pcapng", "h2c-cut.pcapng", "http1-keepalive.pcapng", "tls13-resume.pcapng"}
}

func TestCorruptFiles(t *testing.T) {
	dir, names := badDir(t)
	sum, out := runBatch(t, filepath.Join(t.TempDir(), "out.ndjson"), Options{Workers: 3}, dir)
	rs := records(t, out)
	if len(rs) != len(names) {
		t.Fatalf("%d lines, want %d:\n%s", len(rs), len(names), out)
	}
	for i, r := range rs {
		name := names[i]
		if got := r.Captures[0].Files; len(got) != 1 || got[0] != filepath.Join(dir, name) {
			t.Errorf("line %d: files %q, want %s", i+1, got, name)
		}
		switch name {
		case "garbage.pcap", "h2-cut-header.pcapng":
			if !strings.Contains(r.Error, filepath.Join(dir, name)+": offset ") {
				t.Errorf("%s: error %q does not name the file and offset", name, r.Error)
			}
			if r.Connections != nil {
				t.Errorf("%s: error record has connections", name)
			}
		case "h2c-cut.pcapng":
			f := r.Captures[0].Faults
			if r.Error != "" || len(f) != 1 || !strings.Contains(f[0], "h2c-cut.pcapng: frame ") || r.Captures[0].Packets == 0 {
				t.Errorf("%s: want a partial report with one located fault, got error %q faults %q", name, r.Error, f)
			}
		default:
			if r.Error != "" || len(r.Captures[0].Faults) != 0 || r.Captures[0].Packets == 0 {
				t.Errorf("%s: error %q, faults %q", name, r.Error, r.Captures[0].Faults)
			}
		}
	}
	want := Counts{Reports: 4, Partial: 1, Failed: 2, Analysed: 6}
	if sum.Captures != want || sum.Files != want {
		t.Errorf("summary captures %+v files %+v, want %+v", sum.Captures, sum.Files, want)
	}
}

// TestResume simulates runs killed after each line, and mid-line, and
// checks that the resumed output equals a clean run's.
func TestResume(t *testing.T) {
	dir, names := badDir(t)
	tmp := t.TempDir()
	clean := filepath.Join(tmp, "clean.ndjson")
	_, want := runBatch(t, clean, Options{Workers: 2}, dir)
	lines := strings.SplitAfter(string(want), "\n")
	lines = lines[:len(lines)-1]
	if len(lines) != len(names) {
		t.Fatalf("%d lines, want %d", len(lines), len(names))
	}
	for k := range len(lines) {
		for _, torn := range []string{"", lines[k][:len(lines[k])/2], "{\"schema\":"} {
			out := filepath.Join(tmp, "out.ndjson")
			if err := os.WriteFile(out, []byte(strings.Join(lines[:k], "")+torn), 0o644); err != nil {
				t.Fatal(err)
			}
			sum, got := runBatch(t, out, Options{Workers: 2}, dir)
			if !bytes.Equal(got, want) {
				t.Fatalf("after %d lines and %q: output differs from a clean run's:\n%s", k, torn, got)
			}
			reused := 0 // error records are retried
			for _, l := range lines[:k] {
				if !strings.Contains(l, `"error":`) {
					reused++
				}
			}
			if sum.Captures.Reused != reused || sum.Captures.Analysed != len(names)-reused {
				t.Errorf("after %d lines and %q: %+v, want %d reused", k, torn, sum.Captures, reused)
			}
		}
	}
	// A second run over a complete output only retries the captures
	// that failed.
	sum, got := runBatch(t, clean, Options{}, dir)
	if !bytes.Equal(got, want) || sum.Captures.Reused != len(names)-2 || sum.Captures.Analysed != 2 || sum.Captures.Reanalysed != 2 {
		t.Errorf("rerun changed the output or analysed again: %+v", sum.Captures)
	}
	// A complete last line that is not a report is not a torn line (the
	// writer never leaves a newline after a partial line): the file is
	// left alone.
	for _, last := range []string{"hello\n", "{\"schema\":\n", "\n"} {
		out := filepath.Join(tmp, "notours.ndjson")
		content := []byte(lines[0] + last)
		if err := os.WriteFile(out, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), []string{dir}, out, nil, Options{}); err == nil {
			t.Errorf("last line %q: no error", last)
		}
		if b, _ := os.ReadFile(out); !bytes.Equal(b, content) {
			t.Errorf("last line %q: the file was changed", last)
		}
	}
	// A damaged line before the last is not a torn line: the file is left
	// alone.
	damaged := lines[0] + "not json\n" + lines[1]
	out := filepath.Join(tmp, "damaged.ndjson")
	os.WriteFile(out, []byte(damaged), 0o644)
	if _, err := Run(context.Background(), []string{dir}, out, nil, Options{}); err == nil || !strings.Contains(err.Error(), "line 2 is not an h2scope report") {
		t.Errorf("damaged output: err %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != damaged {
		t.Errorf("damaged output was changed")
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	writePcap(t, filepath.Join(dir, "a.pcap"), filler(t0, time.Second, 1))
	writePcap(t, filepath.Join(dir, "sub", "b.pcap.gz"), filler(t0, time.Second, 1))
	writePcap(t, filepath.Join(dir, "sub", "c"), filler(t0, time.Second, 1))
	// A glob, the same file twice, a directory and a missing path.
	files, bad, err := Find([]string{filepath.Join(dir, "*.pcap"), filepath.Join(dir, "a.pcap"), filepath.Join(dir, "sub"), filepath.Join(dir, "missing.pcap")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.pcap"), filepath.Join(dir, "sub", "b.pcap.gz"), filepath.Join(dir, "sub", "c")}
	if !slices.Equal(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	if len(bad) != 1 || bad[0].Files[0] != filepath.Join(dir, "missing.pcap") || !os.IsNotExist(bad[0].Err) {
		t.Errorf("bad %+v, want the missing file", bad)
	}
	if _, _, err := Find([]string{filepath.Join(dir, "*.zst")}); err == nil || !strings.Contains(err.Error(), "matches no files") {
		t.Errorf("pattern without matches: err %v", err)
	}
}

// TestWorkersSameOutput checks that the output does not depend on the
// number of workers, with captures of very different sizes so that later
// ones finish first.
func TestWorkersSameOutput(t *testing.T) {
	dir, _ := badDir(t)
	tmp := t.TempDir()
	_, one := runBatch(t, filepath.Join(tmp, "1.ndjson"), Options{Workers: 1}, dir)
	_, four := runBatch(t, filepath.Join(tmp, "4.ndjson"), Options{Workers: 4}, dir)
	if !bytes.Equal(one, four) {
		t.Errorf("--workers 1 and 4 differ")
	}
}

// TestErrorRecordEscapesControls checks that an error record, which quotes
// a file's name, escapes C1 and bidi controls as the reports do.
func TestErrorRecordEscapesControls(t *testing.T) {
	dir := t.TempDir()
	name := "bad\u009b2J\u202egnp.pcap"
	if err := os.WriteFile(filepath.Join(dir, name), []byte("not a capture, long enough to be looked at"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out := runBatch(t, filepath.Join(t.TempDir(), "out.ndjson"), Options{Workers: 1}, dir)
	if strings.ContainsAny(string(out), "\u009b\u202e") {
		t.Fatalf("raw control in the error record: %q", out)
	}
	for _, esc := range []string{`\u009b`, `\u202e`} {
		if !strings.Contains(string(out), esc) {
			t.Errorf("error record lacks %s: %s", esc, out)
		}
	}
	rs := records(t, out)
	if len(rs) != 1 || rs[0].Error == "" || rs[0].Captures[0].Files[0] != filepath.Join(dir, name) {
		t.Errorf("want one error record naming %q, got %s", name, out)
	}
}
