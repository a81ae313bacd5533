package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
)

// TestKeyLogHeadline checks what the terminal summary, the Markdown and
// HTML headlines and the JSON capture record say about TLS decryption on
// real captures, with no key log, the key log of another capture, part
// of the right one, the right one, and a capture carrying its secrets in
// Decryption Secrets Blocks. Before, every undecrypted capture said
// "give --keylog" whatever was given.
func TestKeyLogHeadline(t *testing.T) {
	keys := func(name string) []byte {
		b, err := os.ReadFile("../testdata/pcaps/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The first three sessions' lines of tls13-resume.keys (20 lines,
	// four per session after the first).
	partial := strings.Join(strings.SplitAfter(string(keys("tls13-resume.keys")), "\n")[:12], "")
	tests := []struct {
		name    string
		capture string
		keylogs map[string]string // source name -> content
		want    string            // in the summary's TLS line; "" when there must be none
		wantUse *KeyLogUse
	}{
		{"no key log", "h2-tls.pcapng", nil,
			"TLS: 1 of 1 connections not decrypted (1 no_key_log); give --keylog to see inside them", nil},
		{"another capture's key log", "h2-tls.pcapng", map[string]string{"grpc-tls.keys": string(keys("grpc-tls.keys"))},
			"TLS: 1 of 1 connections not decrypted (1 no_keys_for_session); 4 secrets read from 1 source, none fit these sessions (1 client random missing from them)",
			&KeyLogUse{Secrets: 4, Sources: 1, Sessions: 1, MissingClientRandoms: 1}},
		{"two wrong key logs", "h2-tls12.pcapng", map[string]string{"grpc-tls.keys": string(keys("grpc-tls.keys")), "tls-alert.keys": string(keys("tls-alert.keys"))},
			"TLS: 1 of 1 connections not decrypted (1 no_keys_for_session); 10 secrets read from 2 sources, none fit these sessions (1 client random missing from them)",
			&KeyLogUse{Secrets: 10, Sources: 2, Sessions: 3, MissingClientRandoms: 1}},
		{"a key log without secrets", "h2-tls.pcapng", map[string]string{"empty.keys": "# nothing\n"},
			"(1 no_key_log); the key logs given (1 source) hold no TLS secrets", &KeyLogUse{Sources: 1}},
		{"part of the key log", "tls13-resume.pcapng", map[string]string{"part.keys": partial},
			"TLS: 2 of 5 connections not decrypted (2 no_keys_for_session); 12 secrets read from 1 source fit 3 sessions; 2 client randoms missing from them",
			&KeyLogUse{Secrets: 12, Sources: 1, Sessions: 3, Matched: 3, MissingClientRandoms: 2}},
		{"the right key log", "h2-tls.pcapng", map[string]string{"h2-tls.keys": string(keys("h2-tls.keys"))},
			"", &KeyLogUse{Secrets: 4, Sources: 1, Sessions: 1, Matched: 1}},
		{"decryption secrets block", "h2-tls-dsb.pcapng", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := dissect.Options{Keys: tls.NewKeyLog()}
			for name, content := range tt.keylogs {
				opts.Keys.Add([]byte(content), name)
			}
			files := []string{"../testdata/pcaps/" + tt.capture}
			b := NewBuilder(Redaction{})
			b.Keys = opts.Keys
			res, in, err := analyze.Stream(context.Background(), files, opts, analyze.DefaultConfig(), b)
			if err != nil {
				t.Fatal(err)
			}
			rep := b.Report(files, in, res)
			c := rep.Captures[0]
			if tt.wantUse != nil && (c.KeyLog == nil || *c.KeyLog != *tt.wantUse) {
				t.Errorf("key_log %+v, want %+v", c.KeyLog, tt.wantUse)
			}
			if dsb := tt.capture == "h2-tls-dsb.pcapng"; dsb && (c.KeyLog == nil || c.KeyLog.Sources != 1 || c.KeyLog.Secrets == 0 ||
				c.KeyLog.Matched == 0 || c.KeyLog.MissingClientRandoms != 0) {
				t.Errorf("decryption secrets block: key_log %+v", c.KeyLog)
			} else if !dsb && tt.keylogs == nil && c.KeyLog != nil {
				t.Errorf("key_log %+v without key logs", c.KeyLog)
			}
			var sum, md, html bytes.Buffer
			if err := WriteSummary(&sum, rep, TermOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteHTML(&html); err != nil {
				t.Fatal(err)
			}
			var tlsLine string
			for _, l := range strings.Split(sum.String(), "\n") {
				if strings.HasPrefix(l, "TLS: ") {
					tlsLine = l
				}
			}
			t.Logf("%s", tlsLine)
			if tt.want == "" {
				if tlsLine != "" {
					t.Errorf("summary has a TLS line: %q", tlsLine)
				}
				if len(c.TLSUndecrypted) != 0 {
					t.Errorf("undecrypted %v", c.TLSUndecrypted)
				}
				return
			}
			if !strings.Contains(tlsLine, tt.want) {
				t.Errorf("summary TLS line\n %q\nwant it to hold\n %q", tlsLine, tt.want)
			}
			note := keyLogNote(c.KeyLog)
			if strings.Contains(note, "--keylog") != (c.KeyLog == nil) {
				t.Errorf("note %q asks for --keylog with key_log %+v", note, c.KeyLog)
			}
			if !strings.Contains(md.String(), "connections not decrypted (") || !strings.Contains(md.String(), mdText(note)+".") {
				t.Errorf("Markdown headline does not say %q", note)
			}
			dd := html.String()
			if i := strings.Index(dd, "<dt>TLS</dt>"); i < 0 {
				t.Errorf("no TLS line in the HTML headline")
			} else {
				dd = dd[i:]
				dd = dd[:strings.Index(dd, "</dd>")]
				if c.KeyLog == nil {
					if !strings.Contains(dd, "pass <code>--keylog</code> to decrypt") {
						t.Errorf("HTML TLS line %q does not ask for --keylog", dd)
					}
				} else if strings.Contains(dd, "--keylog") || !strings.Contains(dd, note) {
					t.Errorf("HTML TLS line %q, want %q", dd, note)
				}
			}
			// The JSON capture record carries the facts.
			var j struct {
				Captures []struct {
					KeyLog *KeyLogUse `json:"key_log"`
				} `json:"captures"`
			}
			var buf bytes.Buffer
			if err := rep.WriteJSONLine(&buf); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(buf.Bytes(), &j); err != nil {
				t.Fatal(err)
			}
			if (j.Captures[0].KeyLog == nil) != (c.KeyLog == nil) || c.KeyLog != nil && *j.Captures[0].KeyLog != *c.KeyLog {
				t.Errorf("JSON key_log %+v, want %+v", j.Captures[0].KeyLog, c.KeyLog)
			}
		})
	}
}
