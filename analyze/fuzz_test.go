package analyze_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/report"
)

// FuzzAnalyze runs a whole capture file through dissection, every
// detector and every renderer: a hostile capture may give an error or a
// partial report, never a panic or a hang.
func FuzzAnalyze(f *testing.F) {
	for _, name := range []string{"h2-goaway-abrupt", "hostile-strings", "syn-unanswered", "tls-alert"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "pcaps", name+".pcapng"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "in.pcapng")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := dissect.Options{Keys: tls.NewKeyLog()}
		rb := report.NewBuilder(report.Redaction{})
		res, in, err := analyze.Stream(context.Background(), []string{path}, opts, analyze.DefaultConfig(), rb)
		if err != nil {
			return
		}
		r := rb.Report([]string{path}, in, res)
		for _, write := range []func(io.Writer) error{r.WriteJSON, r.WriteMarkdown, r.WriteHTML} {
			if err := write(io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		if err := report.WriteSummary(io.Discard, r, report.TermOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}
