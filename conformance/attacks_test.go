//go:build conformance

package conformance

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// attacksDir holds capgen's synthetic attack captures (capgen -attack):
// one per protocol_abuse cause and a rapid reset, each with a truth file
// stating what the attacker sent (Stack.Facts, Expect.HTTP2Frames) and
// the verdict h2scope must give (Stack.Verdicts).
const attacksDir = "../testdata/pcaps/attacks"

// attackServerPort is the port of every attack capture's server, which
// tshark is told to decode as HTTP/2.
const attackServerPort = 8080

// knownAttackMisses lists the attack captures on which h2scope's verdict
// is wrong today, with the reason. TestAttacks logs and skips these, and
// fails on any other wrong verdict and on an entry that is now right.
var knownAttackMisses = map[string]string{}

// TestAttacks analyses each committed attack capture with the default
// thresholds and checks its truth: the verdict's kind, cause and
// severity; the finding's counts against what the attacker sent (for
// rapid reset, rst_frames and streams_reset exactly); nothing else at
// warning or above; and tshark's HTTP/2 frames (by type, and frame by
// frame against h2scope's) against the truth.
func TestAttacks(t *testing.T) {
	requireTshark(t)
	files, err := filepath.Glob(filepath.Join(attacksDir, "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no attack captures in %s (go run ./tools/capgen -attack all -out testdata/pcaps/attacks)", attacksDir)
	}
	seen := map[string]bool{}
	for _, tf := range files {
		tr, err := truth.Load(tf)
		if err != nil {
			t.Fatal(err)
		}
		seen[tr.Scenario] = true
		t.Run(tr.Scenario, func(t *testing.T) {
			checkAttack(t, tr, strings.TrimSuffix(tf, ".truth.json")+".pcapng")
		})
	}
	for name, reason := range knownAttackMisses {
		if !seen[name] {
			t.Errorf("knownAttackMisses %q (%s): no such capture", name, reason)
		}
	}
}

// TestAttackRapidReset500k generates the rapid reset of 500,000 streams
// into a temporary directory (capgen -attack rapid-reset -n 500000, about
// 15 MB) and checks it as TestAttacks does. tshark takes about 25 s and
// 800 MB on it; -short skips the test.
func TestAttackRapidReset500k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 500,000-stream rapid reset")
	}
	requireTshark(t)
	dir := t.TempDir()
	var stderr bytes.Buffer
	cmd := exec.Command("go", "run", "../tools/capgen", "-attack", "rapid-reset", "-n", "500000", "-out", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("capgen: %v: %s", err, stderr.String())
	}
	t.Logf("capgen: %s", bytes.TrimSpace(out))
	tr, err := truth.Load(filepath.Join(dir, "rapid-reset-500000.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Stack.Facts["rst_frames"] != 500000 {
		t.Fatalf("truth: rst_frames %d, want 500000", tr.Stack.Facts["rst_frames"])
	}
	checkAttack(t, tr, filepath.Join(dir, "rapid-reset-500000.pcapng"))
}

