//go:build conformance

package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/slice"
	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// sliceCapture is one committed capture to find findings in and slice.
type sliceCapture struct {
	rel    string // testdata/pcaps/...
	path   string
	keylog string // NAME.keys, when there is one
	tls    bool   // decryptable: a key log file or an embedded one
}

// slicedKind is one finding kind's slice and what tshark made of it.
type slicedKind struct {
	kind, capture, id string
	severity          string
	packets, total    int
	mode              string // "decrypted", "cleartext" or "tls, no app data"
	decrypted         int    // slice packets tshark decodes as HTTP or HTTP/2
}

// sliceFrameComment is the comment every slice packet carries.
var sliceFrameComment = regexp.MustCompile(`h2scope: frame (\d+) of the full capture`)

// TestSliceEveryKind is issue 16's "a slice of each finding kind opens
// decrypted in tshark with its comments": it analyses every committed
// capture (testdata/pcaps, its stacks and attacks) with the default
// thresholds, takes the first finding of each kind (from a decryptable
// TLS capture where the kind occurs on one), slices it with slice.Write
// (Options.Found, the capture's key log given to the slice only) and
// reads the slice back with tshark, without any key log:
//
//   - tshark reads as many packets as slice says it wrote, more than none
//     and no more than the full capture's, which slice read all of;
//   - every packet is commented with its frame number in the full
//     capture, in increasing order, and each evidence frame (all present)
//     also with the finding's id;
//   - the finding's connections not narrowed to streams are whole;
//   - on a TLS capture, every slice packet that tshark decodes as HTTP or
//     HTTP/2 in the full capture with the key log it decodes so in the
//     slice with only the slice's Decryption Secrets Block, and at least
//     one does when any does in the full capture.
//
// Every kind must be sliced: the test fails for a kind that no committed
// capture has (handshake_latency's is tls-slow-handshake, whose server
// accepts two connections 400 ms late).
func TestSliceEveryKind(t *testing.T) {
	tsharkPath, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	var caps []sliceCapture
	for _, dir := range []string{"../testdata/pcaps", stacksDir, attacksDir} {
		files, err := filepath.Glob(filepath.Join(dir, "*.pcapng"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(files)
		for _, p := range files {
			base := strings.TrimSuffix(p, ".pcapng")
			c := sliceCapture{rel: relName(p), path: p}
			if _, err := os.Stat(base + ".keys"); err == nil {
				c.keylog, c.tls = base+".keys", true
			} else if tr, err := truth.Load(base + ".truth.json"); err == nil && tr.Capture.KeyLog == truth.KeyLogEmbedded {
				c.tls = true
			}
			caps = append(caps, c)
		}
	}
	if len(caps) == 0 {
		t.Fatal("no captures in testdata/pcaps")
	}

	// Analyse them all, two at a time (the machine has two cores).
	found := make([][]analyze.Finding, len(caps))
	errs := make([]error, len(caps))
	eachFile(len(caps), func(i int) {
		found[i], errs[i] = analyzeCase(findingCase{rel: caps[i].rel, path: caps[i].path, keylog: caps[i].keylog})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", caps[i].rel, err)
		}
	}

	// The first finding of each kind, from a TLS capture first.
	type pick struct {
		c *sliceCapture
		f *analyze.Finding
	}
	picks := map[string]pick{}
	for _, wantTLS := range []bool{true, false} {
		for i := range caps {
			if caps[i].tls != wantTLS {
				continue
			}
			for j := range found[i] {
				f := &found[i][j]
				if _, ok := picks[f.Kind]; !ok {
					picks[f.Kind] = pick{&caps[i], f}
				}
			}
		}
	}

	var rows []slicedKind
	var uncovered []string
	for _, kind := range analyze.Kinds {
		p, ok := picks[kind]
		if !ok {
			uncovered = append(uncovered, kind)
			continue
		}
		t.Run(kind, func(t *testing.T) {
			row := checkSliceOfFinding(t, tsharkPath, *p.c, p.f)
			row.kind = kind
			rows = append(rows, row)
		})
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\nslices of each finding kind, read back by tshark without a key log\n")
	fmt.Fprintf(&b, "%-20s %-52s %-24s %-9s %15s  %s\n", "kind", "capture", "finding", "severity", "packets/total", "tshark")
	for _, r := range rows {
		mode := r.mode
		if r.mode == "decrypted" {
			mode = fmt.Sprintf("decrypted (%d packets HTTP/HTTP2)", r.decrypted)
		}
		fmt.Fprintf(&b, "%-20s %-52s %-24s %-9s %15s  %s\n", r.kind, r.capture, r.id, r.severity, fmt.Sprintf("%d/%d", r.packets, r.total), mode)
	}
	t.Log(b.String())
	for _, k := range uncovered {
		t.Errorf("kind %s: no committed capture has a finding of it (at any severity): not sliced", k)
	}
}

// checkSliceOfFinding slices f of c and checks the slice with tshark.
func checkSliceOfFinding(t *testing.T, tsharkPath string, c sliceCapture, f *analyze.Finding) slicedKind {
	row := slicedKind{capture: c.rel, id: f.ID, severity: f.Severity.String(), mode: "cleartext"}
	opts := func() slice.Options { // a fresh key log each time: slicing adds the capture's own secrets to it
		keys := tls.NewKeyLog()
		if c.keylog != "" {
			b, err := os.ReadFile(c.keylog)
			if err != nil {
				t.Fatal(err)
			}
			keys.Add(b, c.keylog)
		}
		return slice.Options{Dissect: dissect.Options{Keys: keys}, Config: analyze.DefaultConfig(), Names: []string{c.rel}, Version: "conformance"}
	}
	o := opts()
	o.Found = f
	var buf bytes.Buffer
	res, err := slice.Write(context.Background(), []string{c.path}, &buf, o)
	if err != nil {
		t.Fatalf("slice %s of %s: %v", f.ID, c.rel, err)
	}
	out := filepath.Join(t.TempDir(), f.ID+".pcapng")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// analyze --slices writes the same file (slice.WriteFindings).
	dir := t.TempDir()
	paths, err := slice.WriteFindings(context.Background(), []string{c.path}, dir, opts(), []analyze.Finding{*f})
	if err != nil {
		t.Fatalf("WriteFindings %s of %s: %v", f.ID, c.rel, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, f.ID+".pcapng")); err != nil || len(paths) != 1 || !bytes.Equal(b, buf.Bytes()) {
		t.Errorf("WriteFindings wrote %v (%v), not the bytes slice.Write gives", paths, err)
	}
	row.packets, row.total = res.Packets, res.Total
	if c.tls {
		row.mode = "decrypted"
	}

	// The full capture, decrypted with its key log when it has one.
	var kopt []string
	if c.keylog != "" {
		kopt = []string{"-o", "tls.keylog_file:" + c.keylog}
	}
	fullLines := runTsharkLines(t, tsharkPath, c.path, append(kopt, "-T", "fields", "-e", "frame.number", "-e", "tcp.stream", "-e", "frame.protocols")...)
	fullDec := map[uint64]bool{}              // frames decoded as HTTP or HTTP/2
	connFrames := map[event.ConnID][]uint64{} // frames by tcp.stream
	for _, l := range fullLines {
		fs := strings.Split(l, "\t")
		if len(fs) < 3 {
			t.Fatalf("full capture: tshark line %q", l)
		}
		n, err := strconv.ParseUint(fs[0], 10, 64)
		if err != nil {
			t.Fatalf("full capture: tshark line %q", l)
		}
		if s, err := strconv.Atoi(fs[1]); err == nil {
			connFrames[event.ConnID(s)] = append(connFrames[event.ConnID(s)], n)
		}
		if decodesHTTP(fs[2]) {
			fullDec[n] = true
		}
	}

	// (1) Packet counts.
	if res.Total != len(fullLines) {
		t.Errorf("slice read %d packets of the full capture, tshark %d", res.Total, len(fullLines))
	}
	if res.Packets <= 0 || res.Packets > res.Total {
		t.Errorf("slice wrote %d packets of %d", res.Packets, res.Total)
	}

	// The slice, read without a key log: protocols and comments.
	sliceLines := runTsharkLines(t, tsharkPath, out, "-T", "fields", "-e", "frame.protocols", "-e", "frame.comment")
	if len(sliceLines) != res.Packets {
		t.Errorf("tshark reads %d packets in the slice, slice says it wrote %d", len(sliceLines), res.Packets)
	}
	// (2) Every packet names its frame in the full capture, in order.
	in := map[uint64]string{} // the slice's packets by frame in the full capture: their comments
	sliceDec := map[uint64]bool{}
	var last uint64
	for i, l := range sliceLines {
		proto, comment, _ := strings.Cut(l, "\t")
		m := sliceFrameComment.FindStringSubmatch(comment)
		if m == nil {
			t.Errorf("slice packet %d has no frame comment: %q", i+1, comment)
			continue
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		if n <= last || n > uint64(len(fullLines)) {
			t.Errorf("slice packet %d: comment names frame %d after frame %d (full capture: %d frames)", i+1, n, last, len(fullLines))
		}
		last = n
		in[n] = comment
		if decodesHTTP(proto) {
			sliceDec[n] = true
		}
	}
	// (2, 4) Each evidence frame is there, commented with the finding.
	tag := "h2scope finding " + f.ID + " ("
	for _, e := range f.Evidence {
		comment, ok := in[e.Frame]
		switch {
		case !ok:
			t.Errorf("evidence frame %d (%s) is not in the slice", e.Frame, e.What)
		case !strings.Contains(comment, tag):
			t.Errorf("evidence frame %d: comment %q lacks %q", e.Frame, comment, tag)
		}
	}
	for n, comment := range in {
		if strings.Contains(comment, tag) && !slices.ContainsFunc(f.Evidence, func(e analyze.Evidence) bool { return e.Frame == n }) {
			t.Errorf("frame %d is commented with the finding but is not its evidence: %q", n, comment)
		}
	}
	// A connection the finding names, not narrowed to some of its
	// streams, is in the slice whole.
	narrowed := map[event.ConnID]bool{}
	for _, s := range f.Streams {
		narrowed[s.Conn] = true
	}
	for _, cn := range f.Connections {
		if narrowed[cn] {
			continue
		}
		var miss []uint64
		for _, n := range connFrames[cn] {
			if _, ok := in[n]; !ok {
				miss = append(miss, n)
			}
		}
		if len(connFrames[cn]) == 0 {
			t.Errorf("connection %d of the finding: tshark has no tcp.stream %d", cn, cn)
		} else if len(miss) > 0 {
			t.Errorf("connection %d: %d of its %d frames are not in the slice (first %v)", cn, len(miss), len(connFrames[cn]), miss[:min(5, len(miss))])
		}
	}

	// (3) A TLS slice decrypts with its own secrets alone.
	if c.tls {
		var want, lost []uint64
		for n := range in {
			if fullDec[n] {
				want = append(want, n)
				if !sliceDec[n] {
					lost = append(lost, n)
				}
			}
		}
		slices.Sort(lost)
		row.decrypted = len(sliceDec)
		switch {
		case len(lost) > 0:
			t.Errorf("%d of the %d slice packets tshark decodes as HTTP or HTTP/2 in the full capture (with %s) are not so in the slice (secrets of %d sessions, %d missing): frames %v",
				len(lost), len(want), c.keylog, res.Sessions, res.Missing, lost[:min(10, len(lost))])
		case len(want) == 0 && len(sliceDec) == 0:
			row.mode = "tls, no app data"
			t.Logf("TLS capture, but none of the slice's frames holds HTTP in the full capture either (%d sessions' secrets in the slice)", res.Sessions)
		}
		if len(want) > 0 && len(sliceDec) == 0 {
			t.Errorf("the slice does not decrypt with its Decryption Secrets Block (secrets of %d sessions, %d missing)", res.Sessions, res.Missing)
		}
		// The control: without its Decryption Secrets Block the slice
		// does not decrypt, so the decryption above came from it.
		if len(sliceDec) > 0 {
			o := opts()
			o.Found, o.NoSecrets = f, true
			var nb bytes.Buffer
			if _, err := slice.Write(context.Background(), []string{c.path}, &nb, o); err != nil {
				t.Fatal(err)
			}
			bare := filepath.Join(t.TempDir(), "no-secrets.pcapng")
			if err := os.WriteFile(bare, nb.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if n := runTsharkLines(t, tsharkPath, bare, "-Y", "http || http2", "-T", "fields", "-e", "frame.number"); len(n) > 0 {
				t.Errorf("the slice without secrets still decodes %d packets as HTTP: tshark has a key log of its own", len(n))
			}
		}
	}
	t.Logf("%s: %s %s, %d of %d packets, %d evidence frames, %s", c.rel, f.ID, f.Severity, res.Packets, res.Total, len(f.Evidence), row.mode)
	return row
}

// decodesHTTP says whether a frame.protocols value holds HTTP or HTTP/2.
func decodesHTTP(protocols string) bool {
	for _, p := range strings.Split(protocols, ":") {
		if p == "http" || p == "http2" {
			return true
		}
	}
	return false
}

// runTsharkLines runs tshark -n -r file with args and returns its lines.
func runTsharkLines(t *testing.T, tsharkPath, file string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(tsharkPath, append([]string{"-n", "-r", file}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s %s: %v\n%s", file, strings.Join(args, " "), err, stderr.String())
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
