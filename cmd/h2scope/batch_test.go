package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBatchCmd runs h2scope batch with args and returns the exit code and stderr.
func runBatchCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var o, e bytes.Buffer
	code := run(context.Background(), append([]string{"batch"}, args...), &o, &e)
	return code, e.String()
}

// batchLines parses an NDJSON output and returns, per line, the capture's
// files and its error, if any.
func batchLines(t *testing.T, b []byte) (files [][]string, errs []string) {
	t.Helper()
	for i, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var r struct {
			Captures []struct {
				Files []string `json:"files"`
			} `json:"captures"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(l, &r); err != nil || len(r.Captures) != 1 {
			t.Fatalf("line %d: %v (%d captures)", i+1, err, len(r.Captures))
		}
		files = append(files, r.Captures[0].Files)
		errs = append(errs, r.Error)
	}
	return files, errs
}

// TestBatchWorkersIdentical runs batch over every committed capture with
// one and with four workers: the outputs must be byte-identical, one line
// per capture, in path order.
func TestBatchWorkersIdentical(t *testing.T) {
	dir := t.TempDir()
	var pcaps []string // every capture, in subdirectories too, as batch finds them
	filepath.WalkDir("../../testdata/pcaps", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pcapng") {
			pcaps = append(pcaps, p)
		}
		return err
	})
	var outs [][]byte
	for _, w := range []string{"1", "4"} {
		out := filepath.Join(dir, w+".ndjson")
		code, stderr := runBatchCmd(t, "--workers", w, "--out", out, "../../testdata/pcaps")
		if code != exitOK {
			t.Fatalf("--workers %s: exit %d\n%s", w, code, stderr)
		}
		if !strings.Contains(stderr, fmt.Sprintf("%s holds %d captures (%d files): %d reports, 0 failed\n", out, len(pcaps), len(pcaps), len(pcaps))) {
			t.Errorf("--workers %s: summary:\n%s", w, stderr)
		}
		outs = append(outs, readFile(t, out))
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatal("--workers 1 and --workers 4 outputs differ")
	}
	files, _ := batchLines(t, outs[0])
	if len(files) != len(pcaps) {
		t.Fatalf("%d lines, want %d", len(files), len(pcaps))
	}
	// The key logs beside the TLS captures (NAME.keys) were found: every
	// TLS capture with one is decrypted.
	for _, l := range bytes.Split(bytes.TrimSpace(outs[0]), []byte("\n")) {
		var r struct {
			Captures []struct {
				Files          []string       `json:"files"`
				TLSUndecrypted map[string]int `json:"tls_undecrypted"`
				KeyLog         *struct {
					Sources int `json:"sources"`
				} `json:"key_log"`
			} `json:"captures"`
		}
		json.Unmarshal(l, &r)
		c := r.Captures[0]
		keys := strings.TrimSuffix(c.Files[0], ".pcapng") + ".keys"
		if _, err := os.Stat(keys); err == nil && (c.KeyLog == nil || c.KeyLog.Sources != 1 || len(c.TLSUndecrypted) != 0) {
			t.Errorf("%s: not decrypted with %s: %v", c.Files[0], keys, c.TLSUndecrypted)
		}
	}
	for i, f := range files {
		if len(f) != 1 || f[0] != pcaps[i] {
			t.Errorf("line %d: files %q, want %s", i+1, f, pcaps[i])
		}
	}
	// The committed captures hold critical findings: --fail-on critical
	// exits 1.
	if code, _ := runBatchCmd(t, "--fail-on", "critical", "--out", filepath.Join(dir, "new.ndjson"), "../../testdata/pcaps"); code != exitFindings {
		t.Errorf("--fail-on critical: exit %d, want %d", code, exitFindings)
	}
}

// copies makes dir with copies of a few captures and a truncated and a
// garbage file among them.
func copies(t *testing.T, dir string) {
	t.Helper()
	for _, n := range []string{"grpc-unary-h2c.pcapng", "h2-goaway-abrupt.pcapng", "syn-refused.pcapng"} {
		writeFile(t, filepath.Join(dir, n), readFile(t, filepath.Join("../../testdata/pcaps", n)))
	}
	writeFile(t, filepath.Join(dir, "h2-max-streams.pcapng"), readFile(t, "../../testdata/pcaps/h2-max-streams.pcapng")[:20])
	writeFile(t, filepath.Join(dir, "junk.pcap"), []byte("this is not a capture file at all"))
}

func TestBatchCorrupt(t *testing.T) {
	dir := t.TempDir()
	copies(t, dir)
	out := filepath.Join(t.TempDir(), "out.ndjson")
	code, stderr := runBatchCmd(t, "--workers", "2", "--out", out, dir)
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	files, errs := batchLines(t, readFile(t, out))
	want := []string{"grpc-unary-h2c.pcapng", "h2-goaway-abrupt.pcapng", "h2-max-streams.pcapng", "junk.pcap", "syn-refused.pcapng"}
	if len(files) != len(want) {
		t.Fatalf("%d lines, want %d", len(files), len(want))
	}
	for i, n := range want {
		bad := n == "h2-max-streams.pcapng" || n == "junk.pcap"
		if files[i][0] != filepath.Join(dir, n) || (errs[i] != "") != bad {
			t.Errorf("line %d: files %q error %q, want %s (error: %v)", i+1, files[i], errs[i], n, bad)
		}
		if bad && !strings.Contains(stderr, filepath.Join(dir, n)+": offset ") {
			t.Errorf("stderr does not name %s and its offset:\n%s", n, stderr)
		}
	}
	if !strings.Contains(stderr, "holds 5 captures (5 files): 3 reports, 2 failed (2 files)\nh2scope batch: this run analysed 5 captures (5 files); reused 0 unchanged\n") {
		t.Errorf("summary:\n%s", stderr)
	}
}

func TestBatchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"../../testdata/pcaps"},                              // no --out
		{"--out", filepath.Join(t.TempDir(), "o.ndjson")},     // no captures
		{"--out", "-", "--fail-on", "info", "../../testdata"}, // bad severity
		{"--out", "-", "../../testdata/pcaps/*.nothing"},      // glob without matches
	} {
		if code, _ := runBatchCmd(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestBatchKilled kills a batch run with SIGKILL once its first line is
// out, resumes it, and checks that the output equals a clean run's: every
// capture exactly once.
func TestBatchKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build h2scope with")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "h2scope")
	if b, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	// Enough input that one worker is still busy when the first line
	// appears: links to the largest capture under names that are no
	// rotation series.
	dir := filepath.Join(tmp, "in")
	os.Mkdir(dir, 0o755)
	big, _ := filepath.Abs("../../testdata/pcaps/h2c-large-slow.pcapng")
	for i := range 30 {
		if err := os.Symlink(big, filepath.Join(dir, fmt.Sprintf("large-%c%c.pcapng", 'a'+i/26, 'a'+i%26))); err != nil {
			t.Skipf("symlink: %v", err)
		}
	}
	copies(t, dir)
	out := filepath.Join(tmp, "out.ndjson")
	cmd := exec.Command(bin, "batch", "--workers", "1", "--out", out, dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(out); bytes.IndexByte(b, '\n') >= 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	before := readFile(t, out)
	n := bytes.Count(before, []byte("\n"))
	t.Logf("killed after %d complete lines (%d bytes)", n, len(before))

	code, stderr := runBatchCmd(t, "--workers", "2", "--out", out, dir)
	if code != exitUsage { // the two bad files
		t.Errorf("resumed run: exit %d\n%s", code, stderr)
	}
	clean := filepath.Join(tmp, "clean.ndjson")
	runBatchCmd(t, "--workers", "2", "--out", clean, dir)
	got, want := readFile(t, out), readFile(t, clean)
	if !bytes.Equal(got, want) {
		t.Fatalf("resumed output (%d bytes) differs from a clean run's (%d bytes)", len(got), len(want))
	}
	files, _ := batchLines(t, got)
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f[0]] {
			t.Errorf("%s reported twice", f[0])
		}
		seen[f[0]] = true
	}
	if len(seen) != 35 {
		t.Errorf("%d captures reported, want 35", len(seen))
	}
}

// TestAnalyzeKeyLogNotes checks what analyze says about TLS it could not
// decrypt: "give --keylog" only when no key log was given; with key logs
// that fit no session, how many secrets were read and that none fit; and a
// key log behind an over-long line still decrypts everything.
func TestAnalyzeKeyLogNotes(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, "long.keys")
	writeFile(t, long, append([]byte("CLIENT_RANDOM "+strings.Repeat("ab", 3000)+"\n"), readFile(t, "../../testdata/pcaps/h2-tls.keys")...))
	tests := []struct {
		args       []string
		want, warn string // in stdout, in stderr
	}{
		{nil, "TLS: 1 of 1 connections not decrypted (1 no_key_log); give --keylog to see inside them", ""},
		{[]string{"--keylog", "../../testdata/pcaps/grpc-tls.keys"},
			"; 4 secrets read from 1 source, none fit these sessions (1 client random missing from them)", ""},
		{[]string{"--keylog", "../../testdata/pcaps/grpc-tls.keys", "--keylog", "../../testdata/pcaps/tls-alert.keys"},
			"; 10 secrets read from 2 sources, none fit these sessions (1 client random missing from them)", ""},
		{[]string{"--keylog", long}, "", long + ":1: key log line ignored: line is 6014 bytes long"},
	}
	for _, tt := range tests {
		var o, e bytes.Buffer
		args := append(append([]string{"analyze"}, tt.args...), "../../testdata/pcaps/h2-tls.pcapng")
		if code := run(context.Background(), args, &o, &e); code != exitOK {
			t.Errorf("%q: exit %d\n%s", tt.args, code, e.String())
		}
		if tt.want == "" && strings.Contains(o.String(), "TLS: ") {
			t.Errorf("%q: a TLS line though everything was decrypted:\n%s", tt.args, o.String())
		}
		if tt.want != "" && !strings.Contains(o.String(), tt.want) {
			t.Errorf("%q: output does not say %q:\n%s", tt.args, tt.want, o.String())
		}
		if tt.want != "" && len(tt.args) > 0 && strings.Contains(o.String(), "give --keylog") {
			t.Errorf("%q: asks for --keylog though one was given", tt.args)
		}
		if !strings.Contains(e.String(), tt.warn) || tt.warn == "" && e.Len() > 0 {
			t.Errorf("%q: stderr %q, want %q", tt.args, e.String(), tt.warn)
		}
	}
}

// TestBatchRefusalsAndInterrupt checks that batch refuses an output that
// is one of its captures or holds a capture, leaving it as it was, that
// contradictory progress flags are refused, and that an interrupted run
// says that re-running resumes.
func TestBatchRefusalsAndInterrupt(t *testing.T) {
	dir := t.TempDir()
	copies(t, dir)
	saved := filepath.Join(t.TempDir(), "saved.pcapng")
	writeFile(t, saved, readFile(t, "../../testdata/pcaps/syn-refused.pcapng"))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "out.ndjson")
	tests := []struct {
		ctx  context.Context
		args []string
		want string
	}{
		{context.Background(), []string{"--out", filepath.Join(dir, "syn-refused.pcapng"), dir}, "refusing to write " + filepath.Join(dir, "syn-refused.pcapng") + ": it holds a capture"},
		{context.Background(), []string{"--out", saved, dir}, "refusing to write " + saved + ": it holds a capture"},
		{context.Background(), []string{"--out", dir, dir}, "refusing to write " + dir},
		{context.Background(), []string{"--progress", "--no-progress", "--out", out, dir}, "--progress and --no-progress"},
		{canceled, []string{"--out", out, dir}, "interrupted; the captures done are in " + out + ": re-running the same command resumes"},
	}
	for _, tt := range tests {
		before := readFile(t, saved)
		var o, e bytes.Buffer
		code := run(tt.ctx, append([]string{"batch"}, tt.args...), &o, &e)
		if code != exitUsage || !strings.Contains(e.String(), tt.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tt.args, code, e.String(), tt.want)
		}
		if !bytes.Equal(readFile(t, saved), before) || !bytes.Equal(readFile(t, filepath.Join(dir, "syn-refused.pcapng")), readFile(t, "../../testdata/pcaps/syn-refused.pcapng")) {
			t.Errorf("%q: a capture was changed", tt.args)
		}
	}
}
