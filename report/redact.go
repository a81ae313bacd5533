package report

import (
	"fmt"
	"strings"

	"github.com/h2scope/h2scope/dissect/event"
)

// Redaction hides secrets that captures carry in the clear (credentials,
// cookies, API keys, tokens in URLs) from everything h2scope writes. It is
// on by default; --no-redact turns it off. Key log contents never reach
// any output either way.
type Redaction struct {
	// Off disables redaction.
	Off bool
}

// secretHeaders are header fields whose whole value is a secret.
var secretHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"x-api-key": true, "x-auth-token": true, "x-csrf-token": true, "x-xsrf-token": true,
	"x-amz-security-token": true, "x-goog-api-key": true,
}

// secretWords mark a header field or query parameter name as holding a
// secret when one of its words (split at - _ . :) is one of them, or two
// adjacent words are "api" "key".
var secretWords = map[string]bool{
	"token": true, "secret": true, "password": true, "passwd": true, "pwd": true,
	"apikey": true, "signature": true, "sig": true, "credential": true, "credentials": true,
	"session": true, "sessionid": true, "sid": true, "auth": true, "jwt": true,
}

// secretName reports whether a header field or parameter name is one whose
// value is a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	if secretHeaders[n] {
		return true
	}
	words := strings.FieldsFunc(n, func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ':' })
	for i, w := range words {
		if secretWords[w] || w == "key" && i > 0 && words[i-1] == "api" {
			return true
		}
	}
	return false
}

// hidden is what a redacted value becomes: its length is kept, as it
// helps (an empty token and a 2 KB cookie are different problems).
func hidden(v string) string { return fmt.Sprintf("[redacted %d bytes]", len(v)) }

// Header returns the value to show for a header field: redacted when the
// name marks a secret, or it is gRPC binary metadata (-bin); a value with
// a URL has its token-like query parameters redacted.
func (r Redaction) Header(name, value string) string {
	if r.Off {
		return value
	}
	n := strings.ToLower(name)
	if secretName(n) || strings.HasSuffix(n, "-bin") {
		return hidden(value)
	}
	if n == ":path" || n == "location" || n == "referer" || n == "content-location" {
		return r.URL(value)
	}
	return value
}

// URL redacts the values of token-like query parameters (and user
// information) in a URL or request target; other parts are kept.
func (r Redaction) URL(u string) string {
	if r.Off {
		return u
	}
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			u = u[:i+3] + hidden(rest[:at]) + rest[at:]
		}
	}
	q := strings.IndexByte(u, '?')
	if q < 0 {
		return u
	}
	frag := ""
	query := u[q+1:]
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if ok && secretName(k) {
			params[i] = k + "=" + hidden(v)
		}
	}
	return u[:q+1] + strings.Join(params, "&") + frag
}

// Text redacts the URLs inside free text (finding summaries, evidence):
// each whitespace-separated word holding a query string.
func (r Redaction) Text(s string) string {
	if r.Off || !strings.ContainsRune(s, '?') {
		return s
	}
	words := strings.Split(s, " ")
	for i, w := range words {
		if strings.ContainsRune(w, '?') && strings.ContainsRune(w, '=') {
			words[i] = r.URL(w)
		}
	}
	return strings.Join(words, " ")
}

// headers returns hs with secret values redacted; hs itself is returned
// when nothing needs it, and never modified.
func (r Redaction) headers(hs []event.Header) []event.Header {
	if r.Off {
		return hs
	}
	var out []event.Header
	for i, h := range hs {
		v := r.Header(h.Name, h.Value)
		if v == h.Value {
			if out != nil {
				out = append(out, h)
			}
			continue
		}
		if out == nil {
			out = append(make([]event.Header, 0, len(hs)), hs[:i]...)
		}
		h.Value = v
		out = append(out, h)
	}
	if out == nil {
		return hs
	}
	return out
}
