package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// hostileCapture carries markup, terminal escapes and secrets in HTTP/1.1
// and h2c requests, responses and a GOAWAY (capgen's hostile-strings).
const hostileCapture = "../../testdata/pcaps/hostile-strings.pcapng"

// hostileBin is the value of the capture's trace-bin metadata, before
// base64 (capgen's hostileBin).
var hostileBin = []byte("\x00\x1b\xffSECRET-BIN-8")

// hostileSecrets are the secret values of the capture, as they are on the
// wire: none may reach an output unless --no-redact is given.
func hostileSecrets() []string {
	return []string{
		"SECRET-TOKEN-1", "SECRET-BEARER-2", "SECRET-COOKIE-3", "SECRET-KEY-4",
		"SECRET-SETCOOKIE-5", "SECRET-PW-6", "SECRET-SIG-7",
		base64.RawStdEncoding.EncodeToString(hostileBin), // trace-bin as sent
	}
}

// hostileOutputs runs every command that prints captured strings on the
// hostile capture with extra flags (such as --no-redact) and returns the
// outputs by name; terminal outputs are named "text:...".
func hostileOutputs(t *testing.T, extra ...string) map[string]string {
	t.Helper()
	outs := map[string]string{}
	cli := func(name string, args ...string) string {
		t.Helper()
		args = append(append(args[:1:1], extra...), append(args[1:], hostileCapture)...)
		out, errOut, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("h2scope %v: exit %d: %s", args, code, errOut)
		}
		outs[name] = out
		return out
	}
	cli("text:frames", "frames")
	cli("frames --json", "frames", "--json")
	cli("text:conns", "conns")
	conns := cli("conns --json", "conns", "--json")
	ids := 0
	dec := json.NewDecoder(strings.NewReader(conns))
	for dec.More() {
		var c struct {
			ID int `json:"id"`
		}
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
		id := strconv.Itoa(c.ID)
		cli("text:timeline --conn "+id, "timeline", "--conn", id)
		ids++
	}
	if ids != 2 {
		t.Fatalf("%d connections, want 2 (HTTP/1.1 and h2c)", ids)
	}
	dir := t.TempDir()
	j, md, html := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md"), filepath.Join(dir, "r.html")
	cli("text:analyze", "analyze", "--json", j, "--md", md, "--html", html)
	outs["analyze --json"] = string(readFile(t, j))
	outs["analyze --md"] = string(readFile(t, md))
	outs["analyze --html"] = string(readFile(t, html))
	return outs
}

// TestHostileRedacted checks that no output of the hostile capture holds
// a secret by default, and that --no-redact shows them all (so the
// capture does carry them where the outputs look).
func TestHostileRedacted(t *testing.T) {
	for name, out := range hostileOutputs(t) {
		for _, s := range hostileSecrets() {
			if strings.Contains(out, s) {
				i := strings.Index(out, s)
				t.Errorf("%s leaks %s: ...%s...", name, s, out[max(0, i-120):min(len(out), i+len(s)+40)])
			}
		}
	}
	// Outputs that show the requests show them redacted.
	outs := hostileOutputs(t)
	for _, name := range []string{"text:frames", "frames --json", "text:timeline --conn 0", "text:timeline --conn 1",
		"analyze --json", "analyze --md", "analyze --html"} {
		if !strings.Contains(outs[name], "[redacted ") {
			t.Errorf("%s marks nothing as redacted", name)
		}
	}

	outs = hostileOutputs(t, "--no-redact")
	for _, s := range hostileSecrets() {
		if !strings.Contains(outs["frames --json"], s) {
			t.Errorf("frames --json --no-redact lacks %s: the capture or the test is wrong", s)
		}
	}
	// The JSON carries the terminal escapes of x-term as escapes, and
	// decodes to the exact bytes.
	found := false
	dec := json.NewDecoder(strings.NewReader(outs["frames --json"]))
	for dec.More() {
		var f struct {
			Headers []struct{ Name, Value string } `json:"headers"`
		}
		if err := dec.Decode(&f); err != nil {
			t.Fatal(err)
		}
		for _, h := range f.Headers {
			found = found || h.Name == "x-term" && h.Value == "\x1b[2J\x1b]0;pwned\x07"
		}
	}
	if !found {
		t.Error("frames --json --no-redact: no x-term header with the terminal escapes")
	}
}

