package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/report"
)

// outLine is what these tests read of an output line.
type outLine struct {
	Captures []struct {
		Files          []string          `json:"files"`
		Faults         []string          `json:"faults"`
		ResumeKey      string            `json:"resume_key"`
		TLSUndecrypted map[string]int    `json:"tls_undecrypted"`
		KeyLog         *report.KeyLogUse `json:"key_log"`
		Connections    int               `json:"connections"`
	} `json:"captures"`
	Error    string            `json:"error"`
	Findings []json.RawMessage `json:"findings"`
	raw      string
}

// outLines parses an output file by the base name of each line's first
// file.
func outLines(t *testing.T, path string) (names []string, by map[string]outLine) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	by = map[string]outLine{}
	for i, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		var r outLine
		if err := json.Unmarshal([]byte(l), &r); err != nil || len(r.Captures) != 1 {
			t.Fatalf("%s line %d: %v", path, i+1, err)
		}
		r.raw = l
		n := filepath.Base(r.Captures[0].Files[0])
		names = append(names, n)
		by[n] = r
	}
	return names, by
}

// resumeDir copies real captures to a directory: TLS captures without
// their key logs, a healthy HTTP/1 capture, one truncated part-way and a
// garbage file.
func resumeDir(t *testing.T) string {
	dir := t.TempDir()
	for _, n := range []string{"h2-tls.pcapng", "grpc-tls.pcapng", "http1-keepalive.pcapng"} {
		copyFile(t, filepath.Join(pcapsDir, n), filepath.Join(dir, n), -1)
	}
	copyFile(t, filepath.Join(pcapsDir, "h2c-large-slow.pcapng"), filepath.Join(dir, "h2c-cut.pcapng"), 300_000)
	if err := os.WriteFile(filepath.Join(dir, "garbage.pcap"), bytes.Repeat([]byte("junk"), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestResumeKnowsWhatChanged runs a batch, changes one thing that decides
// results at a time, and runs it again: exactly the captures the change
// touches are analysed again (and the captures that failed, every time),
// their old lines are replaced, and the output equals a clean run's with
// the same inputs and options. Before, a resumed batch skipped every
// capture already in the output, whatever had changed.
func TestResumeKnowsWhatChanged(t *testing.T) {
	dir := resumeDir(t)
	out := filepath.Join(t.TempDir(), "out.ndjson")
	h2keys, _ := os.ReadFile(filepath.Join(pcapsDir, "h2-tls.keys"))
	strict := analyze.DefaultConfig()
	strict.RSTStorm.MinResets = 2
	opts := Options{Workers: 2, Version: "test 1"}
	all := []string{"garbage.pcap", "grpc-tls.pcapng", "h2-tls.pcapng", "h2c-cut.pcapng", "http1-keepalive.pcapng"}
	tests := []struct {
		name   string
		change func(t *testing.T)
		again  []string // re-analysed, besides garbage.pcap
		check  func(t *testing.T, by map[string]outLine)
	}{
		{"nothing changed", func(t *testing.T) {}, nil, nil},
		{"a key log given", func(t *testing.T) {
			opts.KeyLogs = []KeyLogFile{{Name: "h2-tls.keys", Data: h2keys}}
		}, all, func(t *testing.T, by map[string]outLine) {
			c := by["h2-tls.pcapng"].Captures[0]
			if c.TLSUndecrypted != nil || c.KeyLog == nil || c.KeyLog.Matched != 1 {
				t.Errorf("h2-tls not decrypted with the key log: %+v %+v", c.TLSUndecrypted, c.KeyLog)
			}
			if c := by["grpc-tls.pcapng"].Captures[0]; c.TLSUndecrypted["no_keys_for_session"] == 0 {
				t.Errorf("grpc-tls: %v", c.TLSUndecrypted)
			}
		}},
		{"a key log put beside a capture", func(t *testing.T) {
			copyFile(t, filepath.Join(pcapsDir, "grpc-tls.keys"), filepath.Join(dir, "grpc-tls.keys"), -1)
		}, []string{"grpc-tls.pcapng"}, func(t *testing.T, by map[string]outLine) {
			c := by["grpc-tls.pcapng"].Captures[0]
			if c.TLSUndecrypted != nil || c.KeyLog == nil || c.KeyLog.Sources != 2 || c.KeyLog.Matched == 0 {
				t.Errorf("grpc-tls not decrypted with the key log beside it: %+v %+v", c.TLSUndecrypted, c.KeyLog)
			}
		}},
		{"a key log beside a capture changed", func(t *testing.T) {
			b, _ := os.ReadFile(filepath.Join(dir, "grpc-tls.keys"))
			os.WriteFile(filepath.Join(dir, "grpc-tls.keys"), append(b, "# a comment\n"...), 0o644)
		}, []string{"grpc-tls.pcapng"}, nil},
		{"a truncated capture replaced by a good copy", func(t *testing.T) {
			copyFile(t, filepath.Join(pcapsDir, "h2c-large-slow.pcapng"), filepath.Join(dir, "h2c-cut.pcapng"), -1)
		}, []string{"h2c-cut.pcapng"}, func(t *testing.T, by map[string]outLine) {
			if f := by["h2c-cut.pcapng"].Captures[0].Faults; len(f) != 0 {
				t.Errorf("the good copy still reports faults %q", f)
			}
		}},
		{"a capture touched", func(t *testing.T) {
			now := time.Now().Add(time.Hour)
			os.Chtimes(filepath.Join(dir, "http1-keepalive.pcapng"), now, now)
		}, []string{"http1-keepalive.pcapng"}, nil},
		{"other thresholds", func(t *testing.T) { opts.Config = &strict }, all, nil},
		{"redaction off", func(t *testing.T) { opts.Redaction.Off = true }, all, nil},
		{"other timeline limits", func(t *testing.T) { opts.Limits = report.Limits{Events: 10, Spans: 10} }, all, nil},
		{"another h2scope version", func(t *testing.T) { opts.Version = "test 2" }, all, nil},
		{"every connection", func(t *testing.T) { opts.Connections = report.ConnsAll }, all, func(t *testing.T, by map[string]outLine) {
			var r struct {
				Included    string            `json:"connections_included"`
				Connections []json.RawMessage `json:"connections"`
				Timelines   []json.RawMessage `json:"timelines"`
			}
			l := by["http1-keepalive.pcapng"]
			if err := json.Unmarshal([]byte(l.raw), &r); err != nil || r.Included != "all" || len(r.Connections) != l.Captures[0].Connections ||
				len(r.Timelines) != len(r.Connections) {
				t.Errorf("--connections all: %v, %q, %d connections, %d timelines, the capture %d", err, r.Included,
					len(r.Connections), len(r.Timelines), l.Captures[0].Connections)
			}
		}},
		{"workers and gap do not count", func(t *testing.T) { opts.Workers, opts.Gap = 1, time.Hour }, nil, nil},
	}
	runBatch(t, out, opts, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change(t)
			_, before := outLines(t, out)
			sum, _ := runBatch(t, out, opts, dir)
			names, by := outLines(t, out)
			if !slices.Equal(names, all) {
				t.Fatalf("lines %q, want %q", names, all)
			}
			want := append([]string{"garbage.pcap"}, tt.again...)
			if slices.Equal(tt.again, all) {
				want = all
			}
			var again []string
			for _, n := range all {
				if slices.Contains(want, n) {
					again = append(again, n)
				}
			}
			if sum.Captures.Analysed != len(again) || sum.Captures.Reanalysed != len(again) || sum.Captures.Reused != len(all)-len(again) {
				t.Errorf("summary %+v, want %d re-analysed (%q), %d reused", sum.Captures, len(again), again, len(all)-len(again))
			}
			for _, n := range all {
				changed := by[n].raw != before[n].raw
				if changed && !slices.Contains(again, n) && n != "garbage.pcap" {
					t.Errorf("%s: line changed though nothing that decides it did", n)
				}
				if n != "garbage.pcap" && by[n].Captures[0].ResumeKey == "" {
					t.Errorf("%s: no resume key", n)
				}
				if slices.Contains(tt.again, n) && n != "garbage.pcap" && by[n].Captures[0].ResumeKey == before[n].Captures[0].ResumeKey {
					t.Errorf("%s: re-analysed under the same resume key", n)
				}
			}
			if tt.check != nil {
				tt.check(t, by)
			}
			// The same as a clean run's output.
			clean := filepath.Join(t.TempDir(), "clean.ndjson")
			_, want2 := runBatch(t, clean, opts, dir)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, want2) {
				t.Errorf("resumed output differs from a clean run's")
			}
		})
	}
}

