package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/h2scope/h2scope/dissect/event"
)

// RequestErrorsConfig holds request_errors' thresholds.
type RequestErrorsConfig struct {
	// MinErrors is the least number of failed requests of a pool that
	// makes a finding; MinShare the least share of its requests they
	// must be; CriticalShare the share from which it is critical.
	MinErrors     int
	MinShare      float64
	CriticalShare float64
}

func defaultRequestErrors() RequestErrorsConfig {
	return RequestErrorsConfig{MinErrors: 5, MinShare: 0.05, CriticalShare: 0.25}
}

func (c *RequestErrorsConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.MinErrors, "errors-min", c.MinErrors, "request_errors: failed requests of one client and server that make a finding")
	fs.Float64Var(&c.MinShare, "errors-min-share", c.MinShare, "request_errors: least share of the requests that failed")
	fs.Float64Var(&c.CriticalShare, "errors-critical-share", c.CriticalShare, "request_errors: share of failed requests that makes the finding critical")
}

// Causes of request_errors: the class of most failures.
const (
	CauseUnavailable = "unavailable"  // HTTP 502, 503; gRPC UNAVAILABLE
	CauseOverload    = "overload"     // HTTP 429; gRPC RESOURCE_EXHAUSTED
	CauseDeadline    = "deadline"     // HTTP 504; gRPC DEADLINE_EXCEEDED sent by the server
	CauseServerError = "server_error" // other HTTP 5xx; gRPC INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS
	CauseClientError = "client_error" // gRPC INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ... (info)
)

// errClasses lists the causes in the order of errClass values.
var errClasses = [...]string{CauseUnavailable, CauseOverload, CauseDeadline, CauseServerError, CauseClientError}

// grpcClass maps gRPC statuses (by name) to their class; OK, CANCELLED
// (the client's own doing) and unknown names have none.
var grpcClass = map[string]int{
	"UNAVAILABLE": 0, "RESOURCE_EXHAUSTED": 1, "DEADLINE_EXCEEDED": 2,
	"INTERNAL": 3, "UNKNOWN": 3, "UNIMPLEMENTED": 3, "DATA_LOSS": 3,
	"INVALID_ARGUMENT": 4, "NOT_FOUND": 4, "ALREADY_EXISTS": 4, "PERMISSION_DENIED": 4,
	"UNAUTHENTICATED": 4, "FAILED_PRECONDITION": 4, "ABORTED": 4, "OUT_OF_RANGE": 4,
}

// httpClass returns the class of an HTTP status, -1 for no failure
// (4xx other than 429 are the client's business, not the service's).
func httpClass(status int) int {
	switch {
	case status == 502 || status == 503:
		return 0
	case status == 429:
		return 1
	case status == 504:
		return 2
	case status >= 500 && status < 600:
		return 3
	}
	return -1
}

// requestErrors reports the requests a server failed: HTTP 5xx and 429,
// and gRPC calls that ended with a non-OK status the server sent.
//
// Signal: per client, server and name, every HTTP/1.x and HTTP/2
// response's status and every gRPC call's status, by class (the cause of
// the finding is that of most failures, see errClasses); per method
// (gRPC method, or HTTP method and path without its query) the failures
// and their statuses. Calls the client cancelled itself (CANCELLED) are
// rst_storm's, not counted here; calls whose deadline fired at the
// client (it resets them with CANCEL once grpc-timeout has passed) failed
// DEADLINE_EXCEEDED and count, the rst_storm finding of their resets
// being related.
//
// Thresholds: MinErrors failures making MinShare of the pool's requests
// are a warning, CriticalShare a critical; failures mostly of the client
// class (INVALID_ARGUMENT, NOT_FOUND, ...) are info.
//
// Metrics: requests, failed, fail_ratio, by_class, statuses, methods
// (the busiest failing ones).
type requestErrors struct {
	cfg    RequestErrorsConfig
	groups map[findingPool]*errGroup
	last   lastEntry[findingPool, errGroup]
	// label is where observe writes a request's method label, so that
	// one already counted, or counted as "other", makes no string.
	label []byte
}

// errGroup is one pool's tally.
type errGroup struct {
	requests int
	classes  [len(errClasses)]int
	statuses map[string]int // at most maxErrLabels, then "other"
	methods  errMethods
	// maxStatus caches the largest label of statuses once it is full
	// ("" until known; see addLabel).
	maxStatus string
	samples   []errSample // the lowest (connection, frame) failures, at most maxEvidence
}

