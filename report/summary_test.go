package report

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestSummaryGroupsFindings checks that the terminal summary prints the
// first termFindingsPerGroup findings of a severity, kind and cause in
// full, the remedy once, and counts the rest on one line: a churn
// finding per client of a busy server must not fill a screen with the
// same remedy.
func TestSummaryGroupsFindings(t *testing.T) {
	r := fixtureReport(t, "http1-nokeepalive.pcapng")
	if len(r.Findings) != 1 {
		t.Fatalf("fixture has %d findings, want the one churn finding", len(r.Findings))
	}
	f := r.Findings[0]
	const n = termFindingsPerGroup + 3
	r.Findings = nil
	for i := range n {
		g := f
		g.ID = fmt.Sprintf("%s-%d", f.Kind, i+1)
		r.Findings = append(r.Findings, g)
	}
	var b bytes.Buffer
	if err := WriteSummary(&b, r, TermOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	head := regexp.MustCompile(`WARNING  reconnect_churn-\d+ \(client_connection_close\): Client `)
	if got := len(head.FindAllString(out, -1)); got != termFindingsPerGroup {
		t.Errorf("%d findings printed in full, want %d:\n%s", got, termFindingsPerGroup, out)
	}
	if got := strings.Count(out, "remedy: "+f.Remedy); got != 1 {
		t.Errorf("remedy printed %d times, want once:\n%s", got, out)
	}
	if got := strings.Count(out, "remedy: as for reconnect_churn-1 above"); got != termFindingsPerGroup-1 {
		t.Errorf("%d back-references to the first remedy, want %d:\n%s", got, termFindingsPerGroup-1, out)
	}
	want := "WARNING  reconnect_churn (client_connection_close): 3 more like reconnect_churn-1, on other pools"
	if !strings.Contains(out, want) {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}

	// Remedies A, B, B: the third points at the second, whose remedy it
	// shares, not at the group's first.
	r.Findings = r.Findings[:3]
	r.Findings[1].Remedy = "another remedy"
	r.Findings[2].Remedy = "another remedy"
	b.Reset()
	if err := WriteSummary(&b, r, TermOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "remedy: another remedy\n") || !strings.Contains(out, "remedy: as for reconnect_churn-2 above") {
		t.Errorf("the third finding's remedy should point at the second:\n%s", out)
	}
}