// TestKeyLogNames checks which key logs are looked for beside a
// capture's files.
func TestKeyLogNames(t *testing.T) {
	tests := []struct {
		files []string
		want  []string
	}{
		{[]string{"d/grpc-tls.pcapng"}, []string{"d/grpc-tls.keylog", "d/grpc-tls.keys", "d/grpc-tls.sslkeylog", "d/sslkeylog.txt", "d/keylog.txt"}},
		{[]string{"d/x.pcap.gz"}, []string{"d/x.keylog", "d/x.keys", "d/x.sslkeylog", "d/sslkeylog.txt", "d/keylog.txt"}},
		{[]string{"d/X.PCAPNG.ZST"}, []string{"d/X.keylog", "d/X.keys", "d/X.sslkeylog", "d/sslkeylog.txt", "d/keylog.txt"}},
		{[]string{"d/cap.pcap", "d/cap.pcap1.gz"}, []string{"d/cap.keylog", "d/cap.keys", "d/cap.sslkeylog", "d/sslkeylog.txt", "d/keylog.txt"}},
		{[]string{"d/rawdump"}, []string{"d/rawdump.keylog", "d/rawdump.keys", "d/rawdump.sslkeylog", "d/sslkeylog.txt", "d/keylog.txt"}},
		{[]string{"a/w-1.pcap", "b/w-2.pcap"}, []string{"a/w-1.keylog", "a/w-1.keys", "a/w-1.sslkeylog", "b/w-2.keylog", "b/w-2.keys", "b/w-2.sslkeylog",
			"a/sslkeylog.txt", "a/keylog.txt", "b/sslkeylog.txt", "b/keylog.txt"}},
	}
	for _, tt := range tests {
		var files []string
		for _, f := range tt.files {
			files = append(files, filepath.FromSlash(f))
		}
		var got []string
		for _, g := range keyLogNames(files) {
			got = append(got, filepath.ToSlash(g))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("keyLogNames(%q)\n got %q\nwant %q", tt.files, got, tt.want)
		}
	}
}

