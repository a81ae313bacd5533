package report

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// The spill file.
//
// A Builder keeps nothing of a finished connection in memory: its record
// (as the compact JSON the report writes), its timeline (encoded, see
// packed.go) and the few facts the HTML overview counts (connHead) go to
// a temporary file as it finishes, and the writers read them back in id
// order, once per pass, sequentially.
//
// Connections finish out of id order (a long one started first finishes
// last), so the file is written in sorted runs by replacement selection:
// finished records wait in a heap of at most spillBuffer bytes; when it is
// full the smallest id not below the last one written goes out, and a
// record with a smaller id waits for the next run. Connections finish
// nearly in id order, so runs are long (one for most captures); reading
// merges them, one buffered reader per run. The file is removed as soon
// as it is created (Unix keeps it until it is closed), so that nothing is
// left behind however the run ends.

// errSpillClosed reports a read of a spill file after Builder.Close.
var errSpillClosed = errors.New("report: spill file closed")

// spillBuffer bounds the bytes of the records waiting to be written.
var spillBuffer = 2 << 20

// spillReadBuffer is the read buffer of each run while they are merged.
const spillReadBuffer = 32 << 10

// connHead is what the HTML overview counts of every connection, besides
// its timeline.
type connHead struct {
	id             event.ConnID
	client, server netip.AddrPort
	first, last    time.Time
	// syn: a SYN was seen; closed: it ended by FIN or RST.
	syn, closed bool
}

// spillItem is one connection's encoded record.
type spillItem struct {
	id event.ConnID
	b  []byte
}

// itemHeap is a min-heap of records by id.
type itemHeap []spillItem

func (h *itemHeap) push(it spillItem) {
	q := append(*h, it)
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if q[p].id <= it.id {
			break
		}
		q[i] = q[p]
		i = p
	}
	q[i] = it
	*h = q
}

// pop removes and returns the record of the smallest id; h is not empty.
func (h *itemHeap) pop() spillItem {
	q := *h
	top := q[0]
	n := len(q) - 1
	last := q[n]
	q[n] = spillItem{}
	q = q[:n]
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && q[r].id < q[c].id {
			c = r
		}
		if last.id <= q[c].id {
			break
		}
		q[i] = q[c]
		i = c
	}
	if n > 0 {
		q[i] = last
	}
	*h = q
	return top
}

// idQueue holds records to be written in id order: those that come in
// increasing id order, as most do (connections finish nearly in id
// order), in a FIFO; the others in a heap.
type idQueue struct {
	q    []spillItem // ids increasing from q[head]
	head int
	h    itemHeap
}

func (x *idQueue) len() int { return len(x.q) - x.head + len(x.h) }

func (x *idQueue) push(it spillItem) {
	n := len(x.q)
	if n == x.head {
		x.q, x.head = x.q[:0], 0
	} else if x.q[n-1].id > it.id {
		x.h.push(it)
		return
	}
	if len(x.q) == cap(x.q) && x.head >= len(x.q)/2 {
		// Reuse the array rather than grow it.
		k := copy(x.q, x.q[x.head:])
		clear(x.q[k:])
		x.q, x.head = x.q[:k], 0
	}
	x.q = append(x.q, it)
}

// pop removes and returns the record of the smallest id; x is not
// empty.
func (x *idQueue) pop() spillItem {
	if x.head < len(x.q) && (len(x.h) == 0 || x.q[x.head].id < x.h[0].id) {
		it := x.q[x.head]
		x.q[x.head] = spillItem{}
		x.head++
		return it
	}
	return x.h.pop()
}

// spill writes records in sorted runs and reads them back merged.
type spill struct {
	f    *os.File
	w    *bufio.Writer
	off  int64 // bytes written
	runs []spillRun
	// cur holds the records that may still go into the current run, next
	// those that must wait for the next one; bytes counts both.
	cur, next idQueue
	bytes     int
	free      [][]byte // buffers of records written out, for add
	inRun     bool
	last      event.ConnID // the last id written in the current run
	count     int
	closed    bool
	err       error
	// ids, after a sharded run, maps the provisional IDs the records
	// were written with to final ones, which each hands out.
	ids *dissect.ConnIDs
	fix enc // each's buffer for a record made final
	// hdr is writeMin's for a record's length (a local array would
	// escape to the heap through the writer: an allocation a record).
	hdr [binary.MaxVarintLen64]byte
}

