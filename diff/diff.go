package diff

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/h2scope/h2scope/analyze"
)

// Schema names the JSON a Result encodes to.
const Schema = "h2scope.diff/v1"

// Statuses of a finding in a comparison.
const (
	Resolved  = "resolved"  // before only
	New       = "new"       // after only
	Changed   = "changed"   // both, with another severity or key metrics
	Unchanged = "unchanged" // both, alike
)

// Options configure Compare.
type Options struct {
	// Match pairs pools by hand: before pool → after pool, each a server
	// name or "name:port" (as Result.Pools shows them).
	Match map[string]string
}

// Result is a comparison of two sides.
type Result struct {
	// Schema is Schema.
	Schema string `json:"schema"`
	// Before and After name the sides' sources.
	Before string `json:"before"`
	After  string `json:"after"`
	// Findings lists every finding of either side: resolved, new and
	// changed first (by severity), then unchanged.
	Findings []FindingDiff `json:"findings"`
	// Pools compares the pools side by side, in pool order.
	Pools []PoolDiff `json:"pools"`
	// Methods compares the gRPC methods side by side, in method order;
	// absent when neither side has gRPC calls.
	Methods []MethodDiff `json:"grpc_methods,omitempty"`
	// Routes compares the HTTP request latency of each pool by method
	// and path class (the report's http_routes), the pools paired as
	// Pools pairs them, in pool, method and path order (each pool's
	// "(other)" last); absent when neither side has HTTP requests.
	Routes []RouteDiff `json:"http_routes,omitempty"`
}

// RouteDiff is one pool's HTTP requests of one method and path class,
// side by side.
type RouteDiff struct {
	// Pool is the pool as PoolDiff names it; Method and Path the
	// method and path class ("(other)" for the classes past the
	// report's bound).
	Pool   string      `json:"pool"`
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Before *RouteStats `json:"before"`
	After  *RouteStats `json:"after"`
}

// RouteStats are a route's figures on one side.
type RouteStats struct {
	// Requests and Answered sum the report's rows of the route over the
	// pool's clients.
	Requests int `json:"requests"`
	Answered int `json:"answered"`
	// P50MS and P99MS are the request latency of the client row with
	// the most answered requests (the analysis's estimates, within 1%);
	// nil when none was answered.
	P50MS *float64 `json:"p50_ms,omitempty"`
	P99MS *float64 `json:"p99_ms,omitempty"`
	// best is the answered requests of the row the percentiles are from.
	best int
}

// MethodDiff is one gRPC method side by side.
type MethodDiff struct {
	// Method is "/package.Service/Name" ("" for calls whose headers were
	// not captured).
	Method string       `json:"method"`
	Before *MethodStats `json:"before"`
	After  *MethodStats `json:"after"`
}

// MethodStats are a gRPC method's figures on one side, from the report's
// gRPC methods table.
type MethodStats struct {
	// Calls counts the calls, Failed those whose status was not OK
	// (unknown included).
	Calls  int `json:"calls"`
	Failed int `json:"failed"`
	// P50MS and P99MS are the call duration percentiles.
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
}

// methods returns a side's gRPC methods by name.
func methods(s *Side) map[string]*MethodStats {
	out := map[string]*MethodStats{}
	for _, r := range s.Tables.GRPCMethods {
		m := &MethodStats{Calls: r.Calls, P50MS: r.P50MS, P99MS: r.P99MS}
		for st, n := range r.Statuses {
			if st != "OK" {
				m.Failed += n
			}
		}
		out[r.Method] = m
	}
	return out
}

// FindingDiff is one finding compared.
type FindingDiff struct {
	// Kind and Cause (empty when the finding has none) are what matched
	// it, with Pool.
	Kind  string `json:"kind"`
	Cause string `json:"cause,omitempty"`
	// Pool is the pool ("name:port") the finding is about, "old → new"
	// when the pools were paired under different names; empty when
	// unknown.
	Pool string `json:"pool,omitempty"`
	// Status is resolved, new, changed or unchanged.
	Status string `json:"status"`
	// Before and After are the finding on each side, nil where absent.
	Before *Finding `json:"before"`
	After  *Finding `json:"after"`
	// Changes says what changed: severity, key metrics ("requests_per_conn 1 → 10.7").
	Changes []string `json:"changes,omitempty"`
}

// Worse reports whether the finding is new, or changed to a higher
// severity.
func (d *FindingDiff) Worse() bool {
	return d.Status == New || d.Status == Changed && d.After.Severity > d.Before.Severity
}