// maxErrLabels bounds the statuses and methods a pool counts apart.
const maxErrLabels = 32

// errSample is one failed request, for evidence.
type errSample struct {
	conn    event.ConnID
	stream  uint32
	ref     event.Ref
	what    string
	reasons connReasons
}

func (d *requestErrors) observe(c *Conn) {
	var g *errGroup
	group := func() *errGroup {
		if g != nil {
			return g
		}
		g = poolEntry(&d.groups, &d.last, poolOf(c), nil, newErrGroup)
		return g
	}
	var grpcStreams map[uint32]bool
	if len(c.Records.Calls) > 0 {
		grpcStreams = make(map[uint32]bool, len(c.Records.Calls))
		for i := range c.Records.Calls {
			call := &c.Records.Calls[i]
			grpcStreams[call.Stream] = true
			// The client's own resets are its choice (CANCELLED), except
			// when its deadline fired: the call failed DEADLINE_EXCEEDED
			// for the client (the dissector infers it from grpc-timeout),
			// whether the server's status or the client's CANCEL ended it.
			if call.ClientStatus == "" || call.ResetBy == "client" && call.ClientStatus != "DEADLINE_EXCEEDED" {
				continue
			}
			class, failed := grpcClass[call.ClientStatus]
			g := group()
			countMethod(g, call.Method, failed)
			if failed {
				g.fail(c, call.ClientStatus, class, errSample{conn: c.ID(), stream: call.Stream, ref: call.End,
					what: fmt.Sprintf("gRPC %s ends %s", call.Method, call.ClientStatus)})
			}
		}
	}
	for i := range c.Records.Exchanges {
		x := &c.Records.Exchanges[i]
		if x.Status == 0 || x.Proto == event.ProtoHTTP2 && grpcStreams[x.Stream] {
			continue
		}
		class := httpClass(x.Status)
		d.label = append(append(append(d.label[:0], x.Method...), ' '), clipString(pathOnly(x.Path), 60)...)
		g := group()
		countMethod(g, d.label, class >= 0)
		if class < 0 {
			continue
		}
		method := string(d.label)
		ref := x.Response
		if ref == nil {
			ref = x.ResponseEnd
		}
		if ref == nil {
			ref = x.Start()
		}
		g.fail(c, strconv.Itoa(x.Status), class, errSample{conn: c.ID(), stream: x.Stream, ref: *ref,
			what: fmt.Sprintf("%d response to %s", x.Status, method)})
	}
}

// pathOnly returns a request target without its query.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// countMethod counts one request of g to method, failed or not; method
// may be a buffer reused after the call (addMethod).
func countMethod[S ~string | ~[]byte](g *errGroup, method S, failed bool) {
	g.requests++
	addMethod(&g.methods, method, failedPair(failed))
}

// failedPair is the counts of one request: [requests, failures].
func failedPair(failed bool) [2]int {
	if failed {
		return [2]int{1, 1}
	}
	return [2]int{1, 0}
}

// errMethods counts requests and failures per method label, as addLabel
// does in a map: at most maxErrLabels labels apart, the lexically
// smallest whatever order they came in, and the rest in other. The
// labels are kept in order, so that the largest is the last and a label
// past the bound costs a binary search, not a scan.
type errMethods struct {
	labels []errLabel // in increasing name order
	other  [2]int
}

// errLabel is one method label's [requests, failures].
type errLabel struct {
	name string
	n    [2]int
}

// addMethod adds n to label l's counts. l may be a buffer reused after
// the call: it is made a string only when kept as a new label.
func addMethod[S ~string | ~[]byte](m *errMethods, l S, n [2]int) {
	if string(l) == otherLabel {
		m.other = addPair(m.other, n)
		return
	}
	if len(m.labels) == maxErrLabels && m.labels[maxErrLabels-1].name < string(l) {
		// Above the largest label kept, as most are once the bound is
		// reached where paths carry ids: one comparison, not a search.
		m.other = addPair(m.other, n)
		return
	}
	lo, hi := 0, len(m.labels)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if m.labels[h].name < string(l) {
			lo = h + 1
		} else {
			hi = h
		}
	}
	switch last := len(m.labels) - 1; {
	case lo <= last && m.labels[lo].name == string(l):
		m.labels[lo].n = addPair(m.labels[lo].n, n)
	case len(m.labels) < maxErrLabels:
		m.labels = slices.Insert(m.labels, lo, errLabel{string(l), n})
	case lo > last:
		m.other = addPair(m.other, n) // above the largest label kept
	default:
		// l takes the largest one's place, which joins "other".
		m.other = addPair(m.other, m.labels[last].n)
		copy(m.labels[lo+1:], m.labels[lo:last])
		m.labels[lo] = errLabel{string(l), n}
	}
}

