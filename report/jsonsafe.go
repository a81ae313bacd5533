package report

import (
	"bytes"
	"encoding/json"
	"io"
)

// Captured strings reach the JSON outputs as encoding/json writes them:
// it escapes C0 controls (\u0000-\u001f), U+2028 and U+2029, and turns
// each byte of invalid UTF-8 into \ufffd (JSON strings are Unicode text:
// the bytes cannot be kept, and the terminal and Markdown outputs show
// them as \xNN instead). It leaves raw the runes that still act on a
// terminal or an editor when the JSON is printed (cat, less -R, jq -r,
// logs): DEL, the C1 controls U+0080-U+009F (U+009B is a CSI on many
// terminals) and the bidirectional overrides and isolates U+202A-U+202E
// and U+2066-U+2069 (which reorder the text around them, "Trojan Source").
// Every JSON writer of the package escapes those too, at the output edge:
// its encoder writes through escapeJSONControls, so the encoding is
// otherwise byte for byte encoding/json's and decodes to the same strings.

// NewJSONEncoder returns a json.Encoder writing to w as the package's
// JSON writers do: HTML characters as they are, the controls
// escapeJSONControls escapes as \u escapes. For other JSON h2scope
// writes (batch's error records).
func NewJSONEncoder(w io.Writer) *json.Encoder { return newJSONEncoder(w) }

// newJSONEncoder returns a json.Encoder writing to w that does not escape
// HTML characters and escapes the controls escapeJSONControls does.
func newJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(&jsonSafeWriter{w: w})
	enc.SetEscapeHTML(false)
	return enc
}

// jsonSafeWriter passes JSON text to w with escapeJSONControls applied.
// Each Write must end on a UTF-8 sequence boundary, as a json.Encoder's
// do (one Write per value).
type jsonSafeWriter struct {
	w   io.Writer
	buf []byte
}

func (s *jsonSafeWriter) Write(p []byte) (int, error) {
	if !hasJSONControls(p) {
		return s.w.Write(p)
	}
	s.buf = escapeJSONControls(s.buf[:0], p)
	if _, err := s.w.Write(s.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hasJSONControls reports whether p may hold a rune escapeJSONControls
// escapes: only then does it hold one of the three lead bytes. Three
// vectorised scans, so clean output costs next to nothing.
func hasJSONControls(p []byte) bool {
	return bytes.IndexByte(p, 0x7f) >= 0 || bytes.IndexByte(p, 0xc2) >= 0 || bytes.IndexByte(p, 0xe2) >= 0
}

// escapeJSONControls appends src, JSON text, to dst with DEL, the C1
// controls (U+0080-U+009F) and the bidi controls U+202A-U+202E and
// U+2066-U+2069 written as \u escapes. Outside strings JSON text is
// ASCII, so only string contents change, and they decode to the same
// runes. The runes are found by their UTF-8 bytes (0x7f; 0xc2 0x80-0x9f;
// 0xe2 0x80 0xaa-0xae; 0xe2 0x81 0xa6-0xa9): 0xc2 and 0xe2 are never
// continuation bytes, so the match is exact even in invalid UTF-8.
func escapeJSONControls(dst, src []byte) []byte {
	const hex = "0123456789abcdef"
	last := 0
	for i := 0; i < len(src); i++ {
		var r, n int
		switch c := src[i]; {
		case c == 0x7f:
			r, n = 0x7f, 1
		case c == 0xc2 && i+1 < len(src) && src[i+1] >= 0x80 && src[i+1] <= 0x9f:
			r, n = int(src[i+1]), 2
		case c == 0xe2 && i+2 < len(src) &&
			(src[i+1] == 0x80 && src[i+2] >= 0xaa && src[i+2] <= 0xae ||
				src[i+1] == 0x81 && src[i+2] >= 0xa6 && src[i+2] <= 0xa9):
			r, n = 0x2000|int(src[i+1]&0x3f)<<6|int(src[i+2]&0x3f), 3
		default:
			continue
		}
		dst = append(dst, src[last:i]...)
		dst = append(dst, '\\', 'u', hex[r>>12], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		i += n - 1
		last = i + 1
	}
	return append(dst, src[last:]...)
}
