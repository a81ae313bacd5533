package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/internal/golden"
)

const (
	nokeepalive = "../../testdata/pcaps/http1-nokeepalive.pcapng" // 15 connections, a reconnect_churn warning
	keepalive   = "../../testdata/pcaps/http1-keepalive.pcapng"
	grpcUnary   = "../../testdata/pcaps/grpc-unary-h2c.pcapng"
	grpcTLS     = "../../testdata/pcaps/grpc-tls.pcapng"
	grpcTLSKeys = "../../testdata/pcaps/grpc-tls.keys"
)

// TestOutputNeverAnInput checks that analyze refuses, before reading a
// capture, an output that is an input, leads to one, or holds a capture,
// and one it cannot create, with one line naming the path given; the
// inputs are left as they were.
func TestOutputNeverAnInput(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pcapng"), filepath.Join(dir, "b.pcapng")
	capA, capB := readFile(t, nokeepalive), readFile(t, keepalive)
	writeFile(t, a, capA)
	writeFile(t, b, capB)
	if err := os.Symlink("a.pcapng", filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(b, filepath.Join(dir, "hard.json")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	tests := []struct {
		args []string
		want string
	}{
		// The slip of the issue: --json takes a.pcapng as its file.
		{[]string{"--json", "a.pcapng", "b.pcapng"}, "h2scope analyze --json: refusing to write a.pcapng: it holds a capture; remove it first to overwrite it"},
		{[]string{"--md", "./a.pcapng", "a.pcapng"}, "h2scope analyze --md: refusing to write ./a.pcapng: it is the input a.pcapng"},
		{[]string{"--html", "link.json", "a.pcapng"}, "h2scope analyze --html: refusing to write link.json (a link to a.pcapng): it is the input a.pcapng"},
		{[]string{"--json", "hard.json", "b.pcapng"}, "h2scope analyze --json: refusing to write hard.json: it is the input b.pcapng"},
		{[]string{"b.pcapng", "--json", "a.pcapng"}, "h2scope analyze --json: refusing to write a.pcapng: it holds a capture; remove it first to overwrite it"},
		{[]string{"--json", "r.json", "--md", "no/such/dir/r.md", "b.pcapng"}, "h2scope analyze --md: cannot write no/such/dir/r.md: cannot create a file in no/such/dir: no such file or directory"},
		{[]string{"--json", "r.json", "--html", "./r.json", "b.pcapng"}, "h2scope analyze --html: refusing to write ./r.json: it is also the output r.json"},
	}
	for _, tt := range tests {
		out, errOut, code := runCLI(t, append([]string{"analyze"}, tt.args...)...)
		if code != 2 || out != "" || errOut != tt.want+"\n" {
			t.Errorf("analyze %q: exit %d, stdout %q, stderr %q; want exit 2, only %q", tt.args, code, out, errOut, tt.want)
		}
		if !bytes.Equal(readFile(t, a), capA) || !bytes.Equal(readFile(t, b), capB) {
			t.Fatalf("analyze %q changed an input", tt.args)
		}
		if _, err := os.Stat("r.json"); err == nil {
			t.Errorf("analyze %q wrote r.json", tt.args)
		}
	}
	ents, _ := os.ReadDir(".")
	if len(ents) != 4 {
		t.Errorf("files left in the directory: %v", ents)
	}
}

// TestDuplicateInputsReadOnce: a capture given twice (again, as a link,
// as a copy) is read once, with a warning, not merged with itself.
func TestDuplicateInputsReadOnce(t *testing.T) {
	dir := t.TempDir()
	cp := filepath.Join(dir, "copy.pcapng")
	writeFile(t, cp, readFile(t, grpcUnary))
	ln := filepath.Join(dir, "link.pcapng")
	abs, _ := filepath.Abs(grpcUnary)
	if err := os.Symlink(abs, ln); err != nil {
		t.Fatal(err)
	}
	once, _, code := runCLI(t, "conns", "--json", grpcUnary)
	if code != 0 {
		t.Fatal(code)
	}
	for _, cmd := range []string{"conns", "analyze"} {
		args := []string{cmd, "--json", grpcUnary, cp, grpcUnary, ln}
		if cmd == "analyze" {
			args = []string{cmd, "--json", "-", grpcUnary, cp, grpcUnary, ln}
		}
		out, errOut, code := runCLI(t, args...)
		want := "h2scope: warning: " + cp + " has the same content as " + grpcUnary + "; reading it once\n" +
			"h2scope: warning: " + grpcUnary + " is given twice; reading it once\n" +
			"h2scope: warning: " + ln + " is the same file as " + grpcUnary + "; reading it once\n"
		if code != 0 || errOut != want {
			t.Errorf("%s: exit %d, stderr %q, want %q", cmd, code, errOut, want)
		}
		if cmd == "conns" && out != once {
			t.Errorf("conns of the capture given four times differs from conns of it once")
		}
	}
}

// closedPipe returns the write end of a pipe whose read end is closed:
// every write fails with EPIPE.
func closedPipe(t *testing.T) *os.File {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	t.Cleanup(func() { pw.Close() })
	return pw
}

// TestClosedStdout runs the commands with standard output a pipe nobody
// reads: the report files are written all the same, identical to a run
// with a readable output, and printing stops without an error or a
// changed exit code.
func TestClosedStdout(t *testing.T) {
	dir := t.TempDir()
	outs := func(sub string) []string {
		d := filepath.Join(dir, sub)
		os.Mkdir(d, 0o755)
		return []string{"--json", filepath.Join(d, "r.json"), "--md", filepath.Join(d, "r.md"), "--html", filepath.Join(d, "r.html")}
	}
	var ok bytes.Buffer
	var errOut bytes.Buffer
	if code := run(context.Background(), append(append([]string{"analyze", "--fail-on", "warning"}, outs("ok")...), nokeepalive), &ok, &errOut); code != 1 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	tests := [][]string{
		append(append([]string{"analyze", "--fail-on", "warning"}, outs("closed")...), nokeepalive),
		{"conns", nokeepalive},
		{"conns", "--json", nokeepalive},
		{"frames", nokeepalive},
		{"frames", "--json", nokeepalive},
		{"timeline", "--conn", "0", nokeepalive},
		{"analyze", "--json", "-", nokeepalive},
	}
	for _, args := range tests {
		errOut.Reset()
		code := run(context.Background(), args, closedPipe(t), &errOut)
		want := 0
		if args[0] == "analyze" && args[1] == "--fail-on" {
			want = 1
		}
		if code != want || errOut.Len() > 0 {
			t.Errorf("%q to a closed pipe: exit %d, stderr %q; want exit %d, nothing", args, code, errOut.String(), want)
		}
	}
	for _, name := range []string{"r.json", "r.md", "r.html"} {
		got, err := os.ReadFile(filepath.Join(dir, "closed", name))
		if err != nil {
			t.Errorf("%s not written: %v", name, err)
			continue
		}
		if !bytes.Equal(got, readFile(t, filepath.Join(dir, "ok", name))) {
			t.Errorf("%s differs from the one written with a readable standard output", name)
		}
	}
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds h2scope once, with its VCS stamp, and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "h2scope-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "h2scope")
		out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = &buildError{err, out}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + ": " + string(e.out) }

// TestBinaryPipedToHead runs the built binary as a user does, piped to
// head -1 and with a standard output closed from the start: it exits 0
// (not 141, SIGPIPE), says nothing on stderr, and writes its three
// reports as a run without the pipe does.
func TestBinaryPipedToHead(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := binary(t)
	dir := t.TempDir()
	cap, _ := filepath.Abs(nokeepalive)
	args := func(sub string) []string {
		d := filepath.Join(dir, sub)
		os.Mkdir(d, 0o755)
		return []string{"analyze", "--html", filepath.Join(d, "r.html"), "--md", filepath.Join(d, "r.md"), "--json", filepath.Join(d, "r.json"), cap}
	}
	if out, err := exec.Command(bin, args("plain")...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Through | head -1, as the issue ran it.
	script := `"$@" | head -1 >/dev/null; exit ${PIPESTATUS[0]}`
	c := exec.Command("bash", append([]string{"-c", script, "bash", bin}, args("head")...)...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("| head -1: %v, stderr %q", err, stderr.String())
	}
	// And with a standard output whose reader is gone before it starts,
	// which head -1 only may have done.
	c = exec.Command(bin, args("closed")...)
	c.Stdout = closedPipe(t)
	stderr.Reset()
	c.Stderr = &stderr
	if err := c.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("closed stdout: %v, stderr %q", err, stderr.String())
	}
	for _, sub := range []string{"head", "closed"} {
		for _, name := range []string{"r.json", "r.md", "r.html"} {
			got, err := os.ReadFile(filepath.Join(dir, sub, name))
			if err != nil || !bytes.Equal(got, readFile(t, filepath.Join(dir, "plain", name))) {
				t.Errorf("%s/%s: %v, or it differs from the run without a pipe", sub, name, err)
			}
		}
	}
	// A long output cut short: frames stops reading, quietly.
	c = exec.Command("bash", "-c", script, "bash", bin, "frames", "--json", cap)
	stderr.Reset()
	c.Stderr = &stderr
	if err := c.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("frames | head -1: %v, stderr %q", err, stderr.String())
	}
}

// TestBinaryStdin reads captures from standard input, plain and
// compressed, as the built binary does when "-" is given.
func TestBinaryStdin(t *testing.T) {
	bin := binary(t)
	want, _, code := runCLI(t, "conns", "--json", grpcUnary)
	if code != 0 {
		t.Fatal(code)
	}
	raw := readFile(t, grpcUnary)
	var gz bytes.Buffer
	c := exec.Command("gzip", "-c")
	c.Stdin, c.Stdout = bytes.NewReader(raw), &gz
	if err := c.Run(); err != nil {
		t.Skip("no gzip:", err)
	}
	for name, in := range map[string][]byte{"pcapng": raw, "gzip": gz.Bytes()} {
		c := exec.Command(bin, "conns", "-", "--json")
		c.Stdin = bytes.NewReader(in)
		out, err := c.Output()
		if err != nil || string(out) != want {
			t.Errorf("%s on standard input: %v; output differs from the file's: %.300s", name, err, out)
		}
	}
	c = exec.Command(bin, "conns", "-", grpcUnary, "-")
	c.Stdin = bytes.NewReader(raw)
	out, err := c.CombinedOutput()
	if err == nil || string(out) != "h2scope conns: standard input (-) can be read only once\n" {
		t.Errorf("two -: %v %q", err, out)
	}
}

// TestFlagsAnywhere: flags may follow the captures, "--" ends them, and
// the result is the same as with the flags first.
func TestFlagsAnywhere(t *testing.T) {
	tlsWant, errOut, code := runCLI(t, "conns", "--json", "--keylog", grpcTLSKeys, grpcTLS)
	if code != 0 || !strings.Contains(tlsWant, `"decrypted":true`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dir := t.TempDir()
	dashed := filepath.Join(dir, "--json")
	writeFile(t, dashed, readFile(t, grpcTLS))
	tests := [][]string{
		{"conns", grpcTLS, "--keylog", grpcTLSKeys, "--json"},
		{"conns", "--json", grpcTLS, "--keylog", grpcTLSKeys},
		{"conns", "--keylog=" + grpcTLSKeys, "--json", "--", grpcTLS},
		{"conns", "--keylog", grpcTLSKeys, "--json", "--", dashed}, // a capture named --json
	}
	for _, args := range tests {
		out, errOut, code := runCLI(t, args...)
		if code != 0 || out != tlsWant {
			t.Errorf("%q: exit %d, %s; output differs from flags first", args, code, errOut)
		}
	}
	// After "--", a flag is a file name.
	_, errOut, code = runCLI(t, "conns", "--", "--json", grpcTLS)
	if code != 2 || !strings.Contains(errOut, "--json: open: no such file or directory") {
		t.Errorf("conns -- --json: exit %d, %q", code, errOut)
	}
}

// TestHelp checks that every command's -h and --help exit 0 and print, on
// standard output, a usage line, examples and the flags, analyze's
// detector thresholds after its own flags, grouped by detector.
func TestHelp(t *testing.T) {
	for _, cmd := range []string{"analyze", "conns", "frames", "timeline", "batch"} {
		for _, args := range [][]string{{cmd, "-h"}, {cmd, "--help"}, {cmd, "x.pcap", "-help"}, {"help", cmd}} {
			out, errOut, code := runCLI(t, args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "usage: h2scope "+cmd+" ") ||
				!strings.Contains(out, "\nexamples:\n  h2scope ") || !strings.Contains(out, "\nflags:\n") || !strings.Contains(out, "\n  --keylog file\n") {
				t.Errorf("%q: exit %d, stderr %q, stdout:\n%s", args, code, errOut, out)
			}
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		out, _, code := runCLI(t, args...)
		if code != 0 || !strings.HasPrefix(out, "usage: h2scope <command>") || !strings.Contains(out, "examples:") {
			t.Errorf("%q: exit %d, %s", args, code, out)
		}
	}
	out, _, _ := runCLI(t, "analyze", "-h")
	golden.Check(t, "testdata/help-analyze.golden", []byte(out))
	own, thresholds := strings.Index(out, "--fail-on"), strings.Index(out, "detector thresholds")
	if own < 0 || thresholds < own || !strings.Contains(out[thresholds:], "\n  rst_storm:\n    --rst-critical int\n") {
		t.Errorf("analyze -h: its own flags do not come before the thresholds, grouped by detector")
	}
}

// TestVersion checks --version and the version command, in the test
// binary and in a built one (with its VCS revision).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, code := runCLI(t, args...)
		if code != 0 || !strings.HasPrefix(out, "h2scope ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("%q: exit %d, %q", args, code, out)
		}
	}
	out, err := exec.Command(binary(t), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	// Inside a git work tree the build is stamped with the revision (the
	// tree may have moved on since: other work goes on).
	inGit := exec.Command("git", "rev-parse", "HEAD").Run() == nil
	stamped := regexp.MustCompile(`^h2scope \S+ revision [0-9a-f]{40} of \d{4}-\d\d-\d\dT[0-9:]+Z( \(modified\))?, go`)
	if !strings.HasPrefix(string(out), "h2scope ") || inGit && !stamped.Match(out) {
		t.Errorf("built h2scope --version = %q, want its revision (in a git tree: %v)", out, inGit)
	}
}

// TestBadNumbers: negative or nonsensical values are refused, naming the
// flag; severities are read in any case.
func TestBadNumbers(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"analyze", "--rst-min", "-3", nokeepalive}, `h2scope analyze: invalid value "-3" for flag --rst-min: must be at least 1`},
		{[]string{"analyze", "--rst-window", "-5s", nokeepalive}, `h2scope analyze: invalid value "-5s" for flag --rst-window: must be positive`},
		{[]string{"analyze", "--resumption-fail-ratio", "2", nokeepalive}, `h2scope analyze: invalid value "2" for flag --resumption-fail-ratio: must be a share from 0 to 1`},
		{[]string{"analyze", "--timeline-events", "-1", nokeepalive}, "h2scope analyze: --timeline-events -1: must not be negative"},
		{[]string{"batch", "--workers", "-1", "--out", "-", nokeepalive}, "h2scope batch: --workers -1: must be at least 1"},
		{[]string{"batch", "--workers", "0", "--out", "-", nokeepalive}, "h2scope batch: --workers 0: must be at least 1"},
		{[]string{"batch", "--gap", "-5s", "--out", "-", nokeepalive}, "h2scope batch: --gap -5s: must be positive"},
		{[]string{"timeline", "--conn", "0", "--max", "0", nokeepalive}, "h2scope timeline: --max 0: must be at least 1"},
		{[]string{"timeline", "--conn", "-5", nokeepalive}, "h2scope timeline: --conn -5: not a connection id (they count from 0)"},
		{[]string{"timeline", "--conn", "0", "--stream", "-2", nokeepalive}, "h2scope timeline: --stream -2: not an HTTP/2 stream id (they count from 0)"},
		{[]string{"analyze", "--fail-on", "info", nokeepalive}, `h2scope analyze: --fail-on "info": want warning or critical`},
		{[]string{"conns", nokeepalive, "--json=3"}, `h2scope conns: invalid boolean value "3" for --json: parse error`},
		{[]string{"analyze", nokeepalive, "--json"}, `h2scope analyze: flag needs an argument: --json`},
	}
	for _, tt := range tests {
		out, errOut, code := runCLI(t, tt.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, tt.want+"\n") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
	for _, sev := range []string{"WARNING", "Warning", "warning"} {
		if _, errOut, code := runCLI(t, "analyze", "--fail-on", sev, nokeepalive); code != 1 {
			t.Errorf("--fail-on %s: exit %d, %s; want 1 (a warning finding)", sev, code, errOut)
		}
	}
	if _, errOut, code := runCLI(t, "analyze", "--fail-on", "CRITICAL", nokeepalive); code != 0 {
		t.Errorf("--fail-on CRITICAL: exit %d, %s; want 0", code, errOut)
	}
}