// checkAttack checks one attack capture against its truth.
func checkAttack(t *testing.T, tr *truth.Truth, path string) {
	if tr.Stack == nil || len(tr.Stack.Verdicts) == 0 {
		t.Fatalf("%s: truth has no verdicts", tr.Scenario)
	}
	facts := tr.Stack.Facts
	checkAttackFrames(t, tr, path)

	all, err := analyzeCase(findingCase{rel: tr.Scenario, path: path})
	if err != nil {
		t.Fatal(err)
	}
	var wrong []string
	want := map[string]bool{}
	for _, v := range tr.Stack.Verdicts {
		want[v.Kind] = true
		var f *analyze.Finding
		for i := range all {
			if all[i].Kind == v.Kind && all[i].Cause == v.Cause {
				f = &all[i]
				break
			}
		}
		if f == nil {
			wrong = append(wrong, fmt.Sprintf("no %s finding with cause %s", v.Kind, v.Cause))
			continue
		}
		t.Logf("h2scope: %s %s %s: %s; metrics %v", f.Severity, f.Kind, f.Cause, f.Summary, f.Metrics)
		if f.Severity.String() != v.Severity {
			wrong = append(wrong, fmt.Sprintf("%s %s is %s, want %s", v.Kind, v.Cause, f.Severity, v.Severity))
		}
		exact := map[string]string{} // metric: fact it must equal
		switch v.Cause {
		case analyze.CauseRapidReset:
			exact = map[string]string{"rst_frames": "rst_frames", "streams_reset": "streams_reset"}
			// resets, rapid_resets and the rates come from the
			// connection's reset records, bounded (resets_dropped).
			n, _ := metricInt(f.Metrics, "rapid_resets")
			dropped, _ := metricInt(f.Metrics, "resets_dropped")
			t.Logf("rapid_resets %d of %d (%d RST_STREAM frames past the records' bound)", n, facts["rapid_resets"], dropped)
			if n < 10 || n+dropped != int64(facts["rapid_resets"]) {
				wrong = append(wrong, fmt.Sprintf("rapid_resets %d + resets_dropped %d, want %d", n, dropped, facts["rapid_resets"]))
			}
		case analyze.CausePingFlood, analyze.CauseSettingsFlood, analyze.CauseWindowUpdateFlood, analyze.CauseContinuationFlood, analyze.CauseEmptyFramesFlood:
			exact = map[string]string{"frames": "attack_frames", "streams": "client_streams"}
		case analyze.CauseHPACKBomb:
			exact = map[string]string{"header_lists_over_limit": "header_lists_over_limit"}
		case analyze.CauseSYNFlood:
			exact = map[string]string{"syns": "syns"}
			// sources is a linear-counting estimate: within 3%.
			if n, ok := metricInt(f.Metrics, "sources"); !ok || math.Abs(float64(n)-float64(facts["sources"])) > 0.03*float64(facts["sources"]) {
				wrong = append(wrong, fmt.Sprintf("sources %v, want %d within 3%%", f.Metrics["sources"], facts["sources"]))
			}
		}
		for _, m := range slices.Sorted(maps.Keys(exact)) {
			n, ok := metricInt(f.Metrics, m)
			if !ok || n != int64(facts[exact[m]]) {
				wrong = append(wrong, fmt.Sprintf("metric %s = %v, want %d (truth %s)", m, f.Metrics[m], facts[exact[m]], exact[m]))
			}
		}
	}
	for _, f := range all {
		if !want[f.Kind] && f.Severity >= analyze.Warning {
			wrong = append(wrong, fmt.Sprintf("unexpected %s %s (%s): %s", f.Severity, f.Kind, f.Cause, f.Summary))
		}
	}
	for _, v := range tr.Stack.Verdicts {
		t.Logf("truth: %s %s (%s): %s", v.Severity, v.Kind, v.Cause, v.Why)
	}
	reason, known := knownAttackMisses[tr.Scenario]
	switch {
	case len(wrong) > 0 && known:
		t.Skipf("h2scope is wrong here today: %s (%s)", strings.Join(wrong, "; "), reason)
	case len(wrong) > 0:
		t.Errorf("%s:\n\t%s\nfindings:%s", tr.Scenario, strings.Join(wrong, "\n\t"), describeFindings(all, ""))
	case known:
		t.Errorf("knownAttackMisses %q (%s): h2scope is right now: remove the entry", tr.Scenario, reason)
	}
}

// checkAttackFrames checks the capture's HTTP/2 frames by type, as
// h2scope and tshark (the port decoded as HTTP/2) dissect them, against
// the truth, and h2scope's frames against tshark's one by one (capture
// frame, type, stream). A capture without HTTP/2 (the SYN flood) is
// checked for its SYNs and their sources with tshark instead.
func checkAttackFrames(t *testing.T, tr *truth.Truth, path string) {
	if tr.Expect.HTTP2Frames == nil {
		syns, sources := tsharkSYNs(t, path)
		t.Logf("tshark: %d SYNs from %d sources", syns, sources)
		if syns != tr.Stack.Facts["syns"] || sources != tr.Stack.Facts["sources"] {
			t.Errorf("tshark: %d SYNs from %d sources, truth %d from %d", syns, sources, tr.Stack.Facts["syns"], tr.Stack.Facts["sources"])
		}
		return
	}
	ours, _, _ := ourHTTP2(t, path)
	ts := tsharkHTTP2(t, path, map[uint16]bool{attackServerPort: true}, true)
	t.Logf("HTTP/2 frames: truth %v, h2scope %v, tshark %v", tr.Expect.HTTP2Frames, byType(ours), byType(ts))
	if got := byType(ours); !maps.Equal(got, tr.Expect.HTTP2Frames) {
		t.Errorf("h2scope: HTTP/2 frames %v, truth %v", got, tr.Expect.HTTP2Frames)
	}
	if got := byType(ts); !maps.Equal(got, tr.Expect.HTTP2Frames) {
		t.Errorf("tshark: HTTP/2 frames %v, truth %v", got, tr.Expect.HTTP2Frames)
	}
	if a, b := diffUnits(ours, ts); len(a)+len(b) > 0 {
		t.Errorf("HTTP/2 frames differ from tshark:\n\tonly h2scope: %v\n\tonly tshark:  %v", head(a), head(b))
	}
}

// tsharkSYNs counts the SYNs without ACK in path and their distinct
// source addresses.
func tsharkSYNs(t *testing.T, path string) (syns, sources int) {
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", "-n", "-r", path, "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields", "-e", "ip.src")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, stderr.String())
	}
	seen := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		syns++
		seen[l] = true
	}
	return syns, len(seen)
}

// metricInt returns metric m as an integer.
func metricInt(ms map[string]any, m string) (int64, bool) {
	switch v := ms[m].(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		return int64(v), true
	case float64:
		return int64(v), v == math.Trunc(v)
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}
