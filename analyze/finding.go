package analyze

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// Finding kinds, as the design fixes them.
const (
	KindRSTStorm          = "rst_storm"
	KindResumptionFailure = "resumption_failure"
	KindReconnectChurn    = "reconnect_churn"
	KindWindowStall       = "window_stall"
	KindGoAway            = "goaway"
	KindKeepaliveMismatch = "keepalive_mismatch"
	KindHandshakeLatency  = "handshake_latency"
	KindSYNRetransmit     = "syn_retransmit"
	KindConnectionLost    = "connection_lost"
	KindRequestErrors     = "request_errors"
	KindPacketLoss        = "packet_loss"
	KindProtocolAbuse     = "protocol_abuse"
)

// Kinds lists every finding kind.
var Kinds = []string{
	KindRSTStorm, KindResumptionFailure, KindReconnectChurn, KindWindowStall,
	KindGoAway, KindKeepaliveMismatch, KindHandshakeLatency, KindSYNRetransmit,
	KindConnectionLost, KindRequestErrors, KindPacketLoss, KindProtocolAbuse,
}

// Severity ranks findings. A healthy capture yields nothing above Info.
type Severity int

// Severities, in increasing order.
const (
	Info Severity = iota
	Warning
	Critical
)

var severityNames = [...]string{"info", "warning", "critical"}

// String returns "info", "warning" or "critical".
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// ParseSeverity parses "info", "warning" or "critical", in any case
// ("WARNING", "Critical").
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(n, name) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want info, warning or critical)", name)
}

// Evidence points at one frame that shows part of a finding.
type Evidence struct {
	// Frame is the 1-based capture frame number, as Wireshark counts.
	Frame uint64 `json:"frame"`
	// TS is the frame's capture time.
	TS time.Time `json:"ts"`
	// Conn is the connection (Wireshark's tcp.stream).
	Conn event.ConnID `json:"conn"`
	// Stream is the HTTP/2 stream, when the evidence is about one.
	Stream uint32 `json:"stream,omitempty"`
	// What says what the frame shows.
	What string `json:"what"`
	// Filter is a Wireshark display filter that opens the evidence.
	Filter string `json:"filter"`
	// Decisive marks the event that decided the finding (the request
	// sent after the server's close, the close that cut requests in
	// flight); it comes first.
	Decisive bool `json:"decisive,omitempty"`
}

// decisive returns e marked as the finding's decisive event.
func (e Evidence) decisive() Evidence {
	e.Decisive = true
	return e
}

// StreamRef names one HTTP/2 stream of one connection.
type StreamRef struct {
	// Conn is the connection id, Stream the HTTP/2 stream id.
	Conn   event.ConnID `json:"conn"`
	Stream uint32       `json:"stream"`
}

// Confidence says how far a finding can be trusted given the capture.
type Confidence struct {
	// Level is "high", "medium" or "low".
	Level string `json:"level"`
	// Reasons lists what lowers it: packet loss, no handshake seen,
	// window scale unknown, undecryptable TLS, snap length truncation.
	Reasons []string `json:"reasons,omitempty"`
}

// Finding is one diagnosis.
type Finding struct {
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// ID names the finding within its report: its kind and its 1-based
	// rank among the report's findings of that kind, in report order
	// ("reconnect_churn-1"). It is stable for a given capture and
	// configuration, and is what slice --finding takes.
	ID string `json:"id"`
	// Cause says why, as one of the documented causes of its kind (the
	// Cause constants; README, "Findings"): the summary and the remedy
	// follow from it, and the metrics hold the wire facts that decided
	// it. Empty for kinds that have no causes yet.
	Cause string `json:"cause,omitempty"`
	// Related lists the IDs of the findings of other kinds about some of
	// the same connections (the churn that idle closes cause, the lost
	// request a GOAWAY explains), in report order.
	Related []string `json:"related,omitempty"`
	// Severity ranks it: "info", "warning" or "critical".
	Severity Severity `json:"severity"`
	// Summary says in one line what happened, for a person.
	Summary string `json:"summary"`
	// Connections lists the connections involved, in increasing order.
	Connections []event.ConnID `json:"connections"`
	// Streams lists the HTTP/2 streams involved, if any.
	Streams []StreamRef `json:"streams,omitempty"`
	// Evidence lists the frames that show it: the decisive ones first,
	// then in frame order.
	Evidence []Evidence `json:"evidence"`
	// Metrics holds the numbers behind it, by name (durations in
	// milliseconds with an _ms suffix).
	Metrics map[string]any `json:"metrics"`
	// Confidence reflects the capture's quality.
	Confidence Confidence `json:"confidence"`
	// Remedy names the settings to change.
	Remedy string `json:"remedy"`

	// pool is the client, server and name of a finding about one
	// connection (see groupFindings); zero for the others.
	pool findingPool
}

