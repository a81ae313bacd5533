package tcp

import (
	"encoding/binary"
	"math"
	"time"
)

// Compact connections.
//
// Most of the connections a Tracker holds wait with nothing to deliver:
// idle open ones, and connections that have carried no payload (a SYN
// flood's unanswered SYNs, kept for IdleTimeout). Their tracking state
// (about a kilobyte: sequence analysis, reassembly, history) is then
// encoded as varints, mostly deltas from the initial
// sequence numbers and the last packet's time, in about a hundred bytes
// (Conn.rec), and the state itself is reused for another connection. A
// packet for a compact connection decodes it first (Tracker.expand), so
// every packet is analysed by the same code from the same state. A
// closed connection (kept for ClosedTimeout so that late packets are
// counted as Wireshark counts them, at most MaxClosed) is compacted only
// once its StreamGrace is over: before that, most are retired.
//
// What is left out of the encoding is what no later packet can reach: the
// reassembly's fingerprints of recent segments of a closed stream (it
// ignores new bytes), the buffered chunks (a connection is compact only
// when there are none), and the handler once both streams are closed (it
// is never called again; a connection with a stream open is compact only
// without a handler, or with discard); the encoding records whether the
// handler was asked for.

// maxFree bounds the tracking states, and the encodings, a Tracker keeps
// for reuse.
const maxFree = 1024

// maxRecReuse bounds the capacity of an encoding kept for reuse: most
// take about a hundred bytes.
const maxRecReuse = 256

// newState returns a tracking state for a new connection.
func (t *Tracker) newState() *state {
	st := t.free.Get()
	st.seq[0].winScale, st.seq[1].winScale = wsUnknown, wsUnknown
	return st
}

// freeState takes back a state no connection uses any more.
func (t *Tracker) freeState(st *state) {
	if t.free.Full() {
		return
	}
	b := st.hist.b[:0]
	*st = state{}
	st.hist.b = b
	t.free.Put(st)
}

// compactable reports whether c's state can be encoded: it has no bytes
// buffered, no handler that may still receive bytes, and is not waiting
// for StreamGrace.
func (c *Conn) compactable() bool {
	if c.state == nil || c.done {
		return false
	}
	// A handler may still be called while a stream is open; once both
	// are closed, it never is (their ends are delivered).
	if h := c.handler; h != nil && h != StreamHandler(discard{}) && !(c.streams[0].closed && c.streams[1].closed) {
		return false
	}
	for d := range c.streams {
		st := &c.streams[d]
		if len(st.pend) != 0 || st.pbytes != 0 || !st.closed && st.nrecent != 0 {
			return false
		}
	}
	return c.lastRef.Frame == c.LastFrame && c.lastRef.TS.Equal(c.LastTS)
}

// compact encodes c's state into c.rec and takes the state back, unless
// a value does not fit the encoding (a timestamp centuries away).
func (t *Tracker) compact(c *Conn) {
	if t.noCompact {
		return
	}
	e := encoder{b: t.buf[:0], base: c.LastTS, ok: true}
	e.state(c.state)
	t.buf = e.b
	if !e.ok {
		return
	}
	if t.verify != nil {
		t.verify(c, e.b)
	}
	if c.rec == nil && len(t.recs) > 0 {
		// The encoding of a finished connection, reused.
		c.rec = t.recs[len(t.recs)-1]
		t.recs[len(t.recs)-1] = nil
		t.recs = t.recs[:len(t.recs)-1]
	}
	c.rec = append(c.rec[:0], e.b...)
	t.freeState(c.state)
	c.state = nil
}

// expand decodes c's compact state.
func (t *Tracker) expand(c *Conn) {
	st := t.newState()
	d := decoder{b: c.rec, base: c.LastTS}
	d.state(st, c.streamsDone)
	st.lastRef.Frame, st.lastRef.TS = c.LastFrame, c.LastTS
	c.state = st
}

// encoder appends varints; base is the time times are encoded against.
// ok is cleared when a value cannot be encoded.
type encoder struct {
	b    []byte
	base time.Time
	ok   bool
}

func (e *encoder) u(v uint64) {
	if v < 0x80 {
		e.b = append(e.b, byte(v))
		return
	}
	e.b = binary.AppendUvarint(e.b, v)
}
func (e *encoder) i(v int64) { e.b = binary.AppendVarint(e.b, v) }

// rel encodes a sequence number as its distance from base.
func (e *encoder) rel(v, base uint32) { e.u(uint64(v - base)) }

// bits encodes booleans as one number, the first in bit 0.
func (e *encoder) bits(b ...bool) {
	var v uint64
	for i, x := range b {
		if x {
			v |= 1 << i
		}
	}
	e.u(v)
}

// maxRelSec bounds, in seconds, the distance from base a time is encoded
// at: within it, the distance in nanoseconds fits a time.Duration.
const maxRelSec = math.MaxInt64/int64(time.Second) - 1