// Severity is the finding's severity after, or before when resolved.
func (d *FindingDiff) Severity() analyze.Severity {
	if d.After != nil {
		return d.After.Severity
	}
	return d.Before.Severity
}

// PoolDiff is one pool side by side.
type PoolDiff struct {
	// Pool is "name:port", or "old → new" when paired under different
	// names.
	Pool   string     `json:"pool"`
	Before *PoolStats `json:"before"`
	After  *PoolStats `json:"after"`
}

// PoolStats are a pool's figures on one side, over all its clients.
type PoolStats struct {
	// Connections, Requests and RequestsPerConn are the pool table's
	// (requests per connection over the connections whose requests are
	// known).
	Connections     int      `json:"connections"`
	Requests        int      `json:"requests"`
	RequestsPerConn *float64 `json:"requests_per_conn"`
	// ConnsPerSecond is the rate of new connections, from the side's
	// reconnect_churn finding on the pool; nil when it has none.
	ConnsPerSecond *float64 `json:"conns_per_s,omitempty"`
	// Handshakes, Offered and Accepted are the TLS resumption funnel's;
	// ResumptionRate is Accepted over Offered, nil when nothing was
	// offered.
	Handshakes     int      `json:"tls_handshakes,omitempty"`
	Offered        int      `json:"resumption_offered,omitempty"`
	Accepted       int      `json:"resumption_accepted,omitempty"`
	ResumptionRate *float64 `json:"resumption_rate"`
	// HandshakeP50MS and HandshakeP99MS are the TCP handshake round
	// trips of the pool's busiest client row (the analysis's estimates);
	// nil when none was seen.
	HandshakeP50MS *float64 `json:"handshake_p50_ms,omitempty"`
	HandshakeP99MS *float64 `json:"handshake_p99_ms,omitempty"`
	// TLSHandshakeP50MS and TLSHandshakeP99MS are the TLS handshake
	// times (ClientHello to the client's Finished) of the pool's busiest
	// client row with TLS handshakes (the analysis's estimates); nil
	// when none was seen.
	TLSHandshakeP50MS *float64 `json:"tls_handshake_p50_ms,omitempty"`
	TLSHandshakeP99MS *float64 `json:"tls_handshake_p99_ms,omitempty"`
	// TimeWait says which side holds TIME_WAIT: the one that closed
	// most connections first ("client", "server"; "" when none closed).
	TimeWait string `json:"time_wait,omitempty"`
	// FailedRequests and ErrorRate are from the side's request_errors
	// finding on the pool (failed over requests); nil without one.
	FailedRequests *float64 `json:"failed_requests,omitempty"`
	ErrorRate      *float64 `json:"error_rate,omitempty"`
	// ResetsPer1000 counts the streams reset per 1,000 requests, by the
	// cause of the side's rst_storm findings on the pool.
	ResetsPer1000 map[string]float64 `json:"resets_per_1000,omitempty"`
	// StalledMS sums the stalled time of the side's window_stall
	// findings on the pool.
	StalledMS *float64 `json:"stalled_ms,omitempty"`
	// known sums the connections whose requests are known;
	// closedBy[0] and [1] the connections the client and the server
	// closed first.
	known    int
	closedBy [2]int
	rttConns int // the connections of the row the handshake figures are from
	tlsConns int // the connections of the row the TLS handshake figures are from
}

// poolKey is a pool's name: the server name (SNI, else Host or
// :authority, else the server's address) and the server's port.
func poolKey(name, server string) string {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		host, port = server, ""
	}
	if name != "" {
		if h, _, err := net.SplitHostPort(name); err == nil {
			name = h
		}
		host = name
	}
	if port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}

// hostOf is the name part of a pool key.
func hostOf(key string) string {
	if h, _, err := net.SplitHostPort(key); err == nil {
		return h
	}
	return key
}

