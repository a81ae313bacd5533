package analyze

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
)

// pcaps is the directory of the project's generated captures.
const pcaps = "../testdata/pcaps"

// analyzeCapture runs a capture in testdata/pcaps (NAME.pcapng, with
// NAME.keys as its key log when present) through the dissectors and the
// detectors with the default configuration.
func analyzeCapture(t testing.TB, name string) (Result, *Input) {
	t.Helper()
	path := filepath.Join(pcaps, name+".pcapng")
	opts := dissect.Options{Keys: tls.NewKeyLog()}
	if b, err := readIfExists(filepath.Join(pcaps, name+".keys")); err != nil {
		t.Fatal(err)
	} else if b != nil {
		opts.Keys.Add(b, name+".keys")
	}
	res, in, err := Run(context.Background(), []string{path}, opts, DefaultConfig())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return res, in
}

// kindsAtLeast returns the kinds of the findings at or above sev.
func kindsAtLeast(res Result, sev Severity) map[string]int {
	m := map[string]int{}
	for _, f := range res.Findings {
		if f.Severity >= sev {
			m[f.Kind]++
		}
	}
	return m
}
