package analyze

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/h2scope/h2scope/dissect/event"
)

// RouteRow is the request latency of one pool's HTTP requests of one
// method and path class (pathClass): HTTP/1.x requests and HTTP/2
// streams the client opened, gRPC calls left out (the gRPC method table
// has them).
type RouteRow struct {
	// Client, Server and Name are the pool's, as in PoolRow.
	Client string `json:"client"`
	Server string `json:"server"`
	Name   string `json:"name,omitempty"`
	// Method is the request method ("GET"); Path the path class: the
	// path without its query, each segment that looks like an id
	// (digits, a UUID, 8 or more hex digits with a digit, 16 or more
	// letters, digits, '-', '_', '.' or '=' with both letters and
	// digits, or over 40 bytes) written ":id", at most 8 segments (then
	// "/*"). Past the pool's first maxRouteClasses classes in (method,
	// path) order, the rest share one row whose Method and Path are
	// "(other)".
	Method string `json:"method"`
	Path   string `json:"path"`
	// Requests counts the requests whose head was seen; Answered those
	// whose response was seen whole, the ones the latency figures are
	// of.
	Requests int `json:"requests"`
	Answered int `json:"answered"`
	// P50MS and P99MS are the answered requests' latency, median and
	// 99th percentile (nearest rank), estimated within 1% by a quantile
	// sketch (exact when the rank is the top one, as a 99th percentile
	// of fewer than 100 requests); MaxMS is the longest, exact. Latency runs from the request
	// (HTTP/2: its first HEADERS frame, as a gRPC call's duration;
	// HTTP/1.x: the frame completing the request, as tshark's http.time)
	// to the frame completing the response (HTTP/2: the server's
	// END_STREAM). All three are absent when none was answered.
	P50MS float64 `json:"p50_ms,omitempty"`
	P99MS float64 `json:"p99_ms,omitempty"`
	MaxMS float64 `json:"max_ms,omitempty"`
}

// maxRouteClasses bounds the path classes a pool's route table keeps
// apart: the first in (method, path) order, whatever the order requests
// come in or shards merge; the others share the "(other)" row, so memory
// grows with neither the distinct paths nor the requests.
const maxRouteClasses = 32

// OtherRoute is the method and path class of the row of a pool's
// requests past maxRouteClasses.
const OtherRoute = "(other)"

// Path class bounds: segments kept, and the length past which a
// segment is an id.
const (
	maxPathSegments = 8
	maxSegmentLen   = 40
)

// pathClass returns the class of a request target: the path without
// query or fragment (an absolute-form target's scheme and authority
// dropped too), each id-like segment (isIDSegment) written ":id", at
// most maxPathSegments segments, the rest written "/*". "*" (OPTIONS *)
// stays; a target that is not a path (CONNECT's authority) is
// ":authority". Bytes outside printable ASCII are percent-encoded, as a
// URI has them, so that a class is inert in every output.
func pathClass(target string) string {
	return escapeClass(rawPathClass(target))
}

// rawPathClass is pathClass before escaping.
func rawPathClass(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if i := strings.Index(target, "://"); i > 0 && !strings.HasPrefix(target, "/") {
		rest := target[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "/"
		}
		target = rest[j:]
	}
	switch {
	case target == "" || target == "*":
		return target
	case target[0] != '/':
		return ":authority"
	}
	var b strings.Builder
	rest := target[1:]
	for i := 0; ; i++ {
		if i == maxPathSegments {
			b.WriteString("/*")
			break
		}
		s, after, more := strings.Cut(rest, "/")
		b.WriteByte('/')
		if isIDSegment(s) {
			b.WriteString(":id")
		} else {
			b.WriteString(s)
		}
		if !more {
			break
		}
		rest = after
	}
	return b.String()
}

// isIDSegment reports whether a path segment looks like an identifier
// rather than a name: all decimal digits; a UUID; 8 or more hex digits
// with at least one decimal digit; 16 or more letters, digits, '-', '_',
// '.' or '=' with both letters and digits (an opaque token); or longer
// than maxSegmentLen bytes.
func isIDSegment(s string) bool {
	if s == "" {
		return false
	}
	if len(s) > maxSegmentLen {
		return true
	}
	digits, hex, letters, token := 0, 0, 0, 0
	for i := range len(s) {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
			hex++
			token++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
			letters++
			token++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z':
			letters++
			token++
		case c == '-' || c == '_' || c == '.' || c == '=':
			token++
		}
	}
	switch {
	case digits == len(s):
		return true
	case isUUID(s):
		return true
	case hex == len(s) && len(s) >= 8 && digits > 0:
		return true
	case token == len(s) && len(s) >= 16 && digits > 0 && letters > 0:
		return true
	}
	return false
}

// isUUID reports whether s is a UUID in its 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// routeKey is a route row's method and path class.
type routeKey struct{ method, path string }

func (k routeKey) compare(o routeKey) int {
	return cmp.Or(strings.Compare(k.method, o.method), strings.Compare(k.path, o.path))
}

// routeAgg is what a route row keeps: its counts, a sketch of the
// latencies in milliseconds and the longest.
type routeAgg struct {
	requests, answered int
	lat                quantileSketch
	max                float64
}