// mdMarkup matches a tag of the capture's hostile strings not escaped
// with a backslash.
var mdMarkup = regexp.MustCompile(`(^|[^\\])</?(script|img|b)\b`)

// TestHostileInert checks that the hostile strings of the capture stay
// text: no markup in the HTML report beyond the page's own two script
// elements (as in the golden report), no unescaped markup in the
// Markdown, and no raw control characters in any output (the capture has
// an h2c path and a header value with ESC and BEL), with redaction on and
// off.
func TestHostileInert(t *testing.T) {
	golden := readFile(t, "../../report/testdata/golden/h2c-large-slow.html")
	wantOpen, wantClose := bytes.Count(golden, []byte("<script")), bytes.Count(golden, []byte("</script"))
	if wantOpen != 2 || wantClose != 2 {
		t.Fatalf("the golden page has %d <script and %d </script, want 2 each (data block, app script)", wantOpen, wantClose)
	}
	for _, mode := range []string{"redacted", "no-redact"} {
		t.Run(mode, func(t *testing.T) {
			var outs map[string]string
			if mode == "redacted" {
				outs = hostileOutputs(t)
			} else {
				outs = hostileOutputs(t, "--no-redact")
			}

			page := outs["analyze --html"]
			lower := strings.ToLower(page)
			for _, bad := range []string{"<script>alert", "<img src=x", "</script><script>", "<b>x</b>"} {
				if strings.Contains(lower, bad) {
					t.Errorf("HTML report contains %q unescaped", bad)
				}
			}
			if n := strings.Count(lower, "<script"); n != wantOpen {
				t.Errorf("HTML report has %d <script, the page's own are %d", n, wantOpen)
			}
			if n := strings.Count(lower, "</script"); n != wantClose {
				t.Errorf("HTML report has %d </script, the page's own are %d", n, wantClose)
			}
			// The hostile strings are there, as text.
			for _, want := range []string{"debug &#34;&lt;script&gt;alert(4)&lt;/script&gt;&#34;", "&lt;b&gt;x&lt;/b&gt;"} {
				if !strings.Contains(page, want) {
					t.Errorf("HTML report lacks %s", want)
				}
			}

			md := outs["analyze --md"]
			// CommonMark renders \< as text; a bare < may open raw HTML.
			if m := mdMarkup.FindString(strings.ToLower(md)); m != "" {
				t.Errorf("Markdown report contains %q unescaped", m)
			}
			if !strings.Contains(md, `\<script\>alert(4)\</script\>`) {
				t.Error("Markdown report lacks the GOAWAY debug data, escaped")
			}

			// No output, terminal or file, carries a raw control character
			// (JSON has them as \u escapes).
			for name, out := range outs {
				for i, r := range out {
					if r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r < 0xa0 {
						t.Errorf("%s: control character %U at byte %d: %q", name, r, i, out[max(0, i-60):min(len(out), i+20)])
						break
					}
				}
			}
			// The terminal shows the markup as it was sent, as text, and
			// the path with escapes quoted.
			if !strings.Contains(outs["text:frames"], `:path=/x"><img src=x onerror=alert(2)>`) ||
				!strings.Contains(outs["text:frames"], `:path="/esc\x1b[2J\x1b]0;pwned\a"`) ||
				!strings.Contains(outs["text:analyze"], `debug "<script>alert(4)</script>"`) {
				t.Error("terminal outputs lack the hostile paths or GOAWAY debug data")
			}
		})
	}
}