// maxEvidence bounds the evidence items of one finding.
const maxEvidence = 20

// evidence builds an Evidence item for ref on conn (stream 0: the
// connection).
func evidence(conn event.ConnID, stream uint32, ref event.Ref, what string) Evidence {
	return Evidence{Frame: ref.Frame, TS: ref.TS.UTC(), Conn: conn, Stream: stream, What: what, Filter: Filter(conn, stream)}
}

// Filter returns the Wireshark display filter of a connection, or of one
// of its HTTP/2 streams when stream > 0.
func Filter(conn event.ConnID, stream uint32) string {
	if stream > 0 {
		return fmt.Sprintf("tcp.stream eq %d && http2.streamid eq %d", conn, stream)
	}
	return fmt.Sprintf("tcp.stream eq %d", conn)
}

// normalize puts a finding's lists in their canonical order and bounds
// its evidence, so that output is deterministic.
func (f *Finding) normalize() {
	slices.Sort(f.Connections)
	f.Connections = slices.Compact(f.Connections)
	slices.SortFunc(f.Streams, func(a, b StreamRef) int {
		return cmp.Or(cmp.Compare(a.Conn, b.Conn), cmp.Compare(a.Stream, b.Stream))
	})
	f.Streams = slices.Compact(f.Streams)
	slices.SortStableFunc(f.Evidence, func(a, b Evidence) int {
		return cmp.Or(-cmp.Compare(boolInt(a.Decisive), boolInt(b.Decisive)), cmp.Compare(a.Frame, b.Frame))
	})
	if len(f.Evidence) > maxEvidence {
		if f.Metrics == nil {
			f.Metrics = map[string]any{}
		}
		f.Metrics["evidence_omitted"] = len(f.Evidence) - maxEvidence
		f.Evidence = f.Evidence[:maxEvidence]
	}
	if f.Metrics == nil {
		f.Metrics = map[string]any{}
	}
	if f.Connections == nil {
		f.Connections = []event.ConnID{}
	}
	if f.Evidence == nil {
		f.Evidence = []Evidence{}
	}
}

// firstFrame is the frame of a finding's first evidence (0 when none).
func (f *Finding) firstFrame() uint64 {
	if len(f.Evidence) == 0 {
		return 0
	}
	return f.Evidence[0].Frame
}

// sortFindings orders findings by severity (highest first), then kind,
// then first evidence frame, then summary.
func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.firstFrame(), b.firstFrame()),
			strings.Compare(a.Summary, b.Summary),
		)
	})
}

// assignIDs gives each finding of fs, already in report order, its ID:
// KIND-N for the Nth finding of its kind.
func assignIDs(fs []Finding) {
	seen := map[string]int{}
	for i := range fs {
		seen[fs[i].Kind]++
		fs[i].ID = fmt.Sprintf("%s-%d", fs[i].Kind, seen[fs[i].Kind])
	}
}

// findingPool is a finding's client, server and server name: the pool
// the detectors that report per pool key their state by.
type findingPool struct {
	client netip.Addr
	server netip.AddrPort
	name   string
}

// poolOf returns c's pool.
func poolOf(c *Conn) findingPool { return findingPool{c.Client(), c.Server(), c.Authority()} }

func (p findingPool) compare(o findingPool) int {
	return cmp.Or(p.client.Compare(o.client), p.server.Compare(o.server), cmp.Compare(p.name, o.name))
}

// folded returns p with its client folded into anyClient.
func (p findingPool) folded() findingPool {
	p.client = anyClient
	return p
}

// dest names the pool's server for a summary: "ip:port (name)".
func (p findingPool) dest() string {
	d := p.server.String()
	if p.name != "" && p.name != d {
		d += " (" + p.name + ")"
	}
	return d
}

// foldableKey is a key of per-pool state that can fold its client into
// anyClient.
type foldableKey[K any] interface {
	comparable
	folded() K
}

// poolEntry returns (*m)[k], made with mk (given the key it is made
// for) when new; past maxPools entries, a new client's connections go to
// its folded key instead (see maxPools). last is m's lastEntry.
//
// c, when not nil, is the connection being finalised, k its own key: a
// full map skips the lookup of k when c.newClient says it cannot be
// there, and c.ownsKey is set when k gets an entry of its own.
func poolEntry[K foldableKey[K], V any](m *map[K]*V, last *lastEntry[K, V], k K, c *Conn, mk func(K) *V) *V {
	full := len(*m) >= maxPools
	var v *V
	if !full || c == nil || !c.newClient {
		v = last.get(*m, k)
	}
	if v == nil && full {
		k = k.folded()
		v = last.get(*m, k)
	}
	if v == nil {
		if *m == nil {
			*m = map[K]*V{}
		}
		v = mk(k)
		last.set(*m, k, v)
		if c != nil && !full {
			c.ownsKey = true
		}
	}
	return v
}

