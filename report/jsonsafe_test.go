package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
)

// jsonControl reports whether r is a rune the JSON outputs must escape
// and encoding/json does not: DEL, C1, the bidi overrides and isolates.
func jsonControl(r rune) bool {
	return r == 0x7f || r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// rawUnsafe returns the first rune of JSON text s that a terminal would
// act on (C0, DEL, C1, bidi controls, U+2028/2029), or -1.
func rawUnsafe(s string) rune {
	for _, r := range s {
		if r < 0x20 || r == 0x2028 || r == 0x2029 || jsonControl(r) {
			return r
		}
	}
	return -1
}

// TestEscapeJSONControlsEveryRune encodes every rune (in strings of 4096)
// with the package's encoder and with encoding/json's: the package's
// output has no raw control, is encoding/json's where no rune needs
// escaping, escapes exactly the listed runes as \u plus four lower-case
// hex digits, and decodes to the same string.
func TestEscapeJSONControlsEveryRune(t *testing.T) {
	var runes []rune
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if utf8.ValidRune(r) {
			runes = append(runes, r)
		}
	}
	escaped := 0
	for len(runes) > 0 {
		chunk := runes[:min(4096, len(runes))]
		runes = runes[len(chunk):]
		s := string(chunk)
		var plain, safe bytes.Buffer
		std := json.NewEncoder(&plain)
		std.SetEscapeHTML(false)
		if err := std.Encode(s); err != nil {
			t.Fatal(err)
		}
		if err := newJSONEncoder(&safe).Encode(s); err != nil {
			t.Fatal(err)
		}
		if r := rawUnsafe(strings.TrimSuffix(safe.String(), "\n")); r >= 0 {
			t.Fatalf("raw %U in the output", r)
		}
		var back string
		if err := json.Unmarshal(safe.Bytes(), &back); err != nil || back != s {
			t.Fatalf("runes %U-%U: decoding gives a different string (%v)", chunk[0], chunk[len(chunk)-1], err)
		}
		// Rebuild the expected text from encoding/json's by hand.
		var want strings.Builder
		for _, r := range plain.String() {
			if jsonControl(r) {
				fmt.Fprintf(&want, `\u%04x`, r)
				escaped++
				continue
			}
			want.WriteRune(r)
		}
		if safe.String() != want.String() {
			t.Fatalf("runes %U-%U: output differs from encoding/json's with the controls escaped", chunk[0], chunk[len(chunk)-1])
		}
	}
	if escaped != 1+32+5+4 {
		t.Errorf("%d runes escaped, want 42 (DEL, 32 C1, 5 bidi overrides, 4 isolates)", escaped)
	}
}

// TestEscapeJSONControlsInvalidUTF8: invalid UTF-8 becomes \ufffd per
// byte, as encoding/json writes it, and bytes that only look like the
// start of a control (a lone 0xc2 or 0xe2, cut short) stay \ufffd too;
// escapeJSONControls on raw bytes escapes a control's exact bytes only.
func TestEscapeJSONControlsInvalidUTF8(t *testing.T) {
	for _, s := range []string{"\xff", "\xc2", "a\xc2", "\xe2\x80", "\xe2\x80\xae\xc2", "\xc2\x9b\xff\xe2\x81\xa9\x7f", "\x80\x9b"} {
		var out bytes.Buffer
		if err := newJSONEncoder(&out).Encode(s); err != nil {
			t.Fatal(err)
		}
		if r := rawUnsafe(strings.TrimSuffix(out.String(), "\n")); r >= 0 || !utf8.Valid(out.Bytes()) {
			t.Errorf("%q: encoded as %q", s, out.String())
		}
		var back string
		if err := json.Unmarshal(out.Bytes(), &back); err != nil || !validPerByte(s, back) {
			t.Errorf("%q: decodes to %q (%v)", s, back, err)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"\xc2", "\xc2"},
		{"\xc2\x7f", "\xc2" + `\u007f`}, // a lone lead byte stays; DEL is escaped
		{"\xc2\xa0\xe2\x80\xa9\xe2\x80\xaf", "\xc2\xa0\xe2\x80\xa9\xe2\x80\xaf"},
		{"\xe2\x80\xaa\xe2\x80\xae\xe2\x81\xa6\xe2\x81\xa9\xe2\x81\xa5", `\u202a\u202e\u2066\u2069` + "\xe2\x81\xa5"},
		{"x\xc2\x80\xc2\x9f\xc2\xa0", `x\u0080\u009f` + "\xc2\xa0"},
		{"\xe2\x80", "\xe2\x80"},
	} {
		if got := string(escapeJSONControls(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("escapeJSONControls(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// validPerByte reports whether got is s with each invalid byte replaced
// by U+FFFD, as encoding/json replaces them.
func validPerByte(s, got string) bool {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String() == got
}

// BenchmarkJSONControls measures the report of a capture of 20 gRPC calls
// encoded by json.Encoder alone ("plain") and through newJSONEncoder
// ("escaped", the writers' path), and the report with hostile strings in
// every timeline event ("escaped-hostile": the slow path).
func BenchmarkJSONControls(b *testing.B) {
	f := "../testdata/pcaps/grpc-unary-h2c.pcapng"
	res, in, err := analyze.Run(context.Background(), []string{f}, dissect.Options{}, analyze.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	rep := New([]string{f}, in, res, Redaction{})
	hostile := New([]string{f}, in, res, Redaction{})
	for i := range hostile.Timelines {
		for j := range hostile.Timelines[i].Events {
			hostile.Timelines[i].Events[j].What += " \u009b2J \u202egpj.exe"
		}
	}
	for _, bm := range []struct {
		name string
		r    *Report
		enc  func(io.Writer) *json.Encoder
	}{
		{"plain", rep, func(w io.Writer) *json.Encoder {
			e := json.NewEncoder(w)
			e.SetEscapeHTML(false)
			return e
		}},
		{"escaped", rep, newJSONEncoder},
		{"escaped-hostile", hostile, newJSONEncoder},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if err := bm.enc(&buf).Encode(bm.r); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(buf.Len()))
		})
	}
	// The pass alone over the encoded reports, clean and hostile.
	for _, bm := range []struct {
		name string
		r    *Report
	}{{"pass-clean", rep}, {"pass-hostile", hostile}} {
		b.Run(bm.name, func(b *testing.B) {
			enc, err := json.Marshal(bm.r)
			if err != nil {
				b.Fatal(err)
			}
			w := &jsonSafeWriter{w: io.Discard}
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				w.Write(enc)
			}
		})
	}
}
