package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
)

// TestBuilderStreamMatchesNew: on every committed capture, the report a
// Builder makes while the analysis streams (records built when each
// connection's application part is over, completed from the final
// summaries) is byte for byte the report New makes from the kept records,
// and WriteJSON, which encodes it piece by piece, writes what one
// json.Encoder writes.
func TestBuilderStreamMatchesNew(t *testing.T) {
	caps, err := filepath.Glob("../testdata/pcaps/*.pcapng")
	if err != nil || len(caps) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	for _, f := range caps {
		opts := func() dissect.Options {
			o := dissect.Options{Keys: tls.NewKeyLog()}
			if b, err := os.ReadFile(strings.TrimSuffix(f, ".pcapng") + ".keys"); err == nil {
				o.Keys.Add(b, "keys")
			}
			return o
		}
		res, in, err := analyze.Run(context.Background(), []string{f}, opts(), analyze.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		want := encodeWhole(t, New([]string{f}, in, res, Redaction{}))
		b := NewBuilder(Redaction{})
		res, in, err = analyze.Stream(context.Background(), []string{f}, opts(), analyze.DefaultConfig(), b.Add)
		if err != nil {
			t.Fatal(err)
		}
		rep := b.Report([]string{f}, in, res)
		if rep.Timelines != nil || len(rep.Connections) > 0 && rep.timeline == nil {
			t.Errorf("%s: the Builder's report holds its timelines", f)
		}
		if got := encodeWhole(t, rep); got != want {
			t.Errorf("%s: streamed report differs from New's: %s", f, firstDiffLine(got, want))
		}
		var got bytes.Buffer
		if err := rep.WriteJSON(&got); err != nil {
			t.Fatal(err)
		}
		if got.String() != want {
			t.Errorf("%s: WriteJSON differs from json.Encoder: %s", f, firstDiffLine(got.String(), want))
		}
	}
}

// encodeWhole encodes r as WriteJSON did before it streamed, with every
// timeline made.
func encodeWhole(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	whole := *r
	whole.Timelines, whole.timeline = r.allTimelines(), nil
	if err := enc.Encode(&whole); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