// TestKeyLogsBeside runs a batch over real TLS captures with their key
// logs beside them under each name looked for, and one directory's
// sslkeylog.txt: every TLS connection is decrypted, each capture with its
// own key logs only.
func TestKeyLogsBeside(t *testing.T) {
	dir := t.TempDir()
	put := func(src, dst string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(filepath.Join(dir, dst)), 0o755)
		copyFile(t, filepath.Join(pcapsDir, src), filepath.Join(dir, dst), -1)
	}
	put("grpc-tls.pcapng", "a/grpc-tls.pcapng")
	put("grpc-tls.keys", "a/grpc-tls.keys")
	put("h2-tls.pcapng", "a/h2-tls.pcapng")
	put("h2-tls.keys", "a/h2-tls.keylog")
	put("h2-tls12.pcapng", "b/h2-tls12.pcapng")
	put("h2-tls12.keys", "b/h2-tls12.sslkeylog")
	put("tls-alert.pcapng", "c/tls-alert.pcapng")
	put("tls-alert.keys", "c/sslkeylog.txt")
	put("h2-tls.pcapng", "d/copy.pcapng") // no key log beside it
	var log bytes.Buffer
	_, _ = runBatch(t, filepath.Join(dir, "out.ndjson"), Options{Workers: 2, Log: &log}, dir)
	names, by := outLines(t, filepath.Join(dir, "out.ndjson"))
	if len(names) != 5 {
		t.Fatalf("lines %q", names)
	}
	for n, r := range by {
		c := r.Captures[0]
		if n == "copy.pcapng" {
			if c.KeyLog != nil || c.TLSUndecrypted["no_key_log"] != 1 {
				t.Errorf("%s: another capture's key log reached it: %+v %v", n, c.KeyLog, c.TLSUndecrypted)
			}
			continue
		}
		if c.TLSUndecrypted != nil || c.KeyLog == nil || c.KeyLog.Sources != 1 || c.KeyLog.Matched == 0 || c.KeyLog.MissingClientRandoms != 0 {
			t.Errorf("%s: not decrypted with the key log beside it: %v %+v", n, c.TLSUndecrypted, c.KeyLog)
		}
	}
	if log.Len() != 0 {
		t.Errorf("log: %s", log.String())
	}
}

