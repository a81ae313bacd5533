package report

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// Schema names the version of the JSON report.
const Schema = "h2scope.report/v2"

// Report is the analysis of one capture (one or more files merged), the
// model every renderer reads.
type Report struct {
	// Schema is always Schema.
	Schema string `json:"schema"`
	// ConnectionsIncluded says which connections Connections and
	// Timelines hold (analyze --connections): "named", those the
	// findings name (those their evidence cites, then the first 100 of
	// each finding's connections, at most 2,000 in all; each finding's
	// connections_omitted counts the others), "all", every connection,
	// or "none".
	ConnectionsIncluded string `json:"connections_included"`
	// Captures describes the files read.
	Captures []Capture `json:"captures"`
	// Connections lists the connections connections_included selects,
	// by id (captures[].connections counts them all).
	Connections []ConnRecord `json:"connections"`
	// Findings lists the findings, by severity (highest first).
	Findings []Finding `json:"findings"`
	// Tables holds the pool, resumption and gRPC call tables.
	Tables analyze.Tables `json:"tables"`
	// Timelines holds the notable events and requests of the connections
	// listed, in connection order.
	Timelines []Timeline `json:"timelines"`

	// A Builder's report reads its connections from the spill file src:
	// Connections holds those the findings name (include), raw their
	// JSON as written; Timelines is nil (see EachTimeline).
	src     *spill
	include map[event.ConnID]bool
	raw     []json.RawMessage
	// tls holds the encoded timelines (spillRecord.tl) of Connections,
	// one after the other, tlEnds where each ends, when they took at
	// most maxTimelineCache bytes (tlCached): EachTimeline then need
	// not read the spill file again.
	tls      []byte
	tlEnds   []int
	tlCached bool
	// err is the Builder's error, returned by the writers.
	err error
	// first and last are the times of the capture's first and last
	// packets of a connection; pools counts its pools (the HTML
	// overview); nConns counts the connections.
	first, last time.Time
	pools       *poolSketch
	nConns      int
	// noOverview is Builder.NoOverview: pools counts nothing.
	noOverview bool
}

// Finding is a finding as the report holds it.
type Finding struct {
	analyze.Finding
	// ConnectionsOmitted counts the finding's connections that the
	// report's connections and timelines leave out, and that its
	// connections list therefore leaves out too (it lists those the
	// report holds): those past the caps (100 per finding, 2,000 in all,
	// evidence first), with connections_included "named", or all of them
	// with "none"; absent when none is left out (always with "all").
	ConnectionsOmitted int `json:"connections_omitted,omitempty"`
	// Slice is the annotated pcapng of the finding's packets, when one
	// was written (analyze --slices); the reports name it.
	Slice string `json:"slice,omitempty"`
}