// fail counts a failed request of c, answered with status (of class),
// and keeps it as evidence if it is among the first.
func (g *errGroup) fail(c *Conn, status string, class int, s errSample) {
	g.classes[class]++
	addLabel(g.statuses, status, 1, addInt, &g.maxStatus)
	s.reasons = reasonsOf(c)
	g.sample(s)
}

// addLabel adds v to m's count of label l. m counts at most
// maxErrLabels labels apart and the rest as "other": the lexically
// smallest ones, whatever order they came in, so that counts merge
// exactly. *largest caches m's largest label once m is full ("" when not
// known), so that a label past the bound costs a comparison, not a scan.
func addLabel[V any](m map[string]V, l string, v V, add func(V, V) V, largest *string) {
	if n, ok := m[l]; ok || l == otherLabel {
		m[l] = add(n, v)
		return
	}
	if countLabels(m) < maxErrLabels {
		m[l] = v
		*largest = ""
		return
	}
	if *largest == "" {
		*largest = maxLabel(m)
	}
	if l > *largest {
		m[otherLabel] = add(m[otherLabel], v)
		return
	}
	// l takes the largest one's place, which joins "other".
	m[l] = v
	m[otherLabel] = add(m[otherLabel], m[*largest])
	delete(m, *largest)
	*largest = maxLabel(m)
}

// maxLabel returns m's lexically largest label other than otherLabel.
func maxLabel[V any](m map[string]V) string {
	var largest string
	for k := range m {
		if k != otherLabel && k > largest {
			largest = k
		}
	}
	return largest
}

// otherLabel counts the labels past maxErrLabels.
const otherLabel = "other"

// countLabels counts m's labels other than otherLabel.
func countLabels[V any](m map[string]V) int {
	if _, ok := m[otherLabel]; ok {
		return len(m) - 1
	}
	return len(m)
}

func addInt(a, b int) int { return a + b }

func addPair(a, b [2]int) [2]int { return [2]int{a[0] + b[0], a[1] + b[1]} }

// sample keeps s if it is among the maxEvidence lowest (connection,
// frame) failures.
func (g *errGroup) sample(s errSample) {
	less := func(a, b errSample) int {
		return cmp.Or(cmp.Compare(a.conn, b.conn), cmp.Compare(a.ref.Frame, b.ref.Frame))
	}
	i, _ := slices.BinarySearchFunc(g.samples, s, less)
	if i >= maxEvidence {
		return
	}
	g.samples = slices.Insert(g.samples, i, s)
	if len(g.samples) > maxEvidence {
		g.samples = g.samples[:maxEvidence]
	}
}

func (d *requestErrors) final(*Conn) {}

func newErrGroup(findingPool) *errGroup { return &errGroup{statuses: map[string]int{}} }

func (d *requestErrors) merge(o detector) {
	mergePools(&d.groups, o.(*requestErrors).groups, &d.last, findingPool.compare, newErrGroup, (*errGroup).merge)
}

// merge adds og's counts and samples, og being over other connections.
func (g *errGroup) merge(og *errGroup, _ findingPool, _ bool) {
	g.requests += og.requests
	for i, n := range og.classes {
		g.classes[i] += n
	}
	for _, s := range sortedKeys(og.statuses) {
		addLabel(g.statuses, s, og.statuses[s], addInt, &g.maxStatus)
	}
	for _, l := range og.methods.labels {
		addMethod(&g.methods, l.name, l.n)
	}
	g.methods.other = addPair(g.methods.other, og.methods.other)
	for _, s := range og.samples {
		g.sample(s)
	}
}

func (d *requestErrors) findings(in *capture) []Finding {
	var out []Finding
	for _, k := range sortedPoolKeysOf(d.groups) {
		if f, ok := errFinding(in, d.cfg, k, d.groups[k]); ok {
			out = append(out, f)
		}
	}
	return out
}