// TestSummaryWholeOutput runs a batch over two directories in turn into
// one output: the second run keeps the first one's lines, and its summary
// counts every line of the output and their findings.
func TestSummaryWholeOutput(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	copyFile(t, filepath.Join(pcapsDir, "grpc-goaway.pcapng"), filepath.Join(a, "grpc-goaway.pcapng"), -1)
	copyFile(t, filepath.Join(pcapsDir, "http1-nokeepalive.pcapng"), filepath.Join(a, "http1-nokeepalive.pcapng"), -1)
	copyFile(t, filepath.Join(pcapsDir, "syn-refused.pcapng"), filepath.Join(b, "syn-refused.pcapng"), -1)
	os.WriteFile(filepath.Join(b, "junk.pcap"), []byte("junk"), 0o644)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out.ndjson")
	sumA, _ := runBatch(t, out, Options{}, a)
	sum, _ := runBatch(t, out, Options{}, b)
	both, _ := runBatch(t, filepath.Join(tmp, "both.ndjson"), Options{}, a, b)
	if sum.Captures.Other != 2 || sum.Captures.Analysed != 2 || sum.Captures.Reports != 3 || sum.Captures.Failed != 1 {
		t.Errorf("second run: %+v", sum.Captures)
	}
	if !maps2Equal(sum.Findings, both.Findings) || len(sum.Findings) <= len(sumA.Findings)-1 {
		t.Errorf("findings %v, want those of both directories %v", sum.Findings, both.Findings)
	}
	var w bytes.Buffer
	sum.Write(&w)
	for _, want := range []string{
		out + " holds 4 captures (4 files): 3 reports, 1 failed (1 file)\n",
		"this run analysed 2 captures (2 files); reused 0 unchanged; kept 2 lines of captures not given\n",
	} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("summary does not say %q:\n%s", want, w.String())
		}
	}
	// A third run over both reuses every report and retries the failure.
	sum, _ = runBatch(t, out, Options{}, a, b)
	if sum.Captures.Reused != 3 || sum.Captures.Analysed != 1 || sum.Captures.Reanalysed != 1 || !maps2Equal(sum.Findings, both.Findings) {
		t.Errorf("third run: %+v %v", sum.Captures, sum.Findings)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, mustRead(t, filepath.Join(tmp, "both.ndjson"))) {
		t.Errorf("the output differs from a clean run's over both directories")
	}
}