// pools returns a side's pools by key, and the key of each server
// address.
func pools(s *Side) (map[string]*PoolStats, map[string]string) {
	out := map[string]*PoolStats{}
	byServer := map[string]string{}
	get := func(k string) *PoolStats {
		p := out[k]
		if p == nil {
			p = &PoolStats{}
			out[k] = p
		}
		return p
	}
	for _, r := range s.Tables.Pools {
		k := poolKey(r.Name, r.Server)
		byServer[r.Server] = k
		p := get(k)
		p.Connections += r.Connections
		p.Requests += r.Requests
		p.known += r.Connections - r.UnknownConns
		p.closedBy[0] += r.ClosedByClient
		p.closedBy[1] += r.ClosedByServer
		if r.HandshakeP50MS > 0 && r.Connections > p.rttConns {
			p50, p99 := r.HandshakeP50MS, r.HandshakeP99MS
			p.HandshakeP50MS, p.HandshakeP99MS, p.rttConns = &p50, &p99, r.Connections
		}
		if r.TLSHandshakeP50MS > 0 && r.Connections > p.tlsConns {
			p50, p99 := r.TLSHandshakeP50MS, r.TLSHandshakeP99MS
			p.TLSHandshakeP50MS, p.TLSHandshakeP99MS, p.tlsConns = &p50, &p99, r.Connections
		}
	}
	for _, r := range s.Tables.Resumption {
		k := poolKey(r.SNI, r.Server)
		if _, ok := byServer[r.Server]; !ok {
			byServer[r.Server] = k
		}
		p := get(k)
		p.Handshakes += r.Handshakes
		p.Offered += r.Offered
		p.Accepted += r.Accepted
	}
	for _, p := range out {
		switch {
		case p.closedBy[0] > 0 && p.closedBy[0] >= p.closedBy[1]:
			p.TimeWait = "client"
		case p.closedBy[1] > 0:
			p.TimeWait = "server"
		}
		if p.known > 0 {
			v := round(float64(p.Requests) / float64(p.known))
			p.RequestsPerConn = &v
		}
		if p.Offered > 0 {
			v := round(float64(p.Accepted) / float64(p.Offered))
			p.ResumptionRate = &v
		}
	}
	return out, byServer
}

// round keeps three decimals.
func round(v float64) float64 { return math.Round(v*1000) / 1000 }

// findingPool is the key of the pool a finding is about: that of its
// first connection's server; "" when the side does not hold it.
func findingPool(s *Side, f *Finding, byServer map[string]string) string {
	for _, id := range f.Connections {
		c, ok := s.conns[id]
		if !ok {
			continue
		}
		if k, ok := byServer[c.Server]; ok {
			return k
		}
		sni := ""
		if c.TLS != nil {
			sni = c.TLS.SNI
		}
		return poolKey(sni, c.Server)
	}
	return ""
}

// pairPools pairs before pools with after pools: by hand (opts.Match),
// then by equal keys, then by equal server names when each side has one
// pool left of that name. It returns before key → after key.
func pairPools(before, after map[string]*PoolStats, match map[string]string) map[string]string {
	m := map[string]string{}
	taken := map[string]bool{}
	bkeys := slices.Sorted(maps.Keys(before))
	akeys := slices.Sorted(maps.Keys(after))
	find := func(keys []string, name string) string {
		if slices.Contains(keys, name) {
			return name
		}
		for _, k := range keys {
			if hostOf(k) == name {
				return k
			}
		}
		return ""
	}
	for old, nw := range match {
		b, a := find(bkeys, old), find(akeys, nw)
		if b != "" && a != "" && !taken[a] {
			m[b], taken[a] = a, true
		}
	}
	for _, b := range bkeys {
		if _, ok := m[b]; !ok && after[b] != nil && !taken[b] {
			m[b], taken[b] = b, true
		}
	}
	// By name alone, when unambiguous on both sides.
	count := func(keys []string, host string, skip func(string) bool) (n int, last string) {
		for _, k := range keys {
			if hostOf(k) == host && !skip(k) {
				n, last = n+1, k
			}
		}
		return n, last
	}
	for _, b := range bkeys {
		if _, ok := m[b]; ok {
			continue
		}
		nb, _ := count(bkeys, hostOf(b), func(k string) bool { _, ok := m[k]; return ok })
		na, a := count(akeys, hostOf(b), func(k string) bool { return taken[k] })
		if nb == 1 && na == 1 {
			m[b], taken[a] = a, true
		}
	}
	return m
}

// label names a pool pair.
func label(b, a string) string {
	switch {
	case b == a, a == "":
		return b
	case b == "":
		return a
	}
	return b + " → " + a
}

