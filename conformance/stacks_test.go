//go:build conformance

package conformance

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// stacksDir holds the captures made by other stacks' programs (capgen's
// stack scenarios: nginx, nghttpd, h2load, curl, python-h2).
const stacksDir = "../testdata/pcaps/stacks"

// knownStackVerdicts lists where h2scope's verdict on a stack capture is
// wrong today, by "NAME: +kind" (reported at warning or above, not
// expected), "NAME: -kind" (expected, missed), "NAME: kind severity"
// (found at another severity than the truth's verdict; for a verdict
// naming h2scope's cause, the findings of that cause) or "NAME: kind
// cause C1,C2" (found at warning or above with causes C1, C2 only, not
// the verdict's FindingCause), with the reason.
// TestStackVerdicts logs and skips these, and fails on any other
// difference and on an entry that no longer differs.
var knownStackVerdicts = map[string]string{}

// TestStackVerdicts runs the analyzers on each stack capture and checks
// its truth's verdicts: every kind expected at warning or above fires,
// at the verdict's severity (and with the verdict's cause, when it names
// h2scope's: FindingCause), nothing else fires at warning or above, and
// an info verdict is not raised. What h2scope gets wrong today is in
// knownStackVerdicts: those subtests are skipped with the reason.
func TestStackVerdicts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(stacksDir, "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no stack captures in %s (go run ./tools/capgen -out testdata/pcaps as root)", stacksDir)
	}
	seen := map[string]bool{}
	for _, tf := range files {
		tr, err := truth.Load(tf)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Stack == nil {
			t.Errorf("%s: no stack record", tf)
			continue
		}
		name := tr.Scenario
		c := findingCase{rel: name, path: strings.TrimSuffix(tf, ".truth.json") + ".pcapng", want: tr.Expect.Findings}
		if k := tr.Capture.KeyLog; k != "" {
			c.keylog = filepath.Join(stacksDir, k)
		}
		t.Run(name, func(t *testing.T) {
			all, err := analyzeCase(c)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]analyze.Severity{}     // highest severity per kind
			byCause := map[string]analyze.Severity{} // highest severity per "kind cause"
			causes := map[string][]string{}          // kind -> causes found at warning or above
			for _, f := range all {
				if s, ok := got[f.Kind]; !ok || f.Severity > s {
					got[f.Kind] = f.Severity
				}
				k := f.Kind + " " + f.Cause
				if s, ok := byCause[k]; !ok || f.Severity > s {
					byCause[k] = f.Severity
				}
				if f.Severity >= analyze.Warning && !slices.Contains(causes[f.Kind], f.Cause) {
					causes[f.Kind] = append(causes[f.Kind], f.Cause)
				}
			}
			var wrong []string // differences, as knownStackVerdicts keys
			want := map[string]bool{}
			for _, v := range tr.Stack.Verdicts {
				want[v.Kind] = true
				s, found := got[v.Kind]
				if v.FindingCause != "" {
					// A verdict that names h2scope's cause is checked
					// against the findings of that kind and cause (a
					// capture may hold several of one kind).
					s, found = byCause[v.Kind+" "+v.FindingCause]
					if !found && v.Severity != "info" && len(causes[v.Kind]) > 0 {
						wrong = append(wrong, name+": "+v.Kind+" cause "+strings.Join(causes[v.Kind], ","))
						continue
					}
				}
				switch {
				case v.Severity == "info":
					if found && s >= analyze.Warning {
						wrong = append(wrong, name+": +"+v.Kind)
					}
				case !found || s < analyze.Warning:
					wrong = append(wrong, name+": -"+v.Kind)
				case s.String() != v.Severity:
					wrong = append(wrong, name+": "+v.Kind+" "+s.String())
				}
			}
			kinds := make([]string, 0, len(got))
			for k := range got {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			for _, k := range kinds {
				if !want[k] && got[k] >= analyze.Warning {
					wrong = append(wrong, name+": +"+k)
				}
			}
			var unexplained []string
			for _, w := range wrong {
				if reason, ok := knownStackVerdicts[w]; ok {
					seen[w] = true
					t.Logf("known wrong verdict %q: %s", w, reason)
					continue
				}
				unexplained = append(unexplained, w)
			}
			for _, w := range unexplained {
				kind := strings.TrimLeft(strings.Fields(strings.SplitN(w, ": ", 2)[1])[0], "+-")
				if !slices.Contains(analyze.Kinds, kind) {
					t.Errorf("%s: %s is not a finding kind h2scope implements: add it to knownStackVerdicts with the reason", w, kind)
					continue
				}
				t.Errorf("%s: not in knownStackVerdicts (findings: %s)", w, describeFindings(all, ""))
			}
			for _, v := range tr.Stack.Verdicts {
				t.Logf("truth: %s %s %s (%s)", v.Severity, v.Kind, v.FindingCause, v.Cause)
			}
			if len(unexplained) == 0 && len(wrong) > 0 {
				t.Skipf("h2scope is wrong here today (knownStackVerdicts): %v", wrong)
			}
		})
	}
	for key, reason := range knownStackVerdicts {
		name, _, _ := strings.Cut(key, ": ")
		if _, err := os.Stat(filepath.Join(stacksDir, name+".truth.json")); err != nil {
			t.Errorf("knownStackVerdicts %q: no such capture", key)
		} else if !seen[key] {
			t.Errorf("knownStackVerdicts %q (%s) no longer differs: remove it", key, reason)
		}
	}
}

// analyzeCase runs the analyzers on one capture with the default
// thresholds and returns every finding.
func analyzeCase(c findingCase) ([]analyze.Finding, error) {
	keys := tls.NewKeyLog()
	if c.keylog != "" {
		b, err := os.ReadFile(c.keylog)
		if err != nil {
			return nil, err
		}
		keys.Add(b, c.keylog)
	}
	res, _, err := analyze.Run(context.Background(), []string{c.path}, dissect.Options{Keys: keys}, analyze.DefaultConfig())
	if err != nil {
		return nil, err
	}
	return res.Findings, nil
}