func maps2Equal(a, b map[string][3]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stepClock is a clock that moves one second each time it is read.
type stepClock struct{ t time.Time }

func (c *stepClock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

// cancelWriter cancels a context once what is written to it holds a
// string.
type cancelWriter struct {
	buf    bytes.Buffer
	when   string
	cancel func()
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if w.when != "" && strings.Contains(w.buf.String(), w.when) {
		w.cancel()
	}
	return len(p), nil
}

// TestProgressAndInterrupt checks the progress line (files done of all,
// bytes, rate, time left) on a fake terminal with a clock that moves one
// second per reading, then interrupts a run once a file is done and
// resumes it: the output equals a clean run's.
func TestProgressAndInterrupt(t *testing.T) {
	dir := resumeDir(t)
	tmp := t.TempDir()
	w := &cancelWriter{}
	clk := &stepClock{t: t0}
	sum, _ := runBatch(t, filepath.Join(tmp, "clean.ndjson"), Options{Workers: 1, Progress: report.NewProgressWriter(w, clk.now), Now: clk.now}, dir)
	var size int64
	for _, n := range []string{"garbage.pcap", "grpc-tls.pcapng", "h2-tls.pcapng", "h2c-cut.pcapng", "http1-keepalive.pcapng"} {
		fi, _ := os.Stat(filepath.Join(dir, n))
		size += fi.Size()
	}
	draws := strings.Split(w.buf.String(), "\r")
	re := regexp.MustCompile(`^\[[#.]{24}\] +\d+%  (\d)/5 files  [0-9.]+/` + regexp.QuoteMeta(formatMB(size)) + ` MB(  [0-9.]+ MB/s(  ETA \d+s)?)? *$`)
	seen := map[string]bool{}
	for _, d := range draws {
		if strings.TrimSpace(d) == "" {
			continue
		}
		m := re.FindStringSubmatch(d)
		if m == nil {
			t.Errorf("progress line %q", d)
			continue
		}
		seen[m[1]] = true
	}
	if !seen["0"] || !seen["5"] || !strings.Contains(w.buf.String(), "MB/s  ETA ") {
		t.Errorf("progress did not go from 0/5 to 5/5 files with a rate and ETA: %q", w.buf.String())
	}
	if !strings.HasSuffix(w.buf.String(), "\r") {
		t.Errorf("progress line not cleared at the end: %q", w.buf.String())
	}
	if sum.Elapsed <= 0 {
		t.Errorf("elapsed %v", sum.Elapsed)
	}

	// Interrupted once the second file is done, then resumed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w = &cancelWriter{when: "2/5 files", cancel: cancel}
	out := filepath.Join(tmp, "out.ndjson")
	sum, err := Run(ctx, []string{dir}, out, nil, Options{Workers: 1, Progress: report.NewProgressWriter(w, clk.now), Now: clk.now})
	if err != context.Canceled {
		t.Fatalf("interrupted run: err %v", err)
	}
	if sum.Captures.Analysed != 2 || sum.Captures.Pending != 3 {
		t.Errorf("interrupted run: %+v", sum.Captures)
	}
	sum, got := runBatch(t, out, Options{Workers: 2}, dir)
	if sum.Captures.Reused != 1 || sum.Captures.Analysed != 4 { // the garbage file is retried
		t.Errorf("resumed run: %+v", sum.Captures)
	}
	if !bytes.Equal(got, mustRead(t, filepath.Join(tmp, "clean.ndjson"))) {
		t.Errorf("resumed output differs from a clean run's")
	}
}

// formatMB writes a byte count in MB as the progress line does.
func formatMB(n int64) string { return fmt.Sprintf("%.1f", float64(n)/1e6) }

// TestOutputRefused checks that an output that is one of the captures,
// or holds a capture, is refused before anything is written.
func TestOutputRefused(t *testing.T) {
	dir := resumeDir(t)
	other := filepath.Join(t.TempDir(), "saved.pcapng")
	copyFile(t, filepath.Join(pcapsDir, "syn-refused.pcapng"), other, -1)
	link := filepath.Join(t.TempDir(), "link.ndjson")
	os.Symlink(filepath.Join(dir, "h2-tls.pcapng"), link)
	for _, out := range []string{filepath.Join(dir, "h2-tls.pcapng"), other, link, dir} {
		before, _ := os.ReadFile(out)
		_, err := Run(context.Background(), []string{dir}, out, nil, Options{})
		if err == nil || !strings.Contains(err.Error(), out) {
			t.Errorf("--out %s: err %v", out, err)
		}
		if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
			t.Errorf("--out %s: the file was changed", out)
		}
	}
}