// EachTimeline calls fn with the timeline of each connection in
// Connections, in connection order, and stops at the first error fn
// returns. A Builder's Report leaves Timelines nil and reads each
// timeline from its spill file for the call, so that they are never all
// in memory at once (its writers include them).
func (r *Report) EachTimeline(fn func(*Timeline) error) error {
	if r.src == nil {
		for i := range r.Timelines {
			if err := fn(&r.Timelines[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if r.err != nil {
		return r.err
	}
	if len(r.include) == 0 {
		return nil
	}
	if r.tlCached {
		if r.src.f == nil {
			return errSpillClosed
		}
		start := 0
		for _, end := range r.tlEnds {
			sr := spillRecord{tl: r.tls[start:end:end]}
			start = end
			tl, err := sr.timeline()
			if err != nil {
				return err
			}
			if err := fn(&tl); err != nil {
				return err
			}
		}
		return nil
	}
	return r.src.each(func(id event.ConnID, b []byte) error {
		if !r.include[id] {
			return nil
		}
		sr, err := decodeSpill(b)
		if err != nil {
			return err
		}
		tl, err := sr.timeline()
		if err != nil {
			return err
		}
		return fn(&tl)
	})
}

// eachSpilled calls fn with every connection of a Builder's report, in id
// order (sr's slices are valid during the call only).
func (r *Report) eachSpilled(fn func(sr *spillRecord) error) error {
	return r.eachSpilledOf(nil, fn)
}

// eachSpilledOf is eachSpilled over the connections only allows (every
// one when only is nil): the others are not decoded.
func (r *Report) eachSpilledOf(only func(event.ConnID) bool, fn func(sr *spillRecord) error) error {
	if r.err != nil {
		return r.err
	}
	return r.src.each(func(id event.ConnID, b []byte) error {
		if only != nil && !only(id) {
			return nil
		}
		sr, err := decodeSpill(b)
		if err != nil {
			return err
		}
		return fn(&sr)
	})
}

// allTimelines returns every timeline of Connections.
func (r *Report) allTimelines() []Timeline {
	if r.src == nil {
		return r.Timelines
	}
	out := make([]Timeline, 0, len(r.Connections))
	r.EachTimeline(func(tl *Timeline) error {
		out = append(out, *tl)
		return nil
	})
	return out
}

// WriteJSONLine writes the report (timelines included) as one line of
// JSON ending in a newline, as json.Encoder with SetEscapeHTML(false)
// writes it, controls escaped (newJSONEncoder): a record of an NDJSON
// file. Like WriteJSON, it encodes one connection, timeline or finding at
// a time.
func (r *Report) WriteJSONLine(w io.Writer) error {
	return r.writeJSON(w, true)
}

// Capture describes what was read.
type Capture struct {
	// Files are the capture files, merged by time.
	Files []string `json:"files"`
	// Packets and Bytes count the frames read and their captured bytes.
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Connections counts TCP connections.
	Connections int `json:"connections"`
	// Secrets counts the TLS secrets found in Decryption Secrets Blocks.
	Secrets int `json:"secrets,omitempty"`
	// Faults lists the damage that cut files short; the packets before
	// each were analysed.
	Faults []string `json:"faults,omitempty"`
	// TLSConnections counts connections with TLS; TLSUndecrypted counts
	// those whose protected records stayed encrypted, by reason
	// (no_key_log, no_keys_for_session, ...).
	TLSConnections int            `json:"tls_connections"`
	TLSUndecrypted map[string]int `json:"tls_undecrypted,omitempty"`
	// KeyLog says what the TLS secrets given for the capture held (key
	// log files and the captures' Decryption Secrets Blocks) and how its
	// TLS sessions fitted them; absent when there were none.
	KeyLog *KeyLogUse `json:"key_log,omitempty"`
	// ResumeKey, written by h2scope batch, identifies everything that
	// decided this report: the files (size, modification time, a hash of
	// their first and last MiB), the key logs used (content hash), the
	// analysis options and the h2scope version, as "v1:" and a SHA-256
	// in hex. A resumed batch re-analyses a capture whose key differs.
	ResumeKey string `json:"resume_key,omitempty"`
}

// KeyLogUse says what TLS key logs were read for a capture and how its
// sessions fitted them.
type KeyLogUse struct {
	// Secrets counts the secrets read (one per key log line used), from
	// Sources sources: key log files (--keylog, or found beside the
	// capture by batch) and capture files' Decryption Secrets Blocks.
	Secrets int `json:"secrets"`
	Sources int `json:"sources"`
	// Sessions counts the client randoms the secrets are for.
	Sessions int `json:"sessions"`
	// Matched counts the TLS sessions whose client random has secrets;
	// MissingClientRandoms those whose client random has none (a resumed
	// TLS 1.2 session, decrypted through the session it resumes, counts
	// here too: key logs have no line for it).
	Matched              int `json:"matched"`
	MissingClientRandoms int `json:"missing_client_randoms"`
}

// keyLogNote says, for a capture whose TLS connections were not all
// decrypted, what the key logs given held and how they fitted, or asks
// for one when none was given: "4 secrets read from 1 source, none fit
// these sessions (3 client randoms missing from them)".
func keyLogNote(k *KeyLogUse) string {
	switch {
	case k == nil || k.Sources == 0 && k.Secrets == 0:
		return "give --keylog to see inside them"
	case k.Secrets == 0:
		return fmt.Sprintf("the key logs given (%s) hold no TLS secrets", plural(k.Sources, "source"))
	}
	read := fmt.Sprintf("%s read from %s", plural(k.Secrets, "secret"), plural(k.Sources, "source"))
	missing := ""
	if k.MissingClientRandoms > 0 {
		missing = fmt.Sprintf("%s missing from them", plural(k.MissingClientRandoms, "client random"))
	}
	if k.Matched == 0 {
		if missing != "" {
			missing = " (" + missing + ")"
		}
		return read + ", none fit these sessions" + missing
	}
	note := fmt.Sprintf("%s fit %s", read, plural(k.Matched, "session"))
	if missing != "" {
		note += "; " + missing
	}
	return note
}

// Connection selections: which connections a report holds
// (Builder.Connections, analyze --connections).
const (
	// ConnsNamed holds the connections findings name, at most
	// Builder.PerFinding of each finding's and Builder.MaxConnections in
	// all (the default).
	ConnsNamed = "named"
	// ConnsAll holds every connection, read back from the spill file.
	ConnsAll = "all"
	// ConnsNone holds no connection.
	ConnsNone = "none"
)

// DefaultPerFinding is the number of a finding's connections a report
// holds unless set otherwise.
const DefaultPerFinding = 100

// DefaultMaxConnections is the number of connections a report holds in
// all unless set otherwise (as many as the HTML page lists).
const DefaultMaxConnections = 2000

// namedConns returns the connections a ConnsNamed report holds: those
// the findings' evidence cites, then each finding's first, second, ...
// connection in turn, at most per (DefaultPerFinding when 0) of each
// finding's and max (DefaultMaxConnections when 0) in all.
func namedConns(fs []Finding, per, max int) map[event.ConnID]bool {
	if per <= 0 {
		per = DefaultPerFinding
	}
	if max <= 0 {
		max = DefaultMaxConnections
	}
	in := map[event.ConnID]bool{}
	add := func(id event.ConnID) {
		if len(in) < max {
			in[id] = true
		}
	}
	for i := range fs {
		for _, e := range fs[i].Evidence {
			add(e.Conn)
		}
	}
	for k := 0; k < per && len(in) < max; k++ {
		more := false
		for i := range fs {
			if c := fs[i].Connections; k < len(c) {
				add(c[k])
				more = true
			}
		}
		if !more {
			break
		}
	}
	return in
}

// ParseConnections checks an --connections value: "named", "all" or
// "none", in any case.
func ParseConnections(v string) (string, error) {
	switch s := strings.ToLower(v); s {
	case ConnsNamed, ConnsAll, ConnsNone:
		return s, nil
	}
	return "", fmt.Errorf("unknown connection selection %q (want named, all or none)", v)
}

// A Builder builds a Report while the analysis streams, keeping nothing
// of a finished connection in memory: it is the analyze.ConnSink of
// analyze.Stream. Add makes the parts of each connection's record and timeline that
// need its full records (application summaries, requests, resets,
// stalls) while they are at hand, and keeps them encoded while the
// connection is open; Done completes them from the connection's final summary (TCP summary, SYN, FIN, RST
// and window refs) and writes them to the spill file (spill.go), counting
// what the report's capture summary and the HTML overview need. Report
// then puts the findings and tables together with the connections the
// findings name, read back from the spill; the writers read every
// connection from it when the report holds them all (ConnsAll). Memory
// thus grows with the connections open at once, not with those finished.
// Add and Done may be called from several goroutines.
type Builder struct {
	// Limits bound each connection's timeline; NewBuilder sets
	// DefaultLimits.
	Limits Limits
	// Keys, if set, is the key log the capture was dissected with
	// (dissect.Options.Keys); Report records what it held and how the
	// sessions fitted it (Capture.KeyLog).
	Keys *tls.KeyLog
	// Connections selects the connections the report holds: ConnsNamed
	// ("" too), ConnsAll or ConnsNone.
	Connections string
	// PerFinding bounds the connections of each finding a ConnsNamed
	// report holds (its first ones, by id); 0 means DefaultPerFinding.
	PerFinding int
	// MaxConnections bounds the connections a ConnsNamed report holds
	// in all; 0 means DefaultMaxConnections.
	MaxConnections int
	// SpillDir is the directory of the spill file; "" means
	// os.TempDir().
	SpillDir string
	// NoOverview says the report will not be written as HTML: the
	// Builder then skips the one fold only the page's overview reads,
	// the connections per pool, a hash per connection (5% of a SYN
	// flood's CPU). WriteHTML refuses such a report.
	NoOverview bool

	red Redaction
	// mu guards the Builder but pending, which pmu guards, so that Add
	// need not wait for Done to finish a connection (finish runs under
	// mu alone); finishPending takes pmu under mu.
	mu  sync.Mutex
	pmu sync.Mutex
	// pending holds, by slot, the connections Add saw that have not
	// finished (a slot with a nil c is free, and listed in freeSlots);
	// a connection's SinkTag is its slot plus one. A slot, not a map by
	// id: Add and Done of a SYN flood's million connections each
	// hashed the id and copied the record in and out of the map's
	// growing table.
	pending   []pendingConn
	freeSlots []uint32
	// freeTL holds the timeline buffers (pendingConn.tl) of finished
	// connections, for Add to reuse: 45 MB of new ones over 250,000
	// short connections otherwise. At most maxFreeTL of maxFreeTLCap
	// bytes: 8 MB.
	freeTL  [][]byte
	spill   *spill
	err     error
	recBuf  bytes.Buffer
	recEnc  *json.Encoder
	recFast []byte // packRecord's and appendRecordJSON's buffer
	// sumEvents is finish's for the summary's timeline events.
	sumEvents []TimelineEvent
	// rec is finish's, for the connection at hand.
	rec   ConnRecord
	folds builderFolds
	// keyStats, set by AddPartial, stands for Keys.Stats(): the key
	// logs of every run of a split capture.
	keyStats *tls.KeyLogStats
}

// pendingConn is a connection Add saw that has not finished yet.
type pendingConn struct {
	c   *analyze.Conn
	rec ConnRecord // without its TCP summary (final when it finishes)
	// tl holds the timeline's events from the full records (capped at
	// Limits.Events, EventsOmitted counting the rest) and its spans,
	// encoded (appendTimeline); the others join it when it finishes.
	tl []byte
	// A nil tl says the timeline has no events and no spans from the
	// records (a SYN flood's connections): finish encodes it
	// (appendEmptyTimeline), dropped counting the requests the records
	// dropped.
	dropped int
	// conn is the connection's id as Add saw it, which Done checks its
	// slot against.
	conn event.ConnID
}

// builderFolds is what a Builder counts of the finished connections.
type builderFolds struct {
	conns, tlsConns int
	undecrypted     map[string]int
	first, last     time.Time
	pools           poolSketch
}

// NewBuilder returns a Builder redacting secrets in captured strings as
// red says.
func NewBuilder(red Redaction) *Builder {
	return &Builder{red: red, Limits: DefaultLimits}
}

// Add builds the parts of c's connection record and timeline that need
// its full records; c must still hold them (see analyze.Stream), and
// Done then gets the finished connection, and Report reads c again for
// those still open when it is called.
func (b *Builder) Add(c *analyze.Conn) {
	p := pendingConn{c: c, conn: c.ID()}
	if c.App != nil {
		var recs analyze.Records
		if c.Records != nil {
			recs = *c.Records
		}
		p.rec = connRecord(c.TCP, c.App, recs.Calls, recs.Stalls)
		p.rec.Summary = nil
	}
	if recs := c.Records; c.App == nil && (recs == nil || len(recs.Exchanges) == 0 && len(recs.Resets) == 0) {
		// No event, no span: finish encodes the timeline.
		if recs != nil {
			p.dropped = recs.ExchangesDropped
		}
	} else if tl, ok := appendRequestsTimeline(b.requestsBuffer(c), c, b.red, b.Limits); ok {
		p.tl = tl
	} else {
		p.tl = appendRecordsTimeline(nil, c, b.red, b.Limits)
	}
	b.addPending(c, p)
}

// appendRecordsTimeline appends, encoded, the timeline events of c that
// its records give and its summary does not (see summaryTimeline for
// the others): stalls, resets and requests.
func appendRecordsTimeline(b []byte, c *analyze.Conn, red Redaction, lim Limits) []byte {
	tl := newTimeline(c, red, lim, []TimelineEvent{}, timelineRecords)
	e := enc{b: b}
	appendTimeline(&e, &tl)
	return e.b
}

// requestsBuffer returns an empty buffer about the size
// appendRequestsTimeline needs for c's requests, so that it is not grown
// five or six times over: one finish is done with, if one is that large.
func (b *Builder) requestsBuffer(c *analyze.Conn) []byte {
	n := 16
	if c.Records != nil {
		for i := range c.Records.Exchanges {
			x := &c.Records.Exchanges[i]
			n += 128 + 3*(len(x.Method)+len(x.Path))
		}
	}
	n = (n + 255) &^ 255 // in few sizes, so that a free one mostly fits
	b.pmu.Lock()
	if k := len(b.freeTL); k > 0 && cap(b.freeTL[k-1]) >= n {
		tl := b.freeTL[k-1]
		b.freeTL[k-1] = nil
		b.freeTL = b.freeTL[:k-1]
		b.pmu.Unlock()
		return tl
	}
	b.pmu.Unlock()
	return make([]byte, 0, n)
}

// Bounds of the timeline buffers finish keeps for Add (freeTL): finish
// gets connections in batches (analyze hands them over 256 at a time,
// up to 4 batches ahead), so the list holds more than one batch's.
const (
	maxFreeTL    = 2048
	maxFreeTLCap = 4 << 10
)

// freeTimeline keeps tl, a timeline buffer finish copied, for Add.
func (b *Builder) freeTimeline(tl []byte) {
	if cap(tl) == 0 || cap(tl) > maxFreeTLCap {
		return
	}
	b.pmu.Lock()
	if len(b.freeTL) < maxFreeTL {
		b.freeTL = append(b.freeTL, tl[:0])
	}
	b.pmu.Unlock()
}

// appendEmptyTimeline appends what appendRequestsTimeline does for the
// connection id whose records hold no request, reset or stall, dropped
// counting the requests they dropped.
func appendEmptyTimeline(e *enc, id event.ConnID, dropped int) {
	e.Uint(uint64(id))
	e.Int(0)
	e.Int(int64(dropped))
	e.Uint(0)
	e.Uint(0)
}

// addPending records p, the connection c, as waiting to finish, in a
// slot c's SinkTag then names.
func (b *Builder) addPending(c *analyze.Conn, p pendingConn) {
	b.pmu.Lock()
	slot, ok := b.slotOf(c)
	if ok {
		b.pending[slot] = p // Add again: the later wins, as it did in a map
	} else if n := len(b.freeSlots); n > 0 {
		slot = b.freeSlots[n-1]
		b.freeSlots = b.freeSlots[:n-1]
		b.pending[slot] = p
	} else {
		slot = uint32(len(b.pending))
		b.pending = append(b.pending, p)
	}
	b.pmu.Unlock()
	c.SinkTag = slot + 1
}

// slotOf returns the slot c's SinkTag names, if it holds c (pmu held).
func (b *Builder) slotOf(c *analyze.Conn) (uint32, bool) {
	slot := c.SinkTag - 1
	if c.SinkTag == 0 || int(slot) >= len(b.pending) {
		return 0, false
	}
	p := &b.pending[slot]
	return slot, p.c != nil && p.conn == c.ID()
}

// takePending returns and frees the slot of the connection c if Add saw
// it.
func (b *Builder) takePending(c *analyze.Conn) (pendingConn, bool) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	slot, ok := b.slotOf(c)
	if !ok {
		return pendingConn{}, false
	}
	q := b.pending[slot]
	b.pending[slot] = pendingConn{}
	b.freeSlots = append(b.freeSlots, slot)
	return q, true
}

// Done completes the connection c, which just finished (its summary is
// final), if Add saw it.
func (b *Builder) Done(c *analyze.Conn) {
	p, ok := b.takePending(c)
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finish(&p, c, c.TCP)
}

// finish completes p from conn, the finished connection (Done's, which
// may be a copy of the one Add saw), with its final TCP summary sum, and
// writes it to the spill file.
func (b *Builder) finish(p *pendingConn, conn *analyze.Conn, sum *tcp.Summary) {
	b.rec = p.rec
	rec := &b.rec // finish keeps no pointer to it
	rec.Summary = NewConnRecord(sum, nil).Summary

	f := &b.folds
	f.conns++
	if conn.App != nil && conn.App.TLS != nil {
		f.tlsConns++
		if reason := conn.App.TLS.Decryption.Reason; reason != "" {
			if f.undecrypted == nil {
				f.undecrypted = map[string]int{}
			}
			f.undecrypted[reason]++
		}
	}
	if f.first.IsZero() || rec.FirstTS.Before(f.first) {
		f.first = rec.FirstTS
	}
	if rec.LastTS.After(f.last) {
		f.last = rec.LastTS
	}
	head := headOf(rec)
	if !b.NoOverview {
		f.pools.add(overviewKey{head.client.Addr(), head.server})
	}

	if b.err != nil {
		return
	}
	if b.spill == nil {
		if b.spill, b.err = newSpill(b.SpillDir); b.err != nil {
			return
		}
		b.recEnc = newJSONEncoder(&b.recBuf)
	}
	// Most records go packed, their JSON made if they are read back;
	// the others as their JSON.
	pe := enc{b: b.recFast[:0]}
	recOut, fast := pe.b, packRecord(&pe, rec)
	if fast {
		recOut = pe.b
	} else {
		recOut, fast = appendRecordJSON(pe.b, rec)
	}
	if fast {
		b.recFast = recOut // kept for the next: 730 MB of new buffers over a million-SYN flood otherwise
	} else {
		b.recBuf.Reset()
		if err := b.recEnc.Encode(rec); err != nil {
			b.err = fmt.Errorf("report: connection %d: %w", rec.ID, err)
			return
		}
		recOut = bytes.TrimSuffix(b.recBuf.Bytes(), []byte("\n"))
	}
	// The timeline's parts are merged when it is read back (most never
	// are): the summary's events are encoded beside the rest, which Add
	// encoded.
	e := enc{b: b.spill.buffer()}
	encodeSpillHead(&e, &head, recOut)
	e.Int(int64(b.Limits.Events))
	if !appendTCPTimeline(&e, conn, sum.ID, b.Limits) {
		c := *conn
		c.TCP = sum
		sumTL := summaryTimeline(&c, b.red, b.Limits, b.sumEvents[:0])
		appendTimeline(&e, &sumTL)
		if cap(sumTL.Events) <= maxSumEvents {
			b.sumEvents = sumTL.Events[:0]
		}
	}
	if p.tl == nil {
		appendEmptyTimeline(&e, p.conn, p.dropped)
	} else {
		e.b = append(e.b, p.tl...)
		b.freeTimeline(p.tl)
	}
	b.spill.push(rec.ID, e.b)
}

// appendTCPTimeline appends what appendTimeline does for the timeline
// summaryTimeline makes of c, connection id, when its events are TCP's
// only (no TLS or HTTP/2 summary), at most maxTCPEvents and within
// lim.Events (a SYN flood's connections, short HTTP/1.x ones), without
// making it; ok is false otherwise, and e is left as it was.
func appendTCPTimeline(e *enc, c *analyze.Conn, id event.ConnID, lim Limits) (ok bool) {
	if a := c.App; a != nil && (a.TLS != nil || a.HTTP2 != nil) {
		return false
	}
	n := len(c.SYNs) + len(c.SYNACKs) + len(c.ZeroWindows[0]) + len(c.ZeroWindows[1]) + 4
	if n > maxTCPEvents {
		return false
	}
	// An event: its ref, side, label (index in timelineStrs) and lane,
	// stall or TCP (which sorts first).
	type tcpEvent struct {
		r     *event.Ref
		dir   event.Dir
		what  uint8
		stall bool
	}
	var evs [maxTCPEvents]tcpEvent
	n = 0
	add := func(r *event.Ref, dir event.Dir, what uint8) {
		if r != nil {
			evs[n] = tcpEvent{r, dir, what, what == strZeroWindow}
			n++
		}
	}
	// As newTimeline adds them.
	for i := range c.SYNs {
		what := uint8(strSYN)
		if i > 0 {
			what = strSYNAgain
		}
		add(&c.SYNs[i], event.C2S, what)
	}
	for i := range c.SYNACKs {
		add(&c.SYNACKs[i], event.S2C, strSYNACK)
	}
	for d := event.C2S; d <= event.S2C; d++ {
		add(c.FIN[d], d, strFIN)
		add(c.RST[d], d, strRST)
		for i := range c.ZeroWindows[d] {
			add(&c.ZeroWindows[d][i], d, strZeroWindow)
		}
	}
	if n > lim.Events {
		return false
	}
	// newTimeline's stable sort by frame and lane, by insertion.
	before := func(x, y *tcpEvent) bool {
		return x.r.Frame < y.r.Frame || x.r.Frame == y.r.Frame && x.stall && !y.stall
	}
	for i := 1; i < n; i++ {
		x := evs[i]
		j := i
		for ; j > 0 && before(&x, &evs[j-1]); j-- {
			evs[j] = evs[j-1]
		}
		evs[j] = x
	}
	e.Uint(uint64(id))
	e.b = append(e.b, 0, 0) // EventsOmitted, SpansOmitted
	e.Uint(uint64(n))
	for i := range n {
		// appendEventHead, Str and appendEventEnd of the event.
		x := &evs[i]
		e.Uint(x.r.Frame)
		e.Time(x.r.TS)
		lane := byte(strTCP)
		if x.stall {
			lane = strStall
		}
		e.b = append(e.b, lane, byte(x.dir), 0, x.what, 0, 0) // lane, dir, stream, what, end frame and time
	}
	e.Uint(0)
	return true
}

// maxTCPEvents bounds the events of appendTCPTimeline.
const maxTCPEvents = 16

// Close removes the spill file; a Report of the Builder reads no
// connection after it.
func (b *Builder) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spill.close()
}

// maxSumEvents bounds the events array a Builder keeps for the next
// summaryTimeline.
const maxSumEvents = 64

// summaryTimeline returns the timeline events of c that its summary
// keeps: TCP SYN, FIN, RST and zero windows, TLS handshake and alerts,
// GOAWAYs; they are appended to ev.
func summaryTimeline(c *analyze.Conn, red Redaction, lim Limits, ev []TimelineEvent) Timeline {
	return newTimeline(c, red, lim, ev, timelineSummary)
}

// mergeTimeline returns the timeline made of the events of sum and tl
// and the spans of tl, as NewTimeline makes it from the connection's
// records: sum's events go first among equals, as NewTimeline adds them
// first, and each part holds at least the first lim.Events of its
// own events, so the first lim.Events of both are among them.
func mergeTimeline(sum, tl Timeline, lim Limits) Timeline {
	ev := make([]TimelineEvent, 0, len(sum.Events)+len(tl.Events))
	ev = append(append(ev, sum.Events...), tl.Events...)
	slices.SortStableFunc(ev, func(a, b TimelineEvent) int {
		return cmp.Or(cmp.Compare(a.Frame, b.Frame), cmp.Compare(a.Lane, b.Lane))
	})
	tl.EventsOmitted += sum.EventsOmitted
	if len(ev) > lim.Events {
		tl.EventsOmitted += len(ev) - lim.Events
		ev = slices.Clone(ev[:lim.Events])
	}
	tl.Events = ev
	return tl
}

// New builds a Report from an analysis whose Input holds every
// connection's full records (analyze.Run), redacting secrets in captured
// strings as red says. It holds the connections the findings name, as a
// Builder's does by default.
func New(files []string, in *analyze.Input, res analyze.Result, red Redaction) *Report {
	b := NewBuilder(red)
	for _, c := range in.Conns {
		b.Add(c)
	}
	return b.Report(files, in, res)
}

// Report builds the Report of an analysis from the connections added;
// in may hold the connections' summaries only, or none (its Stats are
// read). Connections Add saw and Done did not are completed from
// their analyze.Conn, whose summary is final by now. The report reads
// the spill file until the Builder is closed.
func (b *Builder) Report(files []string, in *analyze.Input, res analyze.Result) *Report {
	b.mu.Lock()
	b.finishPending()
	b.mu.Unlock()
	if b.spill != nil && in != nil {
		b.spill.ids = in.Stats.IDs // a sharded run's records hold provisional IDs
	}

	red := b.red
	sel := b.Connections
	if sel == "" {
		sel = ConnsNamed
	}
	r := &Report{Schema: Schema, ConnectionsIncluded: sel, Tables: res.Tables, src: b.spill, err: b.err,
		first: b.folds.first, last: b.folds.last, pools: &b.folds.pools, nConns: b.folds.conns,
		noOverview: b.NoOverview}
	// The tables name gRPC methods, which are request paths.
	for i := range r.Tables.GRPCCalls {
		r.Tables.GRPCCalls[i].Method = red.URL(r.Tables.GRPCCalls[i].Method)
	}
	for i := range r.Tables.GRPCMethods {
		r.Tables.GRPCMethods[i].Method = red.URL(r.Tables.GRPCMethods[i].Method)
	}
	r.Findings = make([]Finding, len(res.Findings))
	for i := range res.Findings {
		f := &r.Findings[i]
		f.Finding = res.Findings[i]
		f.Summary = red.Text(f.Summary)
		for j := range f.Evidence {
			f.Evidence[j].What = red.Text(f.Evidence[j].What)
		}
		for k, v := range f.Metrics {
			if s, ok := v.(string); ok {
				f.Metrics[k] = red.Text(s)
			}
		}
	}
	c := Capture{Files: files, Packets: in.Stats.Packets, Bytes: in.Stats.Bytes,
		Connections: b.folds.conns, Secrets: in.Stats.Secrets,
		TLSConnections: b.folds.tlsConns, TLSUndecrypted: maps.Clone(b.folds.undecrypted)}
	for _, f := range in.Stats.Faults {
		c.Faults = append(c.Faults, f.Error())
	}
	st := b.Keys.Stats()
	if b.keyStats != nil {
		st = *b.keyStats
	}
	if st.Sources > 0 || st.Secrets > 0 {
		c.KeyLog = &KeyLogUse{Secrets: st.Secrets, Sources: st.Sources, Sessions: st.Sessions,
			Matched: st.Matched, MissingClientRandoms: st.Missing}
	}
	r.Captures = []Capture{c}

	r.include = namedConns(r.Findings, b.PerFinding, b.MaxConnections)
	for i := range r.Findings {
		f := &r.Findings[i]
		for _, id := range f.Connections {
			if sel == ConnsNone || sel == ConnsNamed && !r.include[id] {
				f.ConnectionsOmitted++
			}
		}
	}
	r.Connections = make([]ConnRecord, 0, len(r.include))
	r.raw = make([]json.RawMessage, 0, len(r.include))
	r.tlCached = true
	if r.err == nil && len(r.include) > 0 {
		r.err = r.src.each(func(id event.ConnID, buf []byte) error {
			if !r.include[id] {
				return nil
			}
			sr, err := decodeSpill(buf)
			if err != nil {
				return err
			}
			j, err := sr.appendJSON(nil)
			if err != nil {
				return err
			}
			rec, err := decodeConnRecord(j)
			if err != nil {
				return fmt.Errorf("report: connection %d: %w", id, err)
			}
			r.Connections = append(r.Connections, rec)
			r.raw = append(r.raw, json.RawMessage(j))
			if r.tlCached {
				if len(r.tls)+len(sr.tl) > maxTimelineCache {
					r.tls, r.tlEnds, r.tlCached = nil, nil, false
				} else {
					r.tls = append(r.tls, sr.tl...)
					r.tlEnds = append(r.tlEnds, len(r.tls))
				}
			}
			return nil
		})
	}
	return r
}

// maxTimelineCache bounds the bytes of encoded timelines a Builder's
// Report keeps for EachTimeline (Report.tls).
var maxTimelineCache = 4 << 20

// WriteJSON writes the report as one indented JSON object. It encodes
// one connection, timeline or finding at a time, so that the encoding of
// a large report is never held in memory whole; the bytes are those of
// json.Encoder with SetIndent("", "  ") and SetEscapeHTML(false), with
// the controls a terminal would act on escaped (newJSONEncoder).
func (r *Report) WriteJSON(w io.Writer) error {
	return r.writeJSON(w, false)
}

func (r *Report) writeJSON(w io.Writer, compact bool) error {
	jw := &jsonWriter{w: bufio.NewWriterSize(w, 64<<10), compact: compact}
	jw.punct("{\n", "{")
	jw.field("schema", &r.Schema, false)
	jw.field("connections_included", &r.ConnectionsIncluded, false)
	list(jw, "captures", r.Captures)
	all := r.src != nil && r.ConnectionsIncluded == ConnsAll
	switch {
	case r.err != nil:
		return r.err
	case all:
		each(jw, "connections", r.nConns, func(fn func(*json.RawMessage) error) error {
			return r.eachSpilled(func(sr *spillRecord) error {
				j, err := sr.appendJSON(nil)
				if err != nil {
					return err
				}
				raw := json.RawMessage(j)
				return fn(&raw)
			})
		})
	case r.src != nil && r.ConnectionsIncluded == ConnsNone:
		list(jw, "connections", []ConnRecord{})
	case r.src != nil:
		list(jw, "connections", r.raw)
	default:
		list(jw, "connections", r.Connections)
	}
	list(jw, "findings", r.jsonFindings())
	jw.field("tables", &r.Tables, false)
	switch {
	case all:
		each(jw, "timelines", r.nConns, func(fn func(*Timeline) error) error {
			return r.eachSpilled(func(sr *spillRecord) error {
				tl, err := sr.timeline()
				if err != nil {
					return err
				}
				return fn(&tl)
			})
		})
	case r.src != nil && r.ConnectionsIncluded == ConnsNone:
		list(jw, "timelines", []Timeline{})
	case r.src != nil:
		each(jw, "timelines", len(r.Connections), r.EachTimeline)
	default:
		list(jw, "timelines", r.Timelines)
	}
	jw.punct("\n}\n", "}\n")
	if jw.err != nil {
		return jw.err
	}
	return jw.w.Flush()
}

// jsonWriter writes the fields of a JSON object one value at a time,
// indented as json.Encoder with SetIndent("", "  ") does, or compact; the
// first error stops it.
type jsonWriter struct {
	w       *bufio.Writer
	compact bool
	buf     bytes.Buffer
	fast    []byte // appendFast's buffer, kept for the next value
	n       int    // fields written
	err     error
}

// punct writes the punctuation and white space of the indented form, or
// that of the compact one.
func (jw *jsonWriter) punct(indented, compact string) {
	if jw.compact {
		jw.raw(compact)
	} else {
		jw.raw(indented)
	}
}

// encoder returns an encoder writing to b as jw writes values at depth,
// with the controls escapeJSONControls escapes escaped.
func (jw *jsonWriter) encoder(b *bytes.Buffer, depth int) *json.Encoder {
	enc := newJSONEncoder(b)
	if !jw.compact {
		enc.SetIndent(indentPrefix(depth), "  ")
	}
	return enc
}

// appendFast appends v's JSON at depth as jw.encoder writes it (without
// its newline), for the values that have a writer of their own (a
// timeline: appendTimelineJSON); ok is false for the others.
func (jw *jsonWriter) appendFast(b []byte, v any, depth int) (_ []byte, ok bool) {
	tl, isTL := v.(*Timeline)
	if !isTL || tl == nil {
		return b, false
	}
	if jw.compact {
		return appendTimelineJSON(b, tl, "", "")
	}
	return appendTimelineJSON(b, tl, indentPrefix(depth), "  ")
}

// indentPrefix is the prefix of the lines of a value at depth.
func indentPrefix(depth int) string { return strings.Repeat("  ", depth) }

func (jw *jsonWriter) raw(s string) {
	if jw.err == nil {
		_, jw.err = jw.w.WriteString(s)
	}
}

// value writes v's encoding, indented as at depth (in units of two
// spaces) unless compact, without a final newline.
func (jw *jsonWriter) value(v any, depth int) {
	if jw.err != nil {
		return
	}
	if b, ok := jw.appendFast(jw.fast[:0], v, depth); ok {
		jw.fast = b
		_, jw.err = jw.w.Write(b)
		return
	}
	jw.buf.Reset()
	if jw.err = jw.encoder(&jw.buf, depth).Encode(v); jw.err != nil {
		return
	}
	_, jw.err = jw.w.Write(bytes.TrimSuffix(jw.buf.Bytes(), []byte("\n")))
}

// field writes the object's next field.
func (jw *jsonWriter) field(name string, v any, open bool) {
	if jw.n > 0 {
		jw.punct(",\n", ",")
	}
	jw.n++
	jw.punct("  \""+name+"\": ", "\""+name+"\":")
	if !open {
		jw.value(v, 1)
	}
}

// list writes a field holding a slice, one element at a time.
func list[T any](jw *jsonWriter, name string, s []T) {
	if len(s) == 0 {
		jw.field(name, s, false) // null or [], as s is
		return
	}
	each(jw, name, len(s), func(fn func(*T) error) error {
		for i := range s {
			if err := fn(&s[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// each writes the n values all calls its function with as the array
// field name (on several goroutines for long lists; see listEncoder).
func each[T any](jw *jsonWriter, name string, n int, all func(func(*T) error) error) {
	if n == 0 {
		jw.field(name, []T{}, false)
		return
	}
	jw.field(name, nil, true)
	jw.punct("[\n", "[")
	if batch := listBatch(n); batch > 0 && jw.err == nil {
		e := newListEncoder(jw, batch)
		err := all(func(v *T) error { return e.add(v) })
		e.close()
		if err != nil && jw.err == nil {
			jw.err = err // the source failed (the spill file)
		}
		jw.punct("\n  ]", "]")
		return
	}
	i := 0
	err := all(func(v *T) error {
		if i > 0 {
			jw.punct(",\n", ",")
		}
		i++
		jw.punct("    ", "")
		jw.value(v, 2)
		return jw.err
	})
	if err != nil && jw.err == nil {
		jw.err = err
	}
	jw.punct("\n  ]", "]")
}

// AnalysisFindings returns the findings as the analysis made them
// (without the report's counts of connections left out).
func (r *Report) AnalysisFindings() []analyze.Finding {
	out := make([]analyze.Finding, len(r.Findings))
	for i := range r.Findings {
		out[i] = r.Findings[i].Finding
	}
	return out
}

// decodeConnRecord decodes a record's JSON for the renderers other than
// JSON (which writes the JSON as it was): the TCP summary, the protocol
// labels and the gRPC status counts they read decode exactly (a test
// checks it on every committed capture); fields of a type that has no
// JSON decoding (event.Dir in GOAWAYs, ...) are left zero.
func decodeConnRecord(b []byte) (ConnRecord, error) {
	var rec ConnRecord
	err := json.Unmarshal(b, &rec)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		err = nil // Unmarshal decoded the rest
	}
	return rec, err
}

// eachConn calls fn with every connection of the capture in id order
// that only allows (every one when only is nil): its head, its timeline,
// and its record when it is in Connections or want says so (else nil).
// A report made by hand, without a Builder, gives its Timelines, each
// with its record from Connections (nil when it has none, and then no
// head). A Builder's report decodes no more than it gives.
func (r *Report) eachConn(only, want func(event.ConnID) bool, fn func(h *connHead, rec *ConnRecord, tl *Timeline) error) error {
	index := make(map[event.ConnID]int, len(r.Connections))
	for i := range r.Connections {
		index[r.Connections[i].ID] = i
	}
	if r.src == nil {
		return r.EachTimeline(func(tl *Timeline) error {
			if only != nil && !only(tl.Conn) {
				return nil
			}
			i, ok := index[tl.Conn]
			if !ok {
				return fn(nil, nil, tl)
			}
			rec := &r.Connections[i]
			h := headOf(rec)
			return fn(&h, rec, tl)
		})
	}
	var buf []byte // a record's JSON
	return r.eachSpilledOf(only, func(sr *spillRecord) error {
		tl, err := sr.timeline()
		if err != nil {
			return err
		}
		var rec *ConnRecord
		if i, ok := index[sr.head.id]; ok {
			rec = &r.Connections[i]
		} else if want(sr.head.id) {
			j, err := sr.appendJSON(buf[:0])
			if err != nil {
				return err
			}
			buf = j
			v, err := decodeConnRecord(j)
			if err != nil {
				return err
			}
			rec = &v
		}
		return fn(&sr.head, rec, &tl)
	})
}

// headOf returns what the HTML overview counts of rec.
func headOf(rec *ConnRecord) connHead {
	return connHead{id: rec.ID, client: rec.Client, server: rec.Server, first: rec.FirstTS, last: rec.LastTS,
		syn: rec.SYNs > 0, closed: rec.Close != tcp.CloseOpen && rec.Close != ""}
}

// span returns the times of the first and last packets of the capture's
// connections (zero when there are none).
func (r *Report) span() (first, last time.Time) {
	if r.src != nil {
		return r.first, r.last
	}
	for i := range r.Connections {
		c := r.Connections[i].Summary
		if c == nil {
			continue
		}
		if first.IsZero() || c.FirstTS.Before(first) {
			first = c.FirstTS
		}
		if c.LastTS.After(last) {
			last = c.LastTS
		}
	}
	return first, last
}

// poolCounts returns the connections per pool (client address → server).
func (r *Report) poolCounts() *poolSketch {
	if r.src != nil {
		return r.pools
	}
	var s poolSketch
	for i := range r.Connections {
		if c := r.Connections[i].Summary; c != nil {
			s.add(overviewKey{c.Client.Addr(), c.Server})
		}
	}
	return &s
}

// jsonFindings returns the findings as the JSON report holds them: in a
// Builder's report that does not hold every connection, each finding
// lists only its connections the report holds (connections_omitted
// counts the others), so that a finding naming a million connections
// does not make the report hold a million ids; the other renderers read
// the whole lists.
func (r *Report) jsonFindings() []Finding {
	if r.src == nil || r.ConnectionsIncluded == ConnsAll {
		return r.Findings
	}
	out := slices.Clone(r.Findings)
	for i := range out {
		f := &out[i]
		if f.ConnectionsOmitted == 0 {
			continue
		}
		kept := make([]event.ConnID, 0, len(f.Connections)-f.ConnectionsOmitted)
		for _, id := range f.Connections {
			if r.ConnectionsIncluded == ConnsNamed && r.include[id] {
				kept = append(kept, id)
			}
		}
		f.Connections = kept
	}
	return out
}
