package report

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/internal/statecodec"
)

// A capture split over runs, possibly on several machines (see
// analyze.Partial), gets one Builder per run. Each run's Builder hands
// over its part of the report in two pieces: a Partial, what it counted
// of its connections (small, mergeable, encodable), and its connections'
// records, written as a stream in order of provisional ID
// (Builder.Partial). A Builder on the machine that merges takes every
// run's Partial and record stream (AddPartial), merging the streams into
// its spill file as it reads them, and its Report, given the merged
// analysis, is the report of one run over the whole capture. Neither
// side holds more records in memory than a Builder does.

// Partial is what a Builder counted of the connections of one run of a
// split capture (see Builder.Partial).
type Partial struct {
	folds builderFolds
	// keys is what the run's key log held and how its sessions fitted
	// it; keysSet says it was read (Builder.Keys set).
	keys    tls.KeyLogStats
	keysSet bool
}

// partialWire is a Partial as it is encoded.
type partialWire struct {
	Folds   builderFolds
	Keys    tls.KeyLogStats
	KeysSet bool
}

// MarshalBinary encodes p.
func (p *Partial) MarshalBinary() ([]byte, error) {
	b, err := statecodec.Encode([]byte(reportPartialMagic), &partialWire{p.folds, p.keys, p.keysSet})
	if err != nil {
		return nil, fmt.Errorf("report: encoding a partial: %w", err)
	}
	return b, nil
}

const reportPartialMagic = "h2scope.report-partial/1\n"

// UnmarshalBinary decodes a Partial MarshalBinary encoded; it returns an
// error, never panics, on other bytes.
func (p *Partial) UnmarshalBinary(b []byte) error {
	if len(b) < len(reportPartialMagic) || string(b[:len(reportPartialMagic)]) != reportPartialMagic {
		return errors.New("report: not an h2scope partial report")
	}
	var w partialWire
	if err := statecodec.Decode(b[len(reportPartialMagic):], &w); err != nil {
		return fmt.Errorf("report: decoding a partial: %w", err)
	}
	*p = Partial{folds: w.Folds, keys: w.Keys, keysSet: w.KeysSet}
	return nil
}

// Merge adds o, the Partial of another run of the same capture.
func (p *Partial) Merge(o *Partial) {
	p.folds.merge(&o.folds)
	if o.keysSet {
		// Every run reads the same key logs and the capture's
		// Decryption Secrets Blocks: what they held is the same in
		// each; the sessions looked up are each run's own.
		p.keys.Secrets = max(p.keys.Secrets, o.keys.Secrets)
		p.keys.Sources = max(p.keys.Sources, o.keys.Sources)
		p.keys.Sessions = max(p.keys.Sessions, o.keys.Sessions)
		p.keys.Matched += o.keys.Matched
		p.keys.Missing += o.keys.Missing
		p.keysSet = true
	}
}

// merge adds o's counts, o being over other connections. The pool
// sketch's entries are disjoint (a run holds every connection between
// its address pairs); past maxSketchPools pools it merges as
// Misra-Gries summaries do, within the same bound.
func (f *builderFolds) merge(o *builderFolds) {
	f.conns += o.conns
	f.tlsConns += o.tlsConns
	for r, n := range o.undecrypted {
		if f.undecrypted == nil {
			f.undecrypted = map[string]int{}
		}
		f.undecrypted[r] += n
	}
	if !o.first.IsZero() && (f.first.IsZero() || o.first.Before(f.first)) {
		f.first = o.first
	}
	if o.last.After(f.last) {
		f.last = o.last
	}
	f.pools.merge(&o.pools)
}

// merge adds o's counts to s's.
func (s *poolSketch) merge(o *poolSketch) {
	s.distinct += o.distinct
	s.overflowed = s.overflowed || o.overflowed
	for k, n := range o.counts {
		if s.counts == nil {
			s.counts = map[overviewKey]int{}
		}
		s.counts[k] += n
	}
	defer s.countHeavy()
	if len(s.counts) <= maxSketchPools {
		return
	}
	s.overflowed = true
	ns := make([]int, 0, len(s.counts))
	for _, n := range s.counts {
		ns = append(ns, n)
	}
	slices.SortFunc(ns, func(a, b int) int { return cmp.Compare(b, a) })
	cut := ns[maxSketchPools]
	for k, n := range s.counts {
		if n <= cut {
			delete(s.counts, k)
		} else {
			s.counts[k] = n - cut
		}
	}
}

// Partial ends the Builder of one run of a split capture: it completes
// the connections Add saw and Done did not (as Report does), writes
// every connection's record to records (when not nil; a merged report
// holding no connection, ConnsNone, needs none) in order of provisional
// ID, and returns what the Builder counted. The Builder takes nothing
// more afterwards.
func (b *Builder) Partial(records io.Writer) (*Partial, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finishPending()
	if b.err != nil {
		return nil, b.err
	}
	if records != nil && b.spill != nil {
		w := bufio.NewWriterSize(records, 64<<10)
		var hdr [binary.MaxVarintLen64]byte
		_, err := w.WriteString(partialRecordsMagic)
		err = cmp.Or(err, b.spill.each(func(_ event.ConnID, rec []byte) error {
			n := binary.PutUvarint(hdr[:], uint64(len(rec)))
			if _, err := w.Write(hdr[:n]); err != nil {
				return err
			}
			_, err := w.Write(rec)
			return err
		}))
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return nil, fmt.Errorf("report: writing the records of a partial: %w", err)
		}
	}
	p := &Partial{folds: b.folds}
	if b.Keys != nil {
		p.keys, p.keysSet = b.Keys.Stats(), true
	}
	return p, nil
}