// TestTimelineMissing: a connection or stream that does not exist exits 2
// naming what does.
func TestTimelineMissing(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--conn", "0", "--stream", "99999", grpcUnary}, "h2scope timeline: no stream 99999: connection 0 has 20 streams, 1–39\n"},
		{[]string{"--conn", "99", nokeepalive}, "h2scope timeline: no connection 99: the capture has connections 0–14"},
		{[]string{"--conn", "1", grpcUnary}, "h2scope timeline: no connection 1: the capture has connection 0"},
		{[]string{"--conn", "0", "--stream", "1", nokeepalive}, "h2scope timeline: no stream 1: connection 0 has no HTTP/2 streams"},
		{[]string{"--conn", "0", "--stream", "2", "../../testdata/pcaps/grpc-streaming-h2c.pcapng"}, "h2scope timeline: no stream 2: connection 0 has "},
	}
	for _, tt := range tests {
		out, errOut, code := runCLI(t, append([]string{"timeline"}, tt.args...)...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, tt.want) {
			t.Errorf("timeline %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

// TestNotesPlural: the note about what a capture held that was left out
// says "1 packet", "1 malformed frame".
func TestNotesPlural(t *testing.T) {
	var st dissect.Stats
	st.Packets, st.Layer.Malformed, st.Layer.Fragments = 1, 1, 2
	var b bytes.Buffer
	notes(st, &b)
	want := "h2scope: note: 1 packet read; left out: 2 IP fragments (not reassembled), 1 malformed frame\n"
	if b.String() != want {
		t.Errorf("notes = %q, want %q", b.String(), want)
	}
}

// TestTLSTimingKeys: conns --json writes tls.timing's frames with
// snake_case keys, as every other key ("file", "frame", "ts"; not "File",
// "Frame", "TS").
func TestTLSTimingKeys(t *testing.T) {
	out, errOut, code := runCLI(t, "conns", "--json", "--keylog", grpcTLSKeys, grpcTLS)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	line, _, _ := strings.Cut(out, "\n")
	var c struct {
		TLS struct {
			Timing struct {
				ClientHello map[string]any   `json:"client_hello"`
				Finished    []map[string]any `json:"finished"`
			} `json:"timing"`
		} `json:"tls"`
	}
	if err := json.Unmarshal([]byte(line), &c); err != nil {
		t.Fatal(err)
	}
	refs := append([]map[string]any{c.TLS.Timing.ClientHello}, c.TLS.Timing.Finished...)
	for _, r := range refs {
		keys := slices.Sorted(maps.Keys(r))
		if !slices.Equal(keys, []string{"file", "frame", "ts"}) {
			t.Errorf("tls.timing frame keys %q, want file, frame, ts", keys)
		}
	}
}

// TestWriteOutputErrorNamesTheFile: a report that cannot be written is
// named as given, never by its temporary file's name.
func TestWriteOutputErrorNamesTheFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "gone", "r.json")
	err := writeOutput(name, nil, func(w io.Writer) error { _, err := io.WriteString(w, "{}"); return err })
	want := "writing " + name + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("writeOutput = %v, want %s", err, want)
	}
	// A device is written in place, not replaced.
	if err := writeOutput(os.DevNull, nil, func(w io.Writer) error { _, err := io.WriteString(w, "{}"); return err }); err != nil {
		t.Errorf("writeOutput(%s) = %v", os.DevNull, err)
	}
	if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode().IsRegular() {
		t.Errorf("%s is no longer a device: %v %v", os.DevNull, fi.Mode(), err)
	}
}
