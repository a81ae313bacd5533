package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiffCommand(t *testing.T) {
	dir := t.TempDir()
	nokeep, keep := "../../testdata/pcaps/http1-nokeepalive.pcapng", "../../testdata/pcaps/http1-keepalive.pcapng"
	js := filepath.Join(dir, "d.json")
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"diff", nokeep}, exitUsage, "h2scope diff: want two inputs, BEFORE and AFTER; have 1\n"},
		{[]string{"diff", "--fail-on", "info", nokeep, keep}, exitUsage, "h2scope diff: --fail-on \"info\": want warning or critical\n"},
		{[]string{"diff", "--match", "x", nokeep, keep}, exitUsage, "h2scope diff: invalid value \"x\" for flag --match"},
		{[]string{"diff", "--fail-on", "warning", nokeep, keep}, exitOK, ""},       // churn resolved
		{[]string{"diff", "--fail-on", "warning", keep, nokeep}, exitFindings, ""}, // churn new
		{[]string{"diff", "--fail-on", "critical", keep, nokeep}, exitOK, ""},
		{[]string{"diff", "--json", js, nokeep, keep}, exitOK, ""},
	} {
		code, _, stderr := runCmd(tt.args...)
		if code != tt.code || !strings.HasPrefix(stderr, tt.stderr) || (tt.stderr == "" && stderr != "") {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
	var r struct {
		Schema   string `json:"schema"`
		Findings []struct {
			Kind, Status string
		} `json:"findings"`
		Pools []struct {
			Before, After struct {
				RequestsPerConn float64 `json:"requests_per_conn"`
			}
		} `json:"pools"`
	}
	if err := json.Unmarshal(readFile(t, js), &r); err != nil {
		t.Fatal(err)
	}
	if r.Schema != "h2scope.diff/v1" || len(r.Findings) != 1 || r.Findings[0].Status != "resolved" || len(r.Pools) != 1 ||
		r.Pools[0].Before.RequestsPerConn != 1 || r.Pools[0].After.RequestsPerConn < 10 {
		t.Errorf("--json: %+v", r)
	}
}