// lastEntry remembers the last few keys a per-pool map was read or
// written with and their entries, so that the next connection of one of
// those pools (all of a flood's, once folded, spread over a few servers)
// does not hash the key again: the map lookups were a third of the
// analysis of a million-SYN flood. It is exact only if nothing deletes
// or replaces an entry of the map behind its back: the detectors only
// add entries, but a merge past maxPools deletes the pools it folds
// (mergePools, which clears the lastEntry it is given).
type lastEntry[K comparable, V any] struct {
	k    [lastEntries]K
	v    [lastEntries]*V
	next int // the slot the next new entry takes
}

// lastEntries is how many entries a lastEntry remembers.
const lastEntries = 4

// get returns m[k].
func (l *lastEntry[K, V]) get(m map[K]*V, k K) *V {
	for i := range l.v {
		if l.v[i] != nil && l.k[i] == k {
			return l.v[i]
		}
	}
	v := m[k]
	if v != nil {
		l.remember(k, v)
	}
	return v
}

// set sets m[k] to v, a new entry.
func (l *lastEntry[K, V]) set(m map[K]*V, k K, v *V) {
	m[k] = v
	l.remember(k, v)
}

func (l *lastEntry[K, V]) remember(k K, v *V) {
	l.k[l.next], l.v[l.next] = k, v
	l.next = (l.next + 1) % lastEntries
}

// sortedPoolKeysOf returns m's keys in order.
func sortedPoolKeysOf[V any](m map[findingPool]V) []findingPool {
	keys := make([]findingPool, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, findingPool.compare)
	return keys
}

// groupFindings makes one finding of the findings about single
// connections that share kind, cause, client, server and name (a
// GOAWAY on each of 40 connections of one client is one finding): the
// one on the lowest connection, at the highest severity among them,
// naming every connection and the decisive evidence of each (its first
// item). Other findings pass unchanged. fs holds each detector's
// findings in connection order.
func groupFindings(fs []Finding) []Finding {
	type key struct {
		kind, cause string
		pool        findingPool
	}
	first := map[key]int{}
	var out []Finding
	var merged []int // per output finding, how many it holds
	for _, f := range fs {
		if f.pool == (findingPool{}) {
			out = append(out, f)
			merged = append(merged, 1)
			continue
		}
		k := key{f.Kind, f.Cause, f.pool}
		i, ok := first[k]
		if !ok {
			first[k] = len(out)
			out = append(out, f)
			merged = append(merged, 1)
			continue
		}
		g := &out[i]
		merged[i]++
		g.Severity = max(g.Severity, f.Severity)
		g.Connections = append(g.Connections, f.Connections...)
		if len(g.Streams) < 100 {
			g.Streams = append(g.Streams, f.Streams...)
		}
		if e, ok := keyEvidence(f.Evidence); ok {
			g.Evidence = append(g.Evidence, e)
		}
		g.Confidence = g.Confidence.with(f.Confidence.Reasons...)
	}
	for i := range out {
		if merged[i] == 1 {
			continue
		}
		g := &out[i]
		if g.Metrics == nil {
			g.Metrics = map[string]any{}
		}
		g.Metrics["connections"] = merged[i]
		g.Summary += fmt.Sprintf("; the same on %d more connections of this client and server", merged[i]-1)
	}
	return out
}

// relate fills each finding's Related with the other kinds' findings
// that name one of its connections, among the first maxRelateConns of
// each (those the report holds): memory does not grow with a churn
// finding's hundreds of thousands of connections.
func relate(fs []Finding) {
	byConn := map[event.ConnID][]int{}
	for i := range fs {
		for _, id := range fs[i].Connections[:min(len(fs[i].Connections), maxRelateConns)] {
			byConn[id] = append(byConn[id], i)
		}
	}
	links := make([]map[int]bool, len(fs))
	for _, is := range byConn {
		for _, i := range is {
			for _, j := range is {
				if fs[i].Kind == fs[j].Kind {
					continue
				}
				if links[i] == nil {
					links[i] = map[int]bool{}
				}
				links[i][j] = true
			}
		}
	}
	for i, l := range links {
		for _, j := range sortedKeys(l) {
			fs[i].Related = append(fs[i].Related, fs[j].ID)
		}
	}
}

// maxRelateConns bounds the connections of each finding relate reads.
const maxRelateConns = 100

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// keyEvidence returns the decisive item of es, else its earliest.
func keyEvidence(es []Evidence) (Evidence, bool) {
	if len(es) == 0 {
		return Evidence{}, false
	}
	best := es[0]
	for _, e := range es[1:] {
		if e.Decisive && !best.Decisive || e.Decisive == best.Decisive && e.Frame < best.Frame {
			best = e
		}
	}
	return best, true
}