// Compare compares before with after.
func Compare(before, after *Side, opts Options) *Result {
	res := &Result{Schema: Schema, Before: before.Source, After: after.Source, Findings: []FindingDiff{}, Pools: []PoolDiff{}}
	bp, bsrv := pools(before)
	ap, asrv := pools(after)
	pair := pairPools(bp, ap, opts.Match)
	// Rates from the churn findings.
	churnRate := func(s *Side, ps map[string]*PoolStats, srv map[string]string) {
		for i := range s.Findings {
			f := &s.Findings[i]
			if f.Kind != analyze.KindReconnectChurn {
				continue
			}
			if v, ok := f.Metrics["conns_per_s"].(float64); ok {
				if p := ps[findingPool(s, f, srv)]; p != nil && p.ConnsPerSecond == nil {
					p.ConnsPerSecond = &v
				}
			}
		}
	}
	churnRate(before, bp, bsrv)
	churnRate(after, ap, asrv)
	findingFigures(before, bp, bsrv)
	findingFigures(after, ap, asrv)

	// Pools side by side.
	inverse := map[string]string{}
	for b, a := range pair {
		inverse[a] = b
	}
	for _, b := range slices.Sorted(maps.Keys(bp)) {
		a := pair[b]
		res.Pools = append(res.Pools, PoolDiff{Pool: label(b, a), Before: bp[b], After: ap[a]})
	}
	for _, a := range slices.Sorted(maps.Keys(ap)) {
		if _, ok := inverse[a]; !ok {
			res.Pools = append(res.Pools, PoolDiff{Pool: a, After: ap[a]})
		}
	}
	slices.SortStableFunc(res.Pools, func(x, y PoolDiff) int { return strings.Compare(x.Pool, y.Pool) })

	bm, am := methods(before), methods(after)
	names := slices.Sorted(maps.Keys(bm))
	for n := range am {
		if bm[n] == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		res.Methods = append(res.Methods, MethodDiff{Method: n, Before: bm[n], After: am[n]})
	}
	res.Routes = compareRoutes(before, after, pair, inverse)

	// Findings: matched by kind, cause and pool (before's pool in
	// after's names), in report order within each.
	keyOf := func(f *Finding, pool string) string { return f.Kind + "\x00" + f.Cause + "\x00" + pool }
	afters := map[string][]int{}
	apool := make([]string, len(after.Findings))
	for i := range after.Findings {
		f := &after.Findings[i]
		apool[i] = findingPool(after, f, asrv)
		k := keyOf(f, apool[i])
		afters[k] = append(afters[k], i)
	}
	used := make([]bool, len(after.Findings))
	for i := range before.Findings {
		f := &before.Findings[i]
		bpool := findingPool(before, f, bsrv)
		apl, paired := pair[bpool]
		if !paired {
			apl = "\x01" + bpool // matches no after pool
		}
		d := FindingDiff{Kind: f.Kind, Cause: f.Cause, Pool: label(bpool, apl), Before: f}
		if !paired {
			d.Pool = bpool
		}
		if q := afters[keyOf(f, apl)]; len(q) > 0 {
			j := q[0]
			afters[keyOf(f, apl)] = q[1:]
			used[j] = true
			d.After = &after.Findings[j]
			d.Changes = changes(d.Before, d.After)
			d.Status = Unchanged
			if len(d.Changes) > 0 {
				d.Status = Changed
			}
		} else {
			d.Status = Resolved
		}
		res.Findings = append(res.Findings, d)
	}
	for j := range after.Findings {
		if !used[j] {
			pool := apool[j]
			if b, ok := inverse[pool]; ok {
				pool = label(b, pool)
			}
			res.Findings = append(res.Findings, FindingDiff{Kind: after.Findings[j].Kind, Cause: after.Findings[j].Cause, Pool: pool, Status: New, After: &after.Findings[j]})
		}
	}
	rank := map[string]int{New: 0, Changed: 1, Resolved: 2, Unchanged: 3}
	slices.SortStableFunc(res.Findings, func(x, y FindingDiff) int {
		return cmp.Or(cmp.Compare(rank[x.Status], rank[y.Status]), cmp.Compare(y.Severity(), x.Severity()),
			strings.Compare(x.Kind, y.Kind), strings.Compare(x.Pool, y.Pool))
	})
	return res
}

// changeRatio is the relative change of a metric that counts as a
// change of the finding.
const changeRatio = 0.2

// ignoredMetrics are metrics that change from run to run without saying
// anything about the finding (ephemeral ports, bounds of evidence).
var ignoredMetrics = map[string]bool{"client_port_min": true, "client_port_max": true, "evidence_omitted": true}

// changes says how a matched finding changed: its severity, and its
// numeric metrics that moved by more than changeRatio.
func changes(b, a *Finding) []string {
	var out []string
	if b.Severity != a.Severity {
		out = append(out, fmt.Sprintf("severity %s → %s", b.Severity, a.Severity))
	}
	keys := make([]string, 0, len(b.Metrics))
	for k := range b.Metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if ignoredMetrics[k] {
			continue
		}
		x, ok1 := b.Metrics[k].(float64)
		y, ok2 := a.Metrics[k].(float64)
		if !ok1 || !ok2 || x == y {
			continue
		}
		if math.Abs(x-y) > changeRatio*math.Max(math.Abs(x), math.Abs(y)) {
			out = append(out, fmt.Sprintf("%s %s → %s", k, num(x), num(y)))
		}
	}
	return out
}