// errFinding builds the finding of one pool, if its failures are one.
func errFinding(in *capture, cfg RequestErrorsConfig, k findingPool, g *errGroup) (Finding, bool) {
	failed, top := 0, 0
	for i, n := range g.classes {
		failed += n
		if n > g.classes[top] {
			top = i
		}
	}
	share := float64(failed) / float64(max(g.requests, 1))
	if failed < max(cfg.MinErrors, 1) || share < cfg.MinShare {
		return Finding{}, false
	}
	f := Finding{Kind: KindRequestErrors, Cause: errClasses[top], Severity: Warning}
	switch {
	case f.Cause == CauseClientError:
		f.Severity = Info
	case share >= cfg.CriticalShare:
		f.Severity = Critical
	}
	byClass := map[string]int{}
	for i, n := range g.classes {
		if n > 0 {
			byClass[errClasses[i]] = n
		}
	}
	type method struct {
		name    string
		reqs, n int
	}
	var ms []method
	for _, l := range g.methods.labels {
		if l.n[1] > 0 {
			ms = append(ms, method{l.name, l.n[0], l.n[1]})
		}
	}
	if n := g.methods.other; n[1] > 0 {
		ms = append(ms, method{otherLabel, n[0], n[1]})
	}
	slices.SortFunc(ms, func(a, b method) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.name, b.name)) })
	var parts []string
	methods := map[string]string{}
	for i, m := range ms {
		if i < 3 {
			parts = append(parts, fmt.Sprintf("%s %d of %d", m.name, m.n, m.reqs))
		}
		if i < 10 {
			methods[m.name] = fmt.Sprintf("%d of %d", m.n, m.reqs)
		}
	}
	f.Metrics = map[string]any{
		"requests":   g.requests,
		"failed":     failed,
		"fail_ratio": roundTo(share, 3),
		"by_class":   byClass,
		"statuses":   g.statuses,
		"methods":    methods,
	}
	dest := k.dest()
	var st []string
	for _, s := range sortedKeys(g.statuses) {
		st = append(st, fmt.Sprintf("%s %d", s, g.statuses[s]))
	}
	f.Summary = fmt.Sprintf("%d of %d requests from %s to %s failed (%s), mostly %s: %s",
		failed, g.requests, clientString(k.client), dest, strings.Join(st, ", "), strings.ReplaceAll(f.Cause, "_", " "), strings.Join(parts, "; "))
	var reasons []connReasons
	for _, s := range g.samples {
		reasons = append(reasons, s.reasons)
		f.Connections = append(f.Connections, s.conn)
		f.Evidence = append(f.Evidence, evidence(s.conn, s.stream, s.ref, s.what))
	}
	f.Confidence = confidenceOf(in, reasons...)
	f.Remedy = errRemedy[f.Cause]
	return f, true
}

var errRemedy = map[string]string{
	CauseUnavailable: "The service or its upstream was unavailable (HTTP 502/503, gRPC UNAVAILABLE): check the upstream's health " +
		"and the load balancer's targets, connection limits and circuit breakers (nginx upstream max_conns, Envoy " +
		"circuit_breakers), and deploys that drain badly; let clients retry with backoff (gRPC retry policy on UNAVAILABLE).",
	CauseOverload: "Requests were rate-limited or ran out of a resource (HTTP 429, gRPC RESOURCE_EXHAUSTED): lower the " +
		"client's rate and honour Retry-After, or raise the limit (nginx limit_req, Envoy local_ratelimit, grpc-go " +
		"MaxRecvMsgSize and server concurrency limits) or the capacity behind it.",
	CauseDeadline: "Requests ran past a deadline: the server's own timeout (HTTP 504, gRPC DEADLINE_EXCEEDED from the " +
		"server) or the client's (its grpc-timeout passed and it reset the call): the handler or an upstream is slower " +
		"than the deadline (nginx proxy_read_timeout, Envoy route timeout, the propagated grpc-timeout, the client's " +
		"context deadline); find the slow dependency, or align the timeouts end to end (a client deadline shorter than " +
		"the server's normal latency fails every slow call).",
	CauseServerError: "The server failed requests (HTTP 500 and other 5xx, gRPC INTERNAL, UNKNOWN, DATA_LOSS): look at its " +
		"logs for the methods named; UNIMPLEMENTED or 501 means the client calls what this server does not serve " +
		"(version skew between client and server).",
	CauseClientError: "The server turned requests down as the client's fault (gRPC INVALID_ARGUMENT, NOT_FOUND, " +
		"PERMISSION_DENIED, UNAUTHENTICATED, ...): an application matter; check the client's requests and credentials.",
}
