package http1

import (
	"strings"

	"github.com/h2scope/h2scope/dissect/event"
)

// lineCheck validates a start line byte by byte, so that a stream that is
// not HTTP is given up at its first impossible byte rather than after
// MaxHeader bytes. Request line: method SP target SP HTTP/d.d. Status
// line: HTTP/d.d SP ddd [SP reason]. A CR may only end the line.
//
// Where loose request lines are allowed (a client's message boundary, not
// a resync), a line that fails those rules but is text starting with an
// upper-case letter ("OPTIONS", "GET /HTTP/1.1", "GET/ HTTP/1.1") is kept
// as a malformed request: servers answer those (with 400), and counting
// them keeps responses matched to requests.
type lineCheck struct {
	resp  bool
	upper bool // methods of upper-case letters, '-' and '_' only (resync)
	phase uint8
	n     int
	cr    bool
	bad   bool
	// Loose line state.
	allowLoose bool
	count      int
	upperStart bool
	notText    bool
	crText     bool
}

const maxMethod = 32

const httpVersion = "HTTP/"

// reset starts a line: a status line when resp; upper restricts methods to
// upper case and forbids loose lines (a resync candidate).
func (l *lineCheck) reset(resp, upper bool) {
	*l = lineCheck{resp: resp, upper: upper, allowLoose: !resp && !upper}
}

// version checks byte n of "HTTP/d.d".
func versionByte(n int, c byte) bool {
	switch {
	case n < 5:
		return c == httpVersion[n]
	case n == 6:
		return c == '.'
	case n == 5 || n == 7:
		return '0' <= c && c <= '9'
	}
	return false
}

// feed checks the next byte (never '\n') and reports whether the line can
// still be a start line, strict or loose.
func (l *lineCheck) feed(c byte) bool {
	ok := l.strict(c)
	if !l.allowLoose {
		return ok
	}
	if l.count == 0 {
		l.upperStart = isUpperMethod(c)
	}
	l.count++
	switch {
	case l.crText || !(c == '\t' || c == '\r' || c >= ' ' && c != 0x7f):
		l.notText = true
	case c == '\r':
		l.crText = true
	}
	return ok || l.upperStart && !l.notText
}

// targetRun feeds the leading bytes of b that feed would take as part of
// a request target (a visible byte, in the target, with nothing amiss so
// far) at once, and returns how many; 0 when the line is not in its target.
func (l *lineCheck) targetRun(b []byte) int {
	if l.resp || l.phase != 1 || l.bad || l.cr || l.allowLoose && (l.crText || l.count == 0) {
		return 0
	}
	k := 0
	for k < len(b) && b[k] > ' ' && b[k] != 0x7f {
		k++
	}
	l.n += k
	if l.allowLoose {
		l.count += k
	}
	return k
}

// loose reports whether the complete line fed is a loose request line.
func (l *lineCheck) loose() bool {
	return l.allowLoose && l.upperStart && !l.notText && !l.complete()
}

func (l *lineCheck) strict(c byte) bool {
	if l.bad || l.cr {
		l.bad = true
		return false
	}
	if c == '\r' {
		l.cr = true
		return true
	}
	ok := false
	if !l.resp {
		switch l.phase {
		case 0: // method
			switch {
			case c == ' ' && l.n > 0:
				l.phase, l.n, ok = 1, 0, true
			case l.n < maxMethod && (isTchar(c) && !l.upper || l.upper && isUpperMethod(c)):
				l.n, ok = l.n+1, true
			}
		case 1: // target
			switch {
			case c == ' ' && l.n > 0:
				l.phase, l.n, ok = 2, 0, true
			case c > ' ' && c != 0x7f:
				l.n, ok = l.n+1, true
			}
		case 2: // version
			if l.n < 8 && versionByte(l.n, c) {
				l.n, ok = l.n+1, true
			}
		}
	} else {
		switch l.phase {
		case 0: // version
			switch {
			case l.n < 8 && versionByte(l.n, c):
				l.n, ok = l.n+1, true
			case l.n == 8 && c == ' ':
				l.phase, l.n, ok = 1, 0, true
			}
		case 1: // status code
			switch {
			case l.n < 3 && '0' <= c && c <= '9':
				l.n, ok = l.n+1, true
			case l.n == 3 && c == ' ':
				l.phase, ok = 2, true
			}
		case 2: // reason
			ok = c == '\t' || c >= ' ' && c != 0x7f
		}
	}
	if !ok {
		l.bad = true
	}
	return ok
}