// partialRecordsMagic starts a stream of records Builder.Partial
// writes: the records' encoding changes between versions, and a stream
// from another build must not be read as this one's.
const partialRecordsMagic = "h2scope.report-records/2\n"

// readRecordsMagic reads the start of a record stream: nothing (a run
// that spilled no connection writes none) or partialRecordsMagic.
func readRecordsMagic(r *bufio.Reader) error {
	if _, err := r.Peek(1); err == io.EOF {
		return nil
	}
	b, err := r.Peek(len(partialRecordsMagic))
	if err != nil || string(b) != partialRecordsMagic {
		return errors.New("report: the records of a partial are not this version's (written by another h2scope build, or not records)")
	}
	_, err = r.Discard(len(partialRecordsMagic))
	return err
}

// AddPartial adds to b, a Builder that saw no connection itself, the
// merged Partial of every run of a split capture and their record
// streams (as Builder.Partial wrote them; none when the report holds no
// connection), merged by provisional ID into b's spill file as they are
// read. res and ids are the merged analysis's Result and connection IDs
// (analyze.Partial.Result, Stats.IDs): a report holding the named
// connections spills only those, and reads each stream only up to the
// last of them (the rest is left unread). Report, given the same analysis
// (analyze.Partial.Input and Result), then builds the report one run
// over the whole capture gives.
func (b *Builder) AddPartial(p *Partial, res analyze.Result, ids *dissect.ConnIDs, records ...io.Reader) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := b.keep(res, ids)
	b.folds.merge(&p.folds)
	if p.keysSet {
		k := p.keys
		b.keyStats = &k
	}
	// A Builder makes its spill file at the first connection: a report
	// of none writes its timelines as null, as the whole run's does.
	if b.spill == nil && b.folds.conns > 0 {
		if b.spill, b.err = newSpill(b.SpillDir); b.err != nil {
			return b.err
		}
	}
	// A stream's records come in order of provisional ID: once past the
	// last ID kept, the rest of it is not read (with no connection
	// named, only each stream's first record is).
	var last event.ConnID
	for id := range keep {
		last = max(last, id)
	}
	wanted := func(rr *runReader) bool { return !rr.done && (keep == nil || rr.id <= last) }
	rs := make([]*runReader, 0, len(records))
	for _, r := range records {
		rr := &runReader{r: bufio.NewReaderSize(r, spillReadBuffer)}
		if err := readRecordsMagic(rr.r); err != nil {
			return err
		}
		if err := rr.next(); err != nil {
			return fmt.Errorf("report: reading the records of a partial: %w", err)
		}
		if wanted(rr) {
			rs = append(rs, rr)
		}
	}
	for len(rs) > 0 {
		i := 0
		for j := range rs {
			if rs[j].id < rs[i].id {
				i = j
			}
		}
		rr := rs[i]
		if b.spill == nil {
			return errors.New("report: records in a partial that counts no connection")
		}
		if keep == nil || keep[rr.id] {
			b.spill.add(rr.id, rr.buf) // add copies it
			if b.spill.err != nil {
				b.err = b.spill.err
				return b.err
			}
		}
		if err := rr.next(); err != nil {
			return fmt.Errorf("report: reading the records of a partial: %w", err)
		}
		if !wanted(rr) {
			rs = slices.Delete(rs, i, i+1)
		}
	}
	return nil
}

// keep returns the provisional IDs of the connections a report of res
// holds with b's selection, when it holds the named ones (namedConns);
// nil when it holds them all. ids maps provisional IDs to res's final
// ones.
func (b *Builder) keep(res analyze.Result, ids *dissect.ConnIDs) map[event.ConnID]bool {
	if b.Connections != "" && b.Connections != ConnsNamed {
		return nil
	}
	fs := make([]Finding, len(res.Findings))
	for i := range res.Findings {
		fs[i].Finding = res.Findings[i]
	}
	prov := ids.Provisional()
	keep := map[event.ConnID]bool{}
	for id := range namedConns(fs, b.PerFinding, b.MaxConnections) {
		if int(id) < len(prov) {
			keep[prov[id]] = true
		}
	}
	return keep
}

// finishPending completes the connections Add saw and Done did not,
// in order of ID, from their analyze.Conn, whose summary is final by
// now. b.mu is held.
func (b *Builder) finishPending() {
	b.pmu.Lock()
	var pending []pendingConn
	for _, p := range b.pending {
		if p.c != nil {
			pending = append(pending, p)
		}
	}
	b.pending, b.freeSlots = nil, nil
	b.pmu.Unlock()
	slices.SortFunc(pending, func(x, y pendingConn) int { return cmp.Compare(x.conn, y.conn) })
	for i := range pending {
		p := &pending[i]
		sum := *p.c.TCP
		b.finish(p, p.c, &sum)
	}
}