// time encodes t as 0 when zero, else 1 and its distance from base:
// t.Sub(base), computed from seconds and nanoseconds where neither time
// is far from the Unix epoch nor from the other (capture times carry no
// monotonic reading, and Sub's overflow check costs an Add); else by Sub
// itself, which saturates when they are centuries apart.
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.u(0)
		return
	}
	e.u(1)
	a, b := t.Unix(), e.base.Unix()
	if ds := a - b; a >= -1<<62 && a <= 1<<62 && b >= -1<<62 && b <= 1<<62 && ds >= -maxRelSec && ds <= maxRelSec {
		e.i(ds*int64(time.Second) + int64(t.Nanosecond()-e.base.Nanosecond()))
		return
	}
	d := t.Sub(e.base)
	if d == math.MaxInt64 || d == math.MinInt64 {
		e.ok = false // Sub saturated: centuries apart
	}
	e.i(int64(d))
}

func (e *encoder) state(st *state) {
	for i := range st.seq {
		s := &st.seq[i]
		e.bits(s.baseSet, s.firstAck)
		e.u(uint64(s.baseSeq))
		e.rel(s.nextseq, s.baseSeq)
		e.time(s.nextseqTS)
		e.rel(s.maxToAck, s.baseSeq)
		e.u(uint64(s.lastack))
		e.time(s.lastackTS)
		e.u(uint64(s.window))
		e.i(int64(s.winScale))
		e.u(uint64(s.lastFlags))
		e.u(uint64(s.dupacks))
	}
	for i := range st.streams {
		s := &st.streams[i]
		base := st.seq[i].baseSeq
		e.bits(s.started, s.finSet, s.closed, s.cut)
		e.rel(s.next, base)
		e.rel(s.fin, base)
		if s.cut {
			e.rel(s.cutFrom, base)
			e.rel(s.cutTo, base)
		}
	}
	h := &st.hist
	e.u(uint64(len(h.b)))
	e.b = append(e.b, h.b...)
	for d := range 2 {
		e.u(uint64(h.once[d]))
		for _, n := range h.logN[d] {
			e.u(n)
		}
		e.bits(h.lastSet[d][:]...)
		for k, set := range h.lastSet[d] {
			if set {
				e.rel(h.last[d][k], st.seq[d].baseSeq)
			}
		}
	}
	e.time(st.synTS)
	e.i(int64(st.irtt))
	e.bits(st.sawSYN[0], st.sawSYN[1], st.fin[0], st.fin[1], st.rst[0], st.rst[1], st.earlyRST, st.handler != nil)
	e.u(uint64(st.ep[0]) | uint64(st.ep[1])<<4)
	e.i(int64(st.lastRef.File))
}

// decoder reads what encoder wrote.
type decoder struct {
	b    []byte
	base time.Time
}

func (d *decoder) u() uint64 {
	if b := d.b[0]; b < 0x80 {
		d.b = d.b[1:]
		return uint64(b)
	}
	v, n := binary.Uvarint(d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) i() int64 {
	v, n := binary.Varint(d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) rel(base uint32) uint32 { return base + uint32(d.u()) }

func (d *decoder) bits(b ...*bool) {
	v := d.u()
	for i, x := range b {
		*x = v&(1<<i) != 0
	}
}

func (d *decoder) time() time.Time {
	if d.u() == 0 {
		return time.Time{}
	}
	return d.base.Add(time.Duration(d.i()))
}

func (d *decoder) state(st *state, streamsDone bool) {
	for i := range st.seq {
		s := &st.seq[i]
		d.bits(&s.baseSet, &s.firstAck)
		s.baseSeq = uint32(d.u())
		s.nextseq = d.rel(s.baseSeq)
		s.nextseqTS = d.time()
		s.maxToAck = d.rel(s.baseSeq)
		s.lastack = uint32(d.u())
		s.lastackTS = d.time()
		s.window = uint32(d.u())
		s.winScale = int8(d.i())
		s.lastFlags = Analysis(d.u())
		s.dupacks = uint32(d.u())
	}
	for i := range st.streams {
		s := &st.streams[i]
		base := st.seq[i].baseSeq
		d.bits(&s.started, &s.finSet, &s.closed, &s.cut)
		s.next = d.rel(base)
		s.fin = d.rel(base)
		if s.cut {
			s.cutFrom = d.rel(base)
			s.cutTo = d.rel(base)
		}
	}
	h := &st.hist
	n := int(d.u())
	h.b = append(h.b[:0], d.b[:n]...)
	d.b = d.b[n:]
	for k := range 2 {
		h.once[k] = uint8(d.u())
		for j := range h.logN[k] {
			h.logN[k][j] = d.u()
		}
		ls := &h.lastSet[k]
		d.bits(&ls[0], &ls[1], &ls[2], &ls[3])
		for j, set := range ls {
			if set {
				h.last[k][j] = d.rel(st.seq[k].baseSeq)
			}
		}
	}
	st.synTS = d.time()
	st.irtt = time.Duration(d.i())
	var asked bool
	d.bits(&st.sawSYN[0], &st.sawSYN[1], &st.fin[0], &st.fin[1], &st.rst[0], &st.rst[1], &st.earlyRST, &asked)
	if asked || streamsDone {
		st.handler = discard{}
	}
	ep := d.u()
	st.ep[0], st.ep[1] = epState(ep&15), epState(ep>>4)
	st.lastRef.File = int(d.i())
}