// complete reports whether the bytes fed form a whole start line.
func (l *lineCheck) complete() bool {
	if l.bad {
		return false
	}
	if !l.resp {
		return l.phase == 2 && l.n == 8
	}
	return l.phase == 2 || l.phase == 1 && l.n == 3
}

func isUpperMethod(c byte) bool { return 'A' <= c && c <= 'Z' || c == '-' || c == '_' }

// tchar reports whether c may appear in a token (RFC 9110 section 5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func trimCR(s string) string {
	if len(s) > 0 && s[len(s)-1] == '\r' {
		return s[:len(s)-1]
	}
	return s
}

// trimOWS trims the optional whitespace (spaces and tabs) around s.
func trimOWS(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

// fields appends to dst the header fields of lines (each ending in '\n',
// the empty line excluded) and reports irregular lines by anomaly name.
func fields(dst []event.Header, lines string, anomaly func(string)) []event.Header {
	for lines != "" {
		i := strings.IndexByte(lines, '\n')
		var ln string
		if i < 0 {
			ln, lines = lines, ""
		} else {
			ln, lines = lines[:i], lines[i+1:]
		}
		ln = trimCR(ln)
		if ln == "" {
			break
		}
		if ln[0] == ' ' || ln[0] == '\t' {
			// obs-fold: a continuation of the previous field's value.
			anomaly("obs_fold")
			if n := len(dst); n > 0 {
				if v := trimOWS(ln); v != "" {
					dst[n-1].Value = strings.TrimRight(dst[n-1].Value+" "+v, " \t")
				}
			}
			continue
		}
		k := strings.IndexByte(ln, ':')
		if k <= 0 {
			anomaly("bad_header_line")
			continue
		}
		name := ln[:k]
		if strings.TrimRight(name, " \t") != name {
			anomaly("bad_header_line") // whitespace before the colon
			name = strings.TrimRight(name, " \t")
		}
		dst = append(dst, event.Header{Name: name, Value: trimOWS(ln[k+1:])})
	}
	return dst
}

// tokens calls f for each comma-separated element of v, trimmed.
func tokens(v string, f func(string)) {
	for v != "" {
		var t string
		if i := strings.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, ""
		}
		if t = trimOWS(t); t != "" {
			f(t)
		}
	}
}

// parseContentLength parses a Content-Length value: digits, or a list of
// identical values ("5, 5") as RFC 9110 section 8.6 allows.
func parseContentLength(v string) (int64, bool) {
	n := int64(-1)
	ok := true
	tokens(v, func(t string) {
		if len(t) > 18 {
			ok = false
			return
		}
		var x int64
		for i := 0; i < len(t); i++ {
			if t[i] < '0' || t[i] > '9' {
				ok = false
				return
			}
			x = x*10 + int64(t[i]-'0')
		}
		if n >= 0 && x != n {
			ok = false
		}
		n = x
	})
	return n, ok && n >= 0
}

// parseChunkSize parses a chunk-size line (without its line end): hex
// digits, then optional whitespace and chunk extensions.
func parseChunkSize(ln []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(ln); i++ {
		c := ln[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, false
	}
	for ; i < len(ln); i++ {
		switch ln[i] {
		case ' ', '\t':
			continue
		case ';':
			return n, true
		}
		return 0, false
	}
	return n, true
}

// keepAliveParams reads timeout= and max= from a Keep-Alive value.
func keepAliveParams(v string) (timeout, maxReq int) {
	tokens(v, func(t string) {
		k, val, ok := strings.Cut(t, "=")
		if !ok {
			return
		}
		n, ok := smallInt(strings.Trim(trimOWS(val), `"`))
		if !ok {
			return
		}
		switch {
		case strings.EqualFold(trimOWS(k), "timeout"):
			timeout = n
		case strings.EqualFold(trimOWS(k), "max"):
			maxReq = n
		}
	})
	return timeout, maxReq
}

// smallInt parses up to 9 decimal digits.
func smallInt(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
