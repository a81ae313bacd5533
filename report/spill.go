package report

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
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

type itemHeap []spillItem

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].id < h[j].id }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(spillItem)) }
func (h *itemHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// spill writes records in sorted runs and reads them back merged.
type spill struct {
	f    *os.File
	w    *bufio.Writer
	off  int64 // bytes written
	runs []spillRun
	// cur holds the records that may still go into the current run, next
	// those that must wait for the next one; bytes counts both.
	cur, next itemHeap
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
	if s.err != nil {
		return
	}
	s.count++
	// The copy goes into a buffer of a record written out before, when
	// one is large enough: the queue holds a few thousand records, a
	// capture millions.
	var b []byte
	if n := len(s.free); n > 0 && cap(s.free[n-1]) >= len(rec) {
		b, s.free = s.free[n-1][:0], s.free[:n-1]
	}
	b = append(b, rec...)
	it := spillItem{id, b}
	if s.inRun && id < s.last {
		heap.Push(&s.next, it)
	} else {
		heap.Push(&s.cur, it)
	}
	s.bytes += len(b)
	for s.bytes > spillBuffer && s.err == nil {
		if s.cur.Len() == 0 {
			s.endRun()
			s.cur, s.next = s.next, s.cur[:0]
		}
		s.writeMin()
	}
}

// writeMin writes the smallest record of cur to the current run.
func (s *spill) writeMin() {
	it := heap.Pop(&s.cur).(spillItem)
	s.bytes -= len(it.b)
	if !s.inRun {
		s.inRun = true
		s.runs = append(s.runs, spillRun{off: s.off})
	}
	s.last = it.id
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(it.b)))
	s.write(hdr[:n])
	s.write(it.b)
	if len(s.free) < maxSpillFree {
		s.free = append(s.free, it.b)
	}
}

// maxSpillFree bounds the buffers of written records a spill keeps for
// the next ones.
const maxSpillFree = 64

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
	for s.err == nil && (s.cur.Len() > 0 || s.next.Len() > 0) {
		if s.cur.Len() == 0 {
			s.endRun()
			s.cur, s.next = s.next, s.cur[:0]
		}
		s.writeMin()
	}
	s.endRun()
	s.cur, s.next, s.free = nil, nil, nil
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
		return errors.New("report: spill file closed")
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
	tl, err := r.timeline()
	if err != nil {
		return 0, nil, err
	}
	id := s.ids.Final(r.head.id)
	r.head.id, tl.Conn = id, id
	// The record is our encoding of a ConnRecord, which starts with
	// its ID: {"id":N,...
	const prefix = `{"id":`
	n := len(prefix)
	for n < len(r.rec) && r.rec[n] >= '0' && r.rec[n] <= '9' {
		n++
	}
	if !bytes.HasPrefix(r.rec, []byte(prefix)) || n == len(prefix) {
		return 0, nil, errSpillCorrupt
	}
	rec := append(strconv.AppendUint([]byte(prefix), uint64(id), 10), r.rec[n:]...)
	s.fix.b = s.fix.b[:0]
	encodeSpill(&s.fix, &r.head, rec, &tl)
	return id, s.fix.b, nil
}

// spillRecord is one connection as the spill holds it.
type spillRecord struct {
	head connHead
	// rec is the record's compact JSON, as the report writes it.
	rec []byte
	// tl is the encoded timeline (readTimeline).
	tl []byte
}

// encodeSpill encodes one connection.
func encodeSpill(e *enc, h *connHead, rec []byte, tl *Timeline) {
	e.Uint(uint64(h.id))
	c, _ := h.client.MarshalBinary()
	e.Bytes(c)
	sv, _ := h.server.MarshalBinary()
	e.Bytes(sv)
	e.Time(h.first)
	e.Time(h.last)
	var flags uint64
	if h.syn {
		flags |= 1
	}
	if h.closed {
		flags |= 2
	}
	e.Uint(flags)
	e.Bytes(rec)
	appendTimeline(e, tl)
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
	r.head.last = d.Time()
	flags := d.Uint()
	r.head.syn, r.head.closed = flags&1 != 0, flags&2 != 0
	r.rec = d.Bytes()
	r.tl = d.b
	return r, d.err
}

// timeline decodes the record's timeline.
func (r *spillRecord) timeline() (Timeline, error) {
	d := dec{b: r.tl}
	tl := readTimeline(&d)
	return tl, d.err
}