// num formats a metric: integers as such, others with up to 3 decimals.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// FailOn reports whether a new or worsened finding reaches sev.
func (r *Result) FailOn(sev analyze.Severity) bool {
	for i := range r.Findings {
		d := &r.Findings[i]
		if d.Worse() && d.After.Severity >= sev {
			return true
		}
	}
	return false
}

// findingFigures adds to each pool of s the figures its findings give:
// failed requests and the error rate (request_errors), streams reset per
// 1,000 requests by cause (rst_storm), stalled time (window_stall).
func findingFigures(s *Side, ps map[string]*PoolStats, srv map[string]string) {
	metric := func(f *Finding, name string) (float64, bool) {
		switch v := f.Metrics[name].(type) {
		case float64:
			return v, true
		case int:
			return float64(v), true
		case int64:
			return float64(v), true
		case uint64:
			return float64(v), true
		}
		return 0, false
	}
	for i := range s.Findings {
		f := &s.Findings[i]
		p := ps[findingPool(s, f, srv)]
		if p == nil {
			continue
		}
		switch f.Kind {
		case analyze.KindRequestErrors:
			failed, ok1 := metric(f, "failed")
			reqs, ok2 := metric(f, "requests")
			if ok1 && ok2 && reqs > 0 {
				if p.FailedRequests != nil {
					failed += *p.FailedRequests
				}
				rate := round(failed / reqs)
				p.FailedRequests, p.ErrorRate = &failed, &rate
			}
		case analyze.KindRSTStorm:
			n, ok := metric(f, "streams_reset")
			if ok && p.Requests > 0 {
				if p.ResetsPer1000 == nil {
					p.ResetsPer1000 = map[string]float64{}
				}
				p.ResetsPer1000[f.Cause] = round(p.ResetsPer1000[f.Cause] + 1000*n/float64(p.Requests))
			}
		case analyze.KindWindowStall:
			ms, ok := metric(f, "total_stall_ms")
			if ok {
				if p.StalledMS != nil {
					ms += *p.StalledMS
				}
				v := round(ms)
				p.StalledMS = &v
			}
		}
	}
}

// routeKey is a route: its pool's key, method and path class.
type routeKey struct{ pool, method, path string }

// routes returns a side's routes: each pool's (poolKey) rows summed over
// its clients, the percentiles of the row with the most answered
// requests.
func routes(s *Side) map[routeKey]*RouteStats {
	out := map[routeKey]*RouteStats{}
	for _, r := range s.Tables.Routes {
		k := routeKey{poolKey(r.Name, r.Server), r.Method, r.Path}
		st := out[k]
		if st == nil {
			st = &RouteStats{}
			out[k] = st
		}
		st.Requests += r.Requests
		st.Answered += r.Answered
		if r.Answered > st.best {
			p50, p99 := r.P50MS, r.P99MS
			st.P50MS, st.P99MS, st.best = &p50, &p99, r.Answered
		}
	}
	return out
}

// compareRoutes pairs the routes of paired pools (pair: before key →
// after key; inverse the other way) by method and path class.
func compareRoutes(before, after *Side, pair, inverse map[string]string) []RouteDiff {
	br, ar := routes(before), routes(after)
	var out []RouteDiff
	for k, b := range br {
		d := RouteDiff{Pool: k.pool, Method: k.method, Path: k.path, Before: b}
		if a, ok := pair[k.pool]; ok {
			d.Pool = label(k.pool, a)
			d.After = ar[routeKey{a, k.method, k.path}]
		}
		out = append(out, d)
	}
	for k, a := range ar {
		if b, ok := inverse[k.pool]; ok {
			if br[routeKey{b, k.method, k.path}] != nil {
				continue // paired above
			}
			out = append(out, RouteDiff{Pool: label(b, k.pool), Method: k.method, Path: k.path, After: a})
			continue
		}
		out = append(out, RouteDiff{Pool: k.pool, Method: k.method, Path: k.path, After: a})
	}
	other := func(d RouteDiff) int {
		if d.Path == analyze.OtherRoute {
			return 1
		}
		return 0
	}
	slices.SortFunc(out, func(x, y RouteDiff) int {
		return cmp.Or(strings.Compare(x.Pool, y.Pool), cmp.Compare(other(x), other(y)),
			strings.Compare(x.Method, y.Method), strings.Compare(x.Path, y.Path))
	})
	return out
}