// quantile returns the latency of nearest rank ⌈p·n⌉: the exact maximum
// when that is the top rank (a 99th percentile under 100 requests),
// else the sketch's estimate, capped at the maximum (which is then
// nearer the true value).
func (a *routeAgg) quantile(p float64) float64 {
	if int(math.Ceil(p*float64(a.lat.n))) >= a.lat.n {
		return a.max
	}
	return math.Min(a.lat.quantile(p), a.max)
}

func (a *routeAgg) merge(o *routeAgg) {
	a.requests += o.requests
	a.answered += o.answered
	a.lat.merge(&o.lat)
	a.max = math.Max(a.max, o.max)
}

// routeSet is one pool's route rows: the maxRouteClasses smallest
// classes apart, the others in other. Which classes it keeps, and what
// each row holds, depend only on the requests added, not on their order
// or on how sets were merged: a class goes to other only once
// maxRouteClasses smaller ones were seen, so it is not among the
// smallest of any superset either.
type routeSet struct {
	classes map[routeKey]*routeAgg
	other   *routeAgg
}

// agg returns the row k counts in.
func (s *routeSet) agg(k routeKey) *routeAgg {
	if a := s.classes[k]; a != nil {
		return a
	}
	if s.classes == nil {
		s.classes = map[routeKey]*routeAgg{}
	}
	if len(s.classes) >= maxRouteClasses {
		var hi routeKey
		first := true
		for c := range s.classes {
			if first || c.compare(hi) > 0 {
				hi, first = c, false
			}
		}
		if s.other == nil {
			s.other = &routeAgg{}
		}
		if k.compare(hi) > 0 {
			return s.other
		}
		s.other.merge(s.classes[hi])
		delete(s.classes, hi)
	}
	a := &routeAgg{}
	s.classes[k] = a
	return a
}

func (s *routeSet) merge(o *routeSet) {
	for k, oa := range o.classes {
		s.agg(k).merge(oa)
	}
	if o.other != nil {
		if s.other == nil {
			s.other = &routeAgg{}
		}
		s.other.merge(o.other)
	}
}

// routesObserve adds c's HTTP requests (gRPC calls left out) to its
// pool's route rows.
func (t *tableBuilder) routesObserve(c *Conn) {
	if c.Records == nil || len(c.Records.Exchanges) == 0 {
		return
	}
	var grpcStreams map[uint32]bool
	if len(c.Records.Calls) > 0 {
		grpcStreams = make(map[uint32]bool, len(c.Records.Calls))
		for i := range c.Records.Calls {
			grpcStreams[c.Records.Calls[i].Stream] = true
		}
	}
	var s *routeSet
	for i := range c.Records.Exchanges {
		x := &c.Records.Exchanges[i]
		if x.Request == nil || x.Method == "" || x.Proto == event.ProtoHTTP2 && (grpcStreams[x.Stream] || x.GRPCStatus != nil) {
			continue
		}
		if s == nil {
			k := poolKey{client: c.Client(), server: c.Server(), name: c.Authority()}
			s = t.routes[k]
			if s == nil && len(t.routes) >= maxPools {
				k.client = anyClient
				s = t.routes[k]
			}
			if s == nil {
				s = &routeSet{}
				t.routes[k] = s
			}
		}
		a := s.agg(routeKey{methodClass(x.Method), pathClass(x.Path)})
		a.requests++
		if x.ResponseEnd != nil {
			v := float64(x.ResponseEnd.TS.Sub(x.Request.TS)) / 1e6
			a.answered++
			a.lat.add(v)
			a.max = math.Max(a.max, v)
		}
	}
}

// routesMerge adds o's route rows.
func (t *tableBuilder) routesMerge(o *tableBuilder) {
	mergePools(&t.routes, o.routes, nil, poolKey.compare, func(poolKey) *routeSet { return &routeSet{} },
		func(s, os *routeSet, _ poolKey, _ bool) { s.merge(os) })
}

// routeRows returns the route rows in pool, method and path order, each
// pool's "(other)" row last.
func (t *tableBuilder) routeRows() []RouteRow {
	rows := []RouteRow{}
	for _, k := range sortedPoolKeys(t.routes) {
		s := t.routes[k]
		row := func(method, path string, a *routeAgg) RouteRow {
			r := RouteRow{Client: clientString(k.client), Server: k.server.String(), Name: k.name,
				Method: method, Path: path, Requests: a.requests, Answered: a.answered}
			if a.answered > 0 {
				r.P50MS, r.P99MS, r.MaxMS = roundTo(a.quantile(0.5), 3), roundTo(a.quantile(0.99), 3), roundTo(a.max, 3)
			}
			return r
		}
		keys := make([]routeKey, 0, len(s.classes))
		for rk := range s.classes {
			keys = append(keys, rk)
		}
		slices.SortFunc(keys, routeKey.compare)
		for _, rk := range keys {
			rows = append(rows, row(rk.method, rk.path, s.classes[rk]))
		}
		if s.other != nil {
			rows = append(rows, row(OtherRoute, OtherRoute, s.other))
		}
	}
	return rows
}

// maxMethodLen bounds a route's method: a longer one (not a method
// any server knows) is cut there.
const maxMethodLen = 24

// methodClass is a request method as a route row shows it: at most
// maxMethodLen bytes, escaped as a path class is.
func methodClass(m string) string {
	return escapeClass(m[:min(len(m), maxMethodLen)])
}

// escapeClass percent-encodes the bytes of s outside '!'..'~' (control
// characters, space, DEL, non-ASCII).
func escapeClass(s string) string {
	clean := true
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
