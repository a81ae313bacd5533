package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileCapture carries markup, terminal escapes and secrets in HTTP/1.1
// and h2c requests, responses and a GOAWAY, and controls (hostileCtl) and
// big values in the Host, :authority, SNI, header values, grpc-message
// and GOAWAY debug data of three more connections (capgen's
// hostile-strings).
const hostileCapture = "../../testdata/pcaps/hostile-strings.pcapng"

// hostileCtl is capgen's hostileCtl: ESC sequences, BEL, NUL, DEL, the C1
// CSI U+009B, the bidi override U+202E, invalid UTF-8, the isolate U+2066
// and the line separator U+2028. hostileCtlPct is the percent-encoded
// part of the failed gRPC call's grpc-message.
const (
	hostileCtl    = "ctl\x1b[31m\x07\x00\x7f\u009b2J\u202egnp.exe\xff\xfe\u2066\u2028end"
	hostileCtlPct = "pct%1B%C2%9B%E2%80%AE%FFend"
)

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
	if ids != 5 {
		t.Fatalf("%d connections, want 5 (HTTP/1.1, h2c, HTTP/1.1 and h2c with controls, TLS)", ids)
	}
	dir := t.TempDir()
	j, md, html := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md"), filepath.Join(dir, "r.html")
	cli("text:analyze", "analyze", "--json", j, "--md", md, "--html", html)
	outs["analyze --json"] = string(readFile(t, j))
	outs["analyze --md"] = string(readFile(t, md))
	outs["analyze --html"] = string(readFile(t, html))
	nd := filepath.Join(dir, "b.ndjson")
	if _, errOut, code := runCLI(t, append(append([]string{"batch"}, extra...), "--out", nd, hostileCapture)...); code != 0 {
		t.Fatalf("h2scope batch: exit %d: %s", code, errOut)
	}
	outs["batch"] = string(readFile(t, nd))
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
// Markdown (TestHostileControls checks the controls), with redaction on
// and off.
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

// unsafeRune reports whether r, raw in an output, would act on a terminal
// or an editor: C0 controls but newline, DEL, C1 controls, the line and
// paragraph separators, and the bidi overrides and isolates.
// tlsSNIs returns the SNI of each TLS connection in out, conns --json
// output, in order.
func tlsSNIs(t *testing.T, out string) []string {
	t.Helper()
	var snis []string
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var c struct {
			TLS *struct {
				SNI string `json:"sni"`
			} `json:"tls"`
		}
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
		if c.TLS != nil {
			snis = append(snis, c.TLS.SNI)
		}
	}
	return snis
}

// checkInert reports the first invalid UTF-8 byte and the first raw
// control, separator or bidi rune (unsafeRune) in out, the output name.
func checkInert(t *testing.T, name, out string) {
	t.Helper()
	for i, r := range out {
		if r == utf8.RuneError && !strings.HasPrefix(out[i:], "\ufffd") {
			t.Errorf("%s: invalid UTF-8 at byte %d: %q", name, i, out[max(0, i-60):min(len(out), i+20)])
			break
		}
	}
	for i, r := range out {
		if unsafeRune(r) {
			t.Errorf("%s: raw %U at byte %d: %q", name, r, i, out[max(0, i-60):min(len(out), i+20)])
			break
		}
	}
}

