//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// findingCase is one capture with the finding kinds (warning or above)
// that are correct on it.
type findingCase struct {
	rel    string // name in reports: testdata/pcaps/X or corpus-relative
	path   string
	keylog string
	want   []string
}

// findingResult is what the analyzers said about one case.
type findingResult struct {
	got      []string
	findings []analyze.Finding // at warning or above
	all      []analyze.Finding
	err      error
}

// TestFindingsPrecisionRecall runs every detector on every generated
// scenario (truth: expect.findings) and every corpus capture (labels:
// expectedCorpusFindings) and counts, per kind and with set semantics per
// capture, true positives, false positives and false negatives among the
// findings at warning or above. It prints precision and recall per kind
// and fails on any miss or false alarm not explained in
// knownFindingDifferences, and on an entry there that no longer differs.
// Set H2SCOPE_FINDINGS_VERBOSE=1 to log every finding at warning or above
// with its evidence, =all to log the info findings too.
func TestFindingsPrecisionRecall(t *testing.T) {
	cases := generatedFindingCases(t)
	if dir := corpusDir(); dir != "" {
		for _, p := range captures(t, dir) {
			rel := relName(p)
			c := findingCase{rel: rel, path: p, want: expectedCorpusFindings[rel]}
			if k, ok := corpusKeyLogs[rel]; ok {
				c.keylog = filepath.Join(dir, k)
			}
			cases = append(cases, c)
		}
		for rel := range expectedCorpusFindings {
			if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
				t.Errorf("expectedCorpusFindings: %s: %v", rel, err)
			}
		}
	} else {
		t.Log("shared corpus not found at ../../shared/corpus (set H2SCOPE_CORPUS): checking testdata/pcaps only")
	}

	results := make([]findingResult, len(cases))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 2 { // the machine has two cores
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i] = runFindings(cases[i])
			}
		}()
	}
	for i := range cases {
		work <- i
	}
	close(work)
	wg.Wait()

	type counts struct{ tp, fp, fn int }
	perKind := map[string]*counts{}
	for _, k := range analyze.Kinds {
		perKind[k] = &counts{}
	}
	verbose := os.Getenv("H2SCOPE_FINDINGS_VERBOSE") != ""
	seen := map[string]bool{} // knownFindingDifferences keys that still differ
	for i, c := range cases {
		r := results[i]
		if r.err != nil {
			t.Errorf("%s: %v", c.rel, r.err)
			continue
		}
		if fs := r.findings; verbose && len(fs) > 0 || os.Getenv("H2SCOPE_FINDINGS_VERBOSE") == "all" && len(r.all) > 0 {
			if os.Getenv("H2SCOPE_FINDINGS_VERBOSE") == "all" {
				fs = r.all
			}
			t.Logf("%s: %s", c.rel, describeFindings(fs, ""))
		}
		for _, k := range c.want {
			if _, ok := perKind[k]; !ok {
				t.Errorf("%s: expected kind %q is not a finding kind", c.rel, k)
				perKind[k] = &counts{}
			}
		}
		for kind, n := range perKind {
			got, want := slices.Contains(r.got, kind), slices.Contains(c.want, kind)
			var key string
			switch {
			case got && want:
				n.tp++
			case got:
				n.fp++
				key = c.rel + ": +" + kind
			case want:
				n.fn++
				key = c.rel + ": -" + kind
			}
			if key == "" {
				continue
			}
			if reason, ok := knownFindingDifferences[key]; ok {
				seen[key] = true
				if verbose {
					t.Logf("%s: known (%s)", key, reason)
				}
				continue
			}
			if got {
				t.Errorf("%s: false positive %s (not expected; label it in findings.go or fix the detector): %s",
					c.rel, kind, describeFindings(r.findings, kind))
			} else {
				t.Errorf("%s: false negative: %s expected, not found (findings at warning or above: %v)", c.rel, kind, r.got)
			}
		}
	}
	for key, reason := range knownFindingDifferences {
		if !seen[key] && (corpusDir() != "" || strings.HasPrefix(key, "testdata/")) {
			t.Errorf("knownFindingDifferences %q (%s) no longer differs: remove it", key, reason)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\nfindings at warning or above over %d captures (set per capture)\n", len(cases))
	fmt.Fprintf(&b, "%-20s %4s %4s %4s %10s %8s\n", "kind", "TP", "FP", "FN", "precision", "recall")
	var tot counts
	kinds := make([]string, 0, len(perKind))
	for k := range perKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		n := perKind[k]
		tot.tp, tot.fp, tot.fn = tot.tp+n.tp, tot.fp+n.fp, tot.fn+n.fn
		fmt.Fprintf(&b, "%-20s %4d %4d %4d %10s %8s\n", k, n.tp, n.fp, n.fn, ratio(n.tp, n.tp+n.fp), ratio(n.tp, n.tp+n.fn))
	}
	fmt.Fprintf(&b, "%-20s %4d %4d %4d %10s %8s\n", "all", tot.tp, tot.fp, tot.fn, ratio(tot.tp, tot.tp+tot.fp), ratio(tot.tp, tot.tp+tot.fn))
	t.Log(b.String())
}

// generatedFindingCases lists the generated scenarios with their truth.
func generatedFindingCases(t *testing.T) []findingCase {
	files, err := filepath.Glob("../testdata/pcaps/*.truth.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no truth files in ../testdata/pcaps: %v", err)
	}
	var cases []findingCase
	for _, tf := range files {
		tr, err := truth.Load(tf)
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimSuffix(tf, ".truth.json") + ".pcapng"
		c := findingCase{rel: relName(p), path: p, want: tr.Expect.Findings}
		if k := tr.Capture.KeyLog; k != "" && k != truth.KeyLogEmbedded {
			c.keylog = filepath.Join(filepath.Dir(tf), k)
		}
		cases = append(cases, c)
	}
	return cases
}

// runFindings analyses one capture in-process with the default thresholds.
func runFindings(c findingCase) findingResult {
	keys := tls.NewKeyLog()
	if c.keylog != "" {
		b, err := os.ReadFile(c.keylog)
		if err != nil {
			return findingResult{err: err}
		}
		keys.Add(b, c.keylog)
	}
	res, _, err := analyze.Run(context.Background(), []string{c.path}, dissect.Options{Keys: keys}, analyze.DefaultConfig())
	if err != nil {
		return findingResult{err: err}
	}
	r := findingResult{all: res.Findings}
	for _, f := range res.Findings {
		if f.Severity < analyze.Warning {
			continue
		}
		r.findings = append(r.findings, f)
		if !slices.Contains(r.got, f.Kind) {
			r.got = append(r.got, f.Kind)
		}
	}
	sort.Strings(r.got)
	return r
}

// describeFindings prints the findings (of kind, or all when kind is "")
// with their first evidence, to open in Wireshark.
func describeFindings(fs []analyze.Finding, kind string) string {
	var b strings.Builder
	for _, f := range fs {
		if kind != "" && f.Kind != kind {
			continue
		}
		fmt.Fprintf(&b, "\n\t%s %s: %s", f.Severity, f.Kind, f.Summary)
		for i, e := range f.Evidence {
			if i == 3 {
				fmt.Fprintf(&b, "\n\t\t(+%d more)", len(f.Evidence)-i)
				break
			}
			fmt.Fprintf(&b, "\n\t\tframe %d [%s]: %s", e.Frame, e.Filter, e.What)
		}
	}
	return b.String()
}

func ratio(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(a)/float64(b))
}