// spillRun is a sorted run: n bytes at off.
type spillRun struct{ off, n int64 }

// newSpill creates the spill file in dir (os.TempDir when empty) and
// removes its name at once.
func newSpill(dir string) (*spill, error) {
	f, err := os.CreateTemp(dir, "h2scope-spill-*")
	if err != nil {
		return nil, fmt.Errorf("report: spill file: %w", err)
	}
	// Where a file open cannot be removed (Windows), close removes it.
	os.Remove(f.Name())
	return &spill{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// add queues a copy of one connection's record.
func (s *spill) add(id event.ConnID, rec []byte) {
	s.push(id, append(s.buffer(), rec...))
}

// buffer returns an empty buffer for the next record: one of a record
// written out before, when there is one (the queue holds a few thousand
// records, a capture millions).
func (s *spill) buffer() []byte {
	n := len(s.free)
	if n == 0 {
		return nil
	}
	b := s.free[n-1][:0]
	s.free = s.free[:n-1]
	return b
}

// push queues one connection's record, b, which the spill owns from now
// on (buffer gave it, or no one else holds it).
func (s *spill) push(id event.ConnID, b []byte) {
	if s.err != nil {
		return
	}
	s.count++
	it := spillItem{id, b}
	if s.inRun && id < s.last {
		s.next.push(it)
	} else {
		s.cur.push(it)
	}
	s.bytes += len(b)
	for s.bytes > spillBuffer && s.err == nil {
		if s.cur.len() == 0 {
			s.endRun()
			s.cur, s.next = s.next, s.cur
		}
		s.writeMin()
	}
}

// writeMin writes the smallest record of cur to the current run.
func (s *spill) writeMin() {
	it := s.cur.pop()
	s.bytes -= len(it.b)
	if !s.inRun {
		s.inRun = true
		s.runs = append(s.runs, spillRun{off: s.off})
	}
	s.last = it.id
	n := binary.PutUvarint(s.hdr[:], uint64(len(it.b)))
	s.write(s.hdr[:n])
	s.write(it.b)
	if len(s.free) < maxSpillFree && cap(it.b) <= maxSpillFreeCap {
		s.free = append(s.free, it.b)
	}
}

// maxSpillFree bounds the buffers of written records a spill keeps for
// the next ones.
const maxSpillFree = 64

// maxSpillFreeCap bounds the capacity of a buffer a spill keeps: a rare
// large record's is not held for small ones.
const maxSpillFreeCap = 64 << 10

func (s *spill) write(b []byte) {
	if s.err != nil {
		return
	}
	n, err := s.w.Write(b)
	s.off += int64(n)
	if err != nil {
		s.err = fmt.Errorf("report: spill file: %w", err)
	}
}

func (s *spill) endRun() {
	if s.inRun {
		r := &s.runs[len(s.runs)-1]
		r.n = s.off - r.off
		s.inRun = false
	}
}

// finish writes what waits and flushes the file; reading may start.
func (s *spill) finish() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	for s.err == nil && (s.cur.len() > 0 || s.next.len() > 0) {
		if s.cur.len() == 0 {
			s.endRun()
			s.cur, s.next = s.next, s.cur
		}
		s.writeMin()
	}
	s.endRun()
	s.cur, s.next, s.free = idQueue{}, idQueue{}, nil
	if s.err == nil {
		if err := s.w.Flush(); err != nil {
			s.err = fmt.Errorf("report: spill file: %w", err)
		}
	}
	return s.err
}

// close closes and removes the file.
func (s *spill) close() error {
	if s == nil || s.f == nil {
		return nil
	}
	err := s.f.Close()
	os.Remove(s.f.Name()) // gone already, unless the system kept it
	s.f = nil
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	return err
}

// runReader reads one run's records.
type runReader struct {
	r    *bufio.Reader
	id   event.ConnID
	buf  []byte
	done bool
}

func (rr *runReader) next() error {
	n, err := binary.ReadUvarint(rr.r)
	if err == io.EOF {
		rr.done = true
		return nil
	}
	if err != nil {
		return errSpillCorrupt
	}
	if n > 1<<30 {
		return errSpillCorrupt
	}
	rr.buf = slices.Grow(rr.buf[:0], int(n))[:n]
	if _, err := io.ReadFull(rr.r, rr.buf); err != nil {
		return errSpillCorrupt
	}
	id, k := binary.Uvarint(rr.buf)
	if k <= 0 {
		return errSpillCorrupt
	}
	rr.id = event.ConnID(id)
	return nil
}

// each calls fn with every record in id order (b is valid during the
// call only) and stops at fn's first error.
func (s *spill) each(fn func(id event.ConnID, b []byte) error) error {
	if s == nil {
		return nil
	}
	if err := s.finish(); err != nil {
		return err
	}
	if s.f == nil {
		return errSpillClosed
	}
	var rs []*runReader
	for _, run := range s.runs {
		rr := &runReader{r: bufio.NewReaderSize(io.NewSectionReader(s.f, run.off, run.n), spillReadBuffer)}
		if err := rr.next(); err != nil {
			return err
		}
		if !rr.done {
			rs = append(rs, rr)
		}
	}
	for len(rs) > 0 {
		// Few runs: a linear scan for the smallest is as quick as a heap.
		i := 0
		for j := range rs {
			if cmp.Less(rs[j].id, rs[i].id) {
				i = j
			}
		}
		rr := rs[i]
		id, b := rr.id, rr.buf
		if s.ids != nil {
			var err error
			if id, b, err = s.final(b); err != nil {
				return err
			}
		}
		if err := fn(id, b); err != nil {
			return err
		}
		if err := rr.next(); err != nil {
			return err
		}
		if rr.done {
			rs = slices.Delete(rs, i, i+1)
		}
	}
	return nil
}

// final returns the ID and the record b, written with a provisional ID,
// with the final ID in its head, its JSON record and its timeline (the
// record is in s.fix, valid until the next call).
func (s *spill) final(b []byte) (event.ConnID, []byte, error) {
	r, err := decodeSpill(b)
	if err != nil {
		return 0, nil, err
	}
	d := dec{b: r.tl}
	lim := d.Int()
	sum := readTimeline(&d)
	tl := readTimeline(&d)
	if d.err != nil {
		return 0, nil, d.err
	}
	id := s.ids.Final(r.head.id)
	r.head.id, sum.Conn, tl.Conn = id, id, id
	// A packed record takes its ID from the head; the JSON of the
	// others is our encoding of a ConnRecord, which starts with its
	// ID: {"id":N,...
	rec := r.rec
	if !isPacked(rec) {
		const prefix = `{"id":`
		n := len(prefix)
		for n < len(r.rec) && r.rec[n] >= '0' && r.rec[n] <= '9' {
			n++
		}
		if !bytes.HasPrefix(r.rec, []byte(prefix)) || n == len(prefix) {
			return 0, nil, errSpillCorrupt
		}
		rec = append(strconv.AppendUint([]byte(prefix), uint64(id), 10), r.rec[n:]...)
	}
	s.fix.b = s.fix.b[:0]
	encodeSpillHead(&s.fix, &r.head, rec)
	s.fix.Int(lim)
	appendTimeline(&s.fix, &sum)
	appendTimeline(&s.fix, &tl)
	return id, s.fix.b, nil
}

// spillRecord is one connection as the spill holds it.
type spillRecord struct {
	head connHead
	// rec is the record: packed (packRecord) or its compact JSON, as
	// the report writes it (see appendJSON).
	rec []byte
	// tl is the encoded timeline: the cap on its events, then the two
	// parts mergeTimeline merges, the events of the connection's
	// summary and the rest (see timeline).
	tl []byte
}

// A connection's spill record is its head and record (encodeSpillHead),
// then its timeline in two parts, with the cap on its events before
// them: the events of its summary (as summaryTimeline makes them, or
// appendTCPTimeline encodes them) and the rest (as appendTimeline
// encodes them), which the timeline's readers merge (mergeTimeline):
// most connections are never read back.

// encodeSpillHead encodes a connection's head and record.
func encodeSpillHead(e *enc, h *connHead, rec []byte) {
	e.Uint(uint64(h.id))
	appendAddrPort(e, h.client)
	appendAddrPort(e, h.server)
	e.Time(h.first)
	appendLastTime(e, h.last, h.first)
	var flags uint64
	if h.syn {
		flags |= 1
	}
	if h.closed {
		flags |= 2
	}
	e.Uint(flags)
	e.Bytes(rec)
}

// appendLastTime appends t, a connection's last time, as Time does but
// in one byte when it is its first time too (a lone SYN's): 0 for the
// zero time, 1 for first, else t's nanoseconds plus 2 and its seconds.
func appendLastTime(e *enc, t, first time.Time) {
	switch {
	case t.IsZero():
		e.Uint(0)
	case t == first:
		e.Uint(1)
	default:
		e.Uint(uint64(t.Nanosecond()) + 2)
		e.Int(t.Unix())
	}
}

// readLastTime reads what appendLastTime appended, given first as
// read.
func readLastTime(d *dec, first time.Time) time.Time {
	switch ns := d.Uint(); ns {
	case 0:
		return time.Time{}
	case 1:
		return first
	default:
		return time.Unix(d.Int(), int64(ns-2)).UTC()
	}
}

// appendAddrPort appends a's binary form (AppendBinary) as Bytes does;
// an IPv4 address's directly.
func appendAddrPort(e *enc, a netip.AddrPort) {
	if ip := a.Addr(); ip.Is4() {
		v, p := ip.As4(), a.Port()
		e.b = append(e.b, 6, v[0], v[1], v[2], v[3], byte(p), byte(p>>8))
		return
	}
	// Its length, then its bytes, appended in place: a local buffer
	// would escape to the heap.
	start := len(e.b)
	e.b, _ = a.AppendBinary(append(e.b, 0))
	if n := len(e.b) - start - 1; n < 0x80 {
		e.b[start] = byte(n)
		return
	}
	b := append([]byte(nil), e.b[start+1:]...) // a long zone
	e.b = e.b[:start]
	e.Bytes(b)
}

// decodeSpill decodes a record up to its timeline, which it leaves
// encoded; the slices share b.
func decodeSpill(b []byte) (spillRecord, error) {
	d := dec{b: b}
	var r spillRecord
	r.head.id = event.ConnID(d.Uint())
	if err := r.head.client.UnmarshalBinary(d.Bytes()); err != nil && d.err == nil {
		d.err = errSpillCorrupt
	}
	if err := r.head.server.UnmarshalBinary(d.Bytes()); err != nil && d.err == nil {
		d.err = errSpillCorrupt
	}
	r.head.first = d.Time()
	r.head.last = readLastTime(&d, r.head.first)
	flags := d.Uint()
	r.head.syn, r.head.closed = flags&1 != 0, flags&2 != 0
	r.rec = d.Bytes()
	r.tl = d.b
	return r, d.err
}

// appendJSON appends the record's compact JSON to b.
func (r *spillRecord) appendJSON(b []byte) ([]byte, error) {
	if !isPacked(r.rec) {
		return append(b, r.rec...), nil
	}
	rec, err := unpackRecord(r.rec, &r.head)
	if err != nil {
		return b, err
	}
	b, ok := appendRecordJSON(b, &rec)
	if !ok {
		return b, errSpillCorrupt
	}
	return b, nil
}

// timeline decodes the record's timeline and merges its parts.
func (r *spillRecord) timeline() (Timeline, error) {
	d := dec{b: r.tl}
	lim := d.Int()
	sum := readTimeline(&d)
	tl := readTimeline(&d)
	if d.err != nil {
		return Timeline{}, d.err
	}
	return mergeTimeline(sum, tl, Limits{Events: int(lim)}), nil
}
