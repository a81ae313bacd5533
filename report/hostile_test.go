package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// alertTrap replaces the dialogs at the top of a page under test: a
// hostile string that became markup and ran would mark <html> with
// data-alerted instead of blocking the page in a dialog.
const alertTrap = `<script>window.alert = window.confirm = window.prompt = function (m) {
  document.documentElement.setAttribute("data-alerted", String(m));
};</script>`

// withAlertTrap returns page with alertTrap first in its <head>.
func withAlertTrap(t *testing.T, page []byte) []byte {
	t.Helper()
	i := bytes.Index(page, []byte("<head>"))
	if i < 0 {
		t.Fatal("page has no <head>")
	}
	i += len("<head>")
	return append(append(append([]byte{}, page[:i]...), alertTrap...), page[i:]...)
}

// TestHTMLChromiumHostileCapture loads the HTML report of the real
// hostile-strings capture (markup in paths, User-Agent, :authority and
// GOAWAY debug data; terminal escapes in a path; secrets everywhere) in
// headless Chromium: no dialog is called, no console error, the strings
// show as text in the DOM the script built, and no secret is there.
func TestHTMLChromiumHostileCapture(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome in PATH (apt-get install -y chromium)")
	}
	dir := t.TempDir()
	load := func(t *testing.T, name string, page []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, withAlertTrap(t, page), 0o644); err != nil {
			t.Fatal(err)
		}
		dom, console := runChromium(t, bin, path, "--virtual-time-budget=3000", "--dump-dom")
		for _, line := range console {
			t.Errorf("console: %s", line)
		}
		return dom
	}
	page := renderHTML(t, fixtureReport(t, "hostile-strings.pcapng"))

	// The trap works: markup that does run is caught.
	t.Run("control", func(t *testing.T) {
		bad := bytes.Replace(page, []byte("</body>"), []byte(`<img src=x onerror=alert(9)></body>`), 1)
		if dom := load(t, "control.html", bad); !strings.Contains(dom, `data-alerted="9"`) {
			t.Fatal("an injected onerror=alert(9) did not reach the trap: the test cannot see a dialog")
		}
	})

	t.Run("capture", func(t *testing.T) {
		dom := load(t, "hostile.html", page)
		if m := regexp.MustCompile(`data-alerted="[^"]*"`).FindString(dom); m != "" {
			t.Errorf("a hostile string ran: %s", m)
		}
		if !strings.Contains(dom, `data-ready="1"`) {
			t.Error("app.js did not finish: no data-ready on <html>")
		}
		if m := regexp.MustCompile(`<div id="errors"[^>]*>(.*?)</div>`).FindStringSubmatch(dom); m == nil || m[1] != "" {
			t.Errorf("page reported errors: %v", m)
		}
		lower := strings.ToLower(dom)
		for _, bad := range []string{"data-pwned", "<img", "<script>alert", "</script><script>", "<b>x</b>"} {
			if strings.Contains(lower, bad) {
				t.Errorf("DOM contains %q: a hostile string became markup", bad)
			}
		}
		// Three <script> elements: the trap, the data block, app.js.
		if n := strings.Count(lower, "<script"); n != 3 {
			t.Errorf("DOM has %d <script elements, want 3", n)
		}
		if !strings.Contains(dom, `<svg class="timeline"`) {
			t.Fatal("no timeline drawn")
		}
		// The strings are there as text: the server-rendered finding and
		// pools table, and the timeline and event table app.js drew.
		for _, want := range []string{
			`debug "&lt;script&gt;alert(4)&lt;/script&gt;"`,
			`<td>&lt;b&gt;x&lt;/b&gt;</td>`,
			`GET /search?q=&lt;script&gt;alert(1)&lt;/script&gt;&amp;access_token=[redacted 14 bytes]`,
			`GET /x"&gt;&lt;img src=x onerror=alert(2)&gt;`,
			`GET "/esc\x1b[2J\x1b]0;pwned\a"`,
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("DOM lacks %s", want)
			}
		}
		for _, s := range []string{"SECRET-TOKEN-1", "SECRET-BEARER-2", "SECRET-COOKIE-3", "SECRET-KEY-4",
			"SECRET-SETCOOKIE-5", "SECRET-PW-6", "SECRET-SIG-7", "ABv/U0VDUkVULUJJTi04" /* trace-bin */} {
			if strings.Contains(dom, s) {
				t.Errorf("DOM holds the secret %s", s)
			}
		}
		if strings.ContainsAny(dom, "\x1b\x07") {
			t.Error("DOM holds a raw ESC or BEL")
		}
	})
}

// TestPrintable: the terminal and Markdown show a captured value as it is
// when every rune is printable, else quoted with Go escapes: C0 controls,
// DEL, C1 controls, the line separator, bidi overrides and isolates,
// zero-width characters and invalid UTF-8 (alone too: a raw 0x9b is a CSI
// to a terminal not in UTF-8 mode). A U+FFFD that was in the value stays.
func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain /path?q=ü…", "plain /path?q=ü…"},
		{"a\ufffdb", "a\ufffdb"},
		{"a\x1b[2Jb\a", `"a\x1b[2Jb\a"`},
		{"nul\x00del\x7f", `"nul\x00del\x7f"`},
		{"csi\u009b2J", `"csi\u009b2J"`},
		{"raw\x9b2J", `"raw\x9b2J"`},
		{"bad\xff\xfe", `"bad\xff\xfe"`},
		{"cut\xe2\x80", `"cut\xe2\x80"`},
		{"rlo\u202egnp.exe", `"rlo\u202egnp.exe"`},
		{"lri\u2066x\u2069", `"lri\u2066x\u2069"`},
		{"ls\u2028ps\u2029", `"ls\u2028ps\u2029"`},
		{"zw\u200bj\u200d", `"zw\u200bj\u200d"`},
		{"line\nbreak\ttab", `"line\nbreak\ttab"`},
	} {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %s, want %s", tt.in, got, tt.want)
		}
		// Markdown shows the same, its backslashes and brackets escaped.
		if got, want := mdText(tt.in), strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`).Replace(tt.want); got != want {
			t.Errorf("mdText(%q) = %s, want %s", tt.in, got, want)
		}
	}
}