func unsafeRune(r rune) bool {
	return r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// perByte is s as encoding/json keeps it: each byte of invalid UTF-8
// replaced by U+FFFD.
func perByte(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// mdEscaped is s as the Markdown report escapes text (report.mdText, on
// a string that is already printable).
func mdEscaped(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_<>[]|~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// jsonStrings returns every string value in the JSON values of an NDJSON
// or JSON text.
func jsonStrings(t *testing.T, name, text string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out[v] = true
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	dec := json.NewDecoder(strings.NewReader(text))
	for dec.More() {
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		walk(v)
	}
	return out
}

// TestHostileControls checks every output of the hostile capture byte by
// byte, with redaction on and off: each is valid UTF-8 with no raw C0
// control but newline, DEL, C1 control, line or paragraph separator or
// bidi control (JSON has them as \u escapes, the terminal and Markdown as
// Go escapes); the controlled values are there, escaped, where each
// output shows them (so the test cannot pass by dropping them); the JSON
// decodes to the values as captured (invalid UTF-8 as U+FFFD, as
// encoding/json writes it); and the big values (73,728 bytes) are never
// copied whole.
func TestHostileControls(t *testing.T) {
	quoted := strconv.Quote(hostileCtl) // `"ctl\x1b[31m\a\x00\x7f\u009b2J\u202egnp.exe\xff\xfe\u2066\u2028end"`
	bigDebug := strings.TrimSuffix(strconv.Quote("big"+hostileCtl), `"`)
	// The gRPC dissector percent-decodes grpc-message and makes it valid
	// UTF-8 (one U+FFFD a run of invalid bytes).
	grpcMsg := strings.ToValidUTF8(hostileCtl, "\ufffd") + " pct\x1b\u009b\u202e\ufffdend"
	jsonCtl := `ctl\u001b[31m\u0007\u0000\u007f\u009b2J\u202egnp.exe\ufffd\ufffd\u2066\u2028end`
	for _, mode := range []string{"redacted", "no-redact"} {
		t.Run(mode, func(t *testing.T) {
			var outs map[string]string
			if mode == "redacted" {
				outs = hostileOutputs(t)
			} else {
				outs = hostileOutputs(t, "--no-redact")
			}
			for name, out := range outs {
				checkInert(t, name, out)
				if n := strings.Count(out, "gnp.exe"); n > 300 {
					t.Errorf("%s: %d copies of the controlled string: a big value is copied whole (%d copies)", name, n, 73728/len(hostileCtl))
				}
			}

			// The terminal shows each value quoted with Go escapes.
			for _, tt := range []struct{ out, what, want string }{
				{"text:analyze", "Host, :authority and SNI in the pool table", "│ " + quoted + " │"},
				{"text:analyze", "SNI in the TLS resumption table", "│ 127.0.0.1 │ " + quoted + " │"},
				{"text:analyze", "GOAWAY debug data in the finding", `debug ` + bigDebug},
				{"text:frames", ":authority", ":authority=" + quoted},
				{"text:frames", "grpc-message as sent", "grpc-message=" + strconv.Quote(hostileCtl+" "+hostileCtlPct)},
				{"text:frames", "grpc-message decoded", "error=INTERNAL  /hostile.Ctl/Fail grpc-status=13 grpc-message=" + strconv.Quote(grpcMsg)},
				{"text:frames", "GOAWAY debug data", "debug=" + bigDebug},
				{"text:frames", "content-type with invalid UTF-8 only", `content-type="text/plain; charset=\xff\xfe"`},
				{"text:timeline --conn 3", ":authority", ":authority=" + quoted},
				{"text:timeline --conn 3", "GOAWAY debug data", "debug=" + bigDebug},
				{"analyze --md", "GOAWAY debug data", `debug "` + mdEscaped(bigDebug[1:])},
				{"analyze --md", "GOAWAY debug data in the timeline", "| goaway | GOAWAY NO\\_ERROR last\\_stream\\_id=5 " + mdEscaped(bigDebug)},
			} {
				if !strings.Contains(outs[tt.out], tt.want) {
					t.Errorf("%s lacks the %s: %s", tt.out, tt.what, tt.want)
				}
			}

			// JSON has the \u escapes and decodes to the captured values.
			for _, name := range []string{"frames --json", "conns --json", "analyze --json", "batch"} {
				if !strings.Contains(outs[name], jsonCtl) {
					t.Errorf("%s lacks %s", name, jsonCtl)
				}
				if !jsonStrings(t, name, outs[name])[perByte(hostileCtl)] {
					t.Errorf("%s: no string decodes to the controlled value", name)
				}
			}
			if snis := tlsSNIs(t, outs["conns --json"]); len(snis) != 1 || snis[0] != perByte(hostileCtl) {
				t.Errorf("conns --json: SNIs %q, want [%q]", snis, perByte(hostileCtl))
			}
			got := map[string]map[string]bool{} // values by header or field name
			add := func(name, v string) {
				if got[name] == nil {
					got[name] = map[string]bool{}
				}
				got[name][v] = true
			}
			debug := ""
			dec := json.NewDecoder(strings.NewReader(outs["frames --json"]))
			for dec.More() {
				var f struct {
					Conn    int                            `json:"conn"`
					Type    string                         `json:"type"`
					Headers []struct{ Name, Value string } `json:"headers"`
					Debug   string                         `json:"debug"`
					Message string                         `json:"grpc_message"`
				}
				if err := dec.Decode(&f); err != nil {
					t.Fatal(err)
				}
				if f.Conn < 2 {
					continue // the connections without controls
				}
				for _, h := range f.Headers {
					add(h.Name, h.Value)
				}
				if f.Type == "GOAWAY" {
					debug = f.Debug
				}
				add("grpc_message", f.Message)
			}
			for name, want := range map[string]string{
				"Host": perByte(hostileCtl), "User-Agent": perByte(hostileCtl), "X-Ctl": perByte(hostileCtl),
				":authority": perByte(hostileCtl), "host": perByte(hostileCtl), "x-ctl": perByte(hostileCtl),
				"grpc-message": perByte(hostileCtl + " " + hostileCtlPct), "grpc_message": grpcMsg,
				"content-type": "text/plain; charset=\ufffd\ufffd",
			} {
				if !got[name][want] {
					t.Errorf("frames --json: %s values %q, want %q among them", name, slices.Sorted(maps.Keys(got[name])), want)
				}
			}
			if !strings.HasPrefix(debug, perByte("big"+hostileCtl)) || len(debug) > 3*256 {
				t.Errorf("frames --json: GOAWAY debug data %q, want the first 256 bytes of the big value", debug)
			}
		})
	}
}
