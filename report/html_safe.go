package report

import (
	"fmt"
	"html/template"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Safe strings in the HTML report.
//
// html/template keeps captured strings from becoming markup, but not
// from carrying bytes that act on whoever reads the page's source: a
// terminal running `cat report.html` or `less -R` executes ESC and C1
// sequences, and bidi overrides reorder what is shown. Every string the
// page is made from (the findings, the tables, the connection heads and
// the JSON data app.js draws from) is therefore rewritten before it is
// rendered: each of these is shown as a visible escape, in plain text,
// and the rest is kept as it is.
//
//   - C0 controls (U+0000–U+001F) and DEL: \a \b \t \n \v \f \r, else \xNN
//   - C1 controls (U+0080–U+009F): \u0080 … \u009f
//   - bidi embeddings and overrides (U+202A–U+202E), isolates
//     (U+2066–U+2069) and marks (U+200E, U+200F, U+061C): \u202e …
//   - line and paragraph separators (U+2028, U+2029): \u2028, \u2029
//   - each byte of invalid UTF-8: \xNN
//
// A string longer than maxHTMLString bytes is cut there (at a rune
// boundary) and says how many bytes were left out, so that a 1 MB
// header value does not become a 1 MB table cell. The JSON data gets the
// same strings, escaped on this side, so app.js only ever shows text
// that is already safe.

// maxHTMLString bounds one captured string in the page, in bytes.
const maxHTMLString = 4096

// htmlSafeRune reports whether r is shown as it is.
func htmlSafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return false
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return false
	case r == 0x2028, r == 0x2029:
		return false
	}
	return true
}

// htmlSafe returns s with every rune htmlSafeRune refuses and every
// invalid UTF-8 byte written as a visible escape, cut at maxHTMLString
// bytes.
func htmlSafe(s string) string {
	clean := len(s) <= maxHTMLString
	if clean {
		for i := 0; i < len(s); {
			c := s[i]
			if c >= 0x20 && c < 0x7f {
				i++
				continue
			}
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 || !htmlSafeRune(r) {
				clean = false
				break
			}
			i += n
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	cut := 0
	for i := 0; i < len(s); {
		if b.Len() >= maxHTMLString {
			cut = len(s) - i
			break
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			switch r {
			case '\a':
				b.WriteString(`\a`)
			case '\b':
				b.WriteString(`\b`)
			case '\t':
				b.WriteString(`\t`)
			case '\n':
				b.WriteString(`\n`)
			case '\v':
				b.WriteString(`\v`)
			case '\f':
				b.WriteString(`\f`)
			case '\r':
				b.WriteString(`\r`)
			default:
				fmt.Fprintf(&b, `\x%02x`, r)
			}
		case !htmlSafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	if cut > 0 {
		fmt.Fprintf(&b, "… [%d more bytes]", cut)
	}
	return b.String()
}

// htmlSafeValue returns a deep copy of v (a struct, slice, map, pointer
// or interface holding them) with every string in it made safe by
// htmlSafe: struct fields, elements, map keys and values alike. The
// template types (template.CSS, template.JS, template.HTML, ...) are the
// page's own and kept as they are. Map keys that become equal (a raw ESC
// and the four characters \x1b) add up their counts, or keep the value
// of the first in key order, so that the page stays deterministic.
func htmlSafeValue[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	out := htmlSafeCopy(rv)
	return out.Interface().(T)
}

var htmlTemplatePkg = reflect.TypeFor[template.CSS]().PkgPath()

func htmlSafeCopy(v reflect.Value) reflect.Value {
	t := v.Type()
	switch t.Kind() {
	case reflect.String:
		if t.PkgPath() == htmlTemplatePkg {
			return v
		}
		s := v.String()
		if safe := htmlSafe(s); safe != s {
			nv := reflect.New(t).Elem()
			nv.SetString(safe)
			return nv
		}
		return v
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		nv := reflect.New(t.Elem())
		nv.Elem().Set(htmlSafeCopy(v.Elem()))
		return nv
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		nv := reflect.New(t).Elem()
		nv.Set(htmlSafeCopy(v.Elem()))
		return nv
	case reflect.Slice:
		if v.IsNil() || !htmlHasStrings(t.Elem()) {
			return v
		}
		nv := reflect.MakeSlice(t, v.Len(), v.Len())
		for i := range v.Len() {
			nv.Index(i).Set(htmlSafeCopy(v.Index(i)))
		}
		return nv
	case reflect.Array:
		if !htmlHasStrings(t.Elem()) {
			return v
		}
		nv := reflect.New(t).Elem()
		for i := range v.Len() {
			nv.Index(i).Set(htmlSafeCopy(v.Index(i)))
		}
		return nv
	case reflect.Map:
		if v.IsNil() || !htmlHasStrings(t.Key()) && !htmlHasStrings(t.Elem()) {
			return v
		}
		nv := reflect.MakeMapWithSize(t, v.Len())
		keys := v.MapKeys()
		if t.Key().Kind() == reflect.String {
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		}
		for _, key := range keys {
			k, val := htmlSafeCopy(key), htmlSafeCopy(v.MapIndex(key))
			if old := nv.MapIndex(k); old.IsValid() {
				// Two keys that read the same once escaped: counts
				// add up, else the first in key order stays.
				switch val.Kind() {
				case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
					sum := reflect.New(val.Type()).Elem()
					sum.SetInt(old.Int() + val.Int())
					nv.SetMapIndex(k, sum)
				}
				continue
			}
			nv.SetMapIndex(k, val)
		}
		return nv
	case reflect.Struct:
		if !htmlHasStrings(t) {
			return v
		}
		nv := reflect.New(t).Elem()
		nv.Set(v)
		for i := range t.NumField() {
			if !t.Field(i).IsExported() {
				continue
			}
			nv.Field(i).Set(htmlSafeCopy(v.Field(i)))
		}
		return nv
	}
	return v
}

// htmlHasStrings reports whether a value of type t can hold a string
// htmlSafeCopy rewrites (interfaces may).
func htmlHasStrings(t reflect.Type) bool {
	if has, ok := htmlStringTypes.Load(t); ok {
		return has.(bool)
	}
	has := htmlHasStringsSeen(t, map[reflect.Type]bool{})
	htmlStringTypes.Store(t, has)
	return has
}

var htmlStringTypes sync.Map // reflect.Type -> bool

func htmlHasStringsSeen(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.String:
		return t.PkgPath() != htmlTemplatePkg
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return htmlHasStringsSeen(t.Elem(), seen)
	case reflect.Map:
		return htmlHasStringsSeen(t.Key(), seen) || htmlHasStringsSeen(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if t.Field(i).IsExported() && htmlHasStringsSeen(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}
