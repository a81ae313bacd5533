package tcp

import (
	"net/netip"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
)

// Half-open connections.
//
// A connection only one side of which has sent anything, and nothing but
// control segments (an unanswered SYN, above all), is kept as a half: its
// endpoints, its place in the table and in the order of activity, and its
// summary and tracking state encoded in a few dozen bytes, about 170 bytes
// in all (and the encoding, when there is one) where a compact Conn holds
// 600. It becomes a Conn again (a new one: nobody kept the old, see
// demotable) at its next packet, when it is evicted or timed out, or at
// Flush. A connection that one segment made
// (one SYN) keeps that segment's fields instead of an encoding, and is
// made again by replaying it: newConn's and add's code on the same
// segment, which costs less than encoding and decoding. Finished (evicted,
// timed out or flushed), it is not even made again: its summary is
// that of an earlier one of the same shape (see finishHalf).
//
// Halves have a list of their own beside Tracker.open: both are in order
// of last activity, which is the order of last frame, so the least
// recently active of the open connections (evicted past MaxConns, timed
// out first) is the one of the two heads with the lower last frame.

// half is a half-open connection; see above.
type half struct {
	client, server netip.AddrPort
	hash           uint64 // of the endpoints (table.hash)
	prev, next     *half  // in halfList, less and more recently active
	lastFrame      uint64
	lastTS         time.Time
	id             event.ConnID
	// rec holds the summary, then the state (see demote); nil when the
	// connection is made again from first, its only segment (see
	// replay).
	rec   []byte
	first firstSeg
}

// firstSeg is what a connection's first segment is made of, beside its
// endpoints and frame: a connection that only one segment without
// payload, FIN or RST has reached (an unanswered SYN, above all) is
// made again from it by replaying it, rather than encoded and decoded.
type firstSeg struct {
	seq, ack uint32
	win      uint16
	flags    layer.Flags
	file     uint16 // of its Ref
	wscale   int8
	c2s      bool // sent by the client
}

// maxSpare bounds Tracker.spare and Tracker.freeHalves.
const maxSpare = 1024

// halfChunk is how many halves are allocated at once: a SYN flood makes
// one per SYN, and they are finished about in the order they were made
// (evicted or timed out oldest first), so a chunk is soon let go whole.
// 97 halves of 168 bytes fit the allocator's 16 KiB size class (98
// would take one of 18 KiB).
const halfChunk = 97

// newConnObject returns a zero Conn, reusing a spare one, cleared when
// it was let go: one that became a half in an earlier call (Add's caller
// let it go since), or one finished (Options.ReuseConns).
func (t *Tracker) newConnObject() *Conn { return t.spare.Get() }

// halfList is a list of halves in order of last activity.
type halfList struct {
	head, tail *half
	n          int
}

func (l *halfList) push(h *half) {
	l.n++
	h.prev = l.tail
	if l.tail != nil {
		l.tail.next = h
	} else {
		l.head = h
	}
	l.tail = h
}

func (l *halfList) remove(h *half) {
	l.n--
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		l.head = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	} else {
		l.tail = h.prev
	}
	h.prev, h.next = nil, nil
}

// halfTable is table for halves; it shares table's seed and hash.
type halfTable struct{ oaTable[half] }

func (t *halfTable) get(a, b netip.AddrPort, hash uint64) *half {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := hash & mask; ; i = (i + 1) & mask {
		e := &t.slots[i]
		if e.p == nil {
			return nil
		}
		if h := e.p; e.hash == hash && (h.client == a && h.server == b || h.client == b && h.server == a) {
			return h
		}
	}
}

func (t *halfTable) add(h *half) { t.oaTable.add(h, h.hash) }

func (t *halfTable) remove(h *half) { t.oaTable.remove(h, h.hash) }

// demotable reports whether c is to be kept as a half: only one side has
// sent, nothing but control segments, and nothing but the tracker has
// seen it beyond the segments (no handler, no User, no summary finalised,
// no anomaly). The Conn is then let go: the callers of Add use it only
// until the next call.
func (c *Conn) demotable() bool {
	if c.state == nil || c.done || c.streamsDone || c.graceQueued || c.User != nil || c.handler != nil || c.list == nil {
		return false
	}
	s := &c.Summary
	if s.Packets.C2S != 0 && s.Packets.S2C != 0 || s.Bytes != (Pair{}) || s.StreamBytes != (Pair{}) || s.MissedBytes != 0 ||
		s.Proto != "" || s.ConnState != "" || s.History != "" || s.Close != "" || s.DurationMS != 0 ||
		s.HandshakeRTTMS != nil || s.WindowScale.C2S != nil || s.WindowScale.S2C != nil || s.Anomalies != nil {
		return false
	}
	return !c.closed() && c.compactable()
}

// maxYoung is how many demotable connections wait as Conns before they
// are demoted: a SYN answered soon (by the time maxYoung other new
// connections were seen) is never encoded as a half and decoded back at
// its SYN-ACK.
const maxYoung = 128

// queueYoung queues c, demotable, to be demoted once maxYoung newer
// demotable connections were queued, if it still is demotable then (no
// packet of the other side came, it was not finished). Keeping it whole
// meanwhile changes nothing but memory: a half holds all a demotable
// Conn holds, and both lists are in order of activity.
func (t *Tracker) queueYoung(c *Conn) {
	if c.youngQueued {
		return
	}
	if t.youngN == len(t.young) {
		o, gen := t.young[t.youngHead], t.youngGen[t.youngHead]
		t.young[t.youngHead] = nil
		t.youngHead = (t.youngHead + 1) % len(t.young)
		t.youngN--
		// A finished Conn is its caller's now, or another connection's
		// (gen): not even read.
		if o.gen == gen && !o.done {
			o.youngQueued = false
			if o.demotable() {
				t.demote(o)
			}
		}
	}
	i := (t.youngHead + t.youngN) % len(t.young)
	t.young[i], t.youngGen[i] = c, c.gen
	t.youngN++
	c.youngQueued = true
	if t.youngN == len(t.young) {
		// The next to be demoted (at the next new connection, if it is
		// still demotable) is inserted there.
		t.halves.prefetch(t.young[t.youngHead].hash)
	}
}

// demote replaces c, which is demotable and in the open list, with a half.
func (t *Tracker) demote(c *Conn) {
	if c.firstSet && c.Packets.C2S+c.Packets.S2C == 1 {
		h := t.freeHalves.Get()
		h.client, h.server, h.hash, h.lastFrame, h.lastTS, h.id = c.Client, c.Server, c.hash, c.LastFrame, c.LastTS, c.ID
		h.first = c.first
		if t.verifyReplay != nil {
			r := t.replay(h)
			t.verifyReplay(c, r)
			t.freeState(r.state)
		}
		t.let(c, h)
		return
	}
	e := encoder{b: t.buf[:0], base: c.LastTS, ok: true}
	e.state(c.state)
	n := len(e.b)
	s := &c.Summary
	e.u(uint64(s.ID))
	e.bits(s.ClientGuessed)
	e.u(s.FirstFrame)
	e.u(s.LastFrame - s.FirstFrame)
	e.time(s.FirstTS)
	e.u(s.Packets.C2S)
	e.u(s.Packets.S2C)
	for _, v := range summaryCounts(s) {
		e.u(uint64(*v))
	}
	t.buf = e.b
	if !e.ok {
		return
	}
	if t.verify != nil {
		t.verify(c, e.b[:n])
	}
	h := t.freeHalves.Get()
	h.client, h.server, h.hash, h.lastFrame, h.lastTS, h.id = c.Client, c.Server, c.hash, c.LastFrame, c.LastTS, c.ID
	// rec is an allocation of its own: only a half of more than one
	// segment (retried SYNs) has one, and an array in every half (96
	// bytes) cost a flood's 65,536 halves 6 MB.
	h.rec = append([]byte(nil), e.b...)
	t.let(c, h)
}

// let puts half h in the place of c, and lets c go.
func (t *Tracker) let(c *Conn, h *half) {
	c.list.remove(c)
	t.conns.remove(c)
	if slot := &t.recent[recentSlot(c.Client.Port(), c.Server.Port())]; *slot == c {
		*slot = nil
	}
	t.freeState(c.state)
	c.state = nil
	t.spareConn(c)
	t.hlist.push(h)
	t.halves.add(h)
}

// promote replaces h with a Conn, in the table and at the most recently
// active end of the open list, or, if keep is false, in neither: it is
// to be finished at once.
func (t *Tracker) promote(h *half, keep bool) *Conn {
	t.hlist.remove(h)
	t.halves.remove(h)
	var c *Conn
	if h.rec == nil {
		c = t.replay(h)
	} else {
		c = t.decodeHalf(h)
	}
	c.hash = h.hash
	if keep {
		t.conns.add(c, c.hash)
		t.open.push(c)
	}
	t.freeHalf(h)
	return c
}

// freeHalf keeps h, out of the list and the table and read, for reuse.
func (t *Tracker) freeHalf(h *half) {
	if !t.freeHalves.Full() {
		*h = half{}
		t.freeHalves.Put(h)
	}
}

// replay makes the Conn of h, which holds its only segment (first), as
// newConn and add made it: the same code on the same segment.
func (t *Tracker) replay(h *half) *Conn {
	s := h.segment()
	c := t.newConnObject()
	t.initConn(c, &s, h.id)
	t.track(c, &s, false)
	return c
}

// segment returns h's only segment, for a half made again from it.
func (h *half) segment() layer.Segment {
	f := &h.first
	s := layer.Segment{
		Ref: event.Ref{File: int(f.file), Frame: h.lastFrame, TS: h.lastTS},
		Src: h.client, Dst: h.server,
		Seq: f.seq, Ack: f.ack, Win: f.win, Flags: f.flags, WScale: f.wscale,
	}
	if !f.c2s {
		s.Src, s.Dst = h.server, h.client
	}
	return s
}

// finishHalf finishes h, evicted, timed out or flushed, as promote (not
// keeping it) and finish would, and forgets it.
//
// A half made of one segment (an unanswered SYN) is finished without
// its Conn being made by replay and its streams ended: its finished
// summary is that of the last such half with the same shape (see
// halfShape) but for the fields that tell connections apart, which the
// Tracker keeps (Tracker.shape, Tracker.shapeSum). The Conn handed over
// has no tracking state; the callbacks cannot tell.
func (t *Tracker) finishHalf(h *half) {
	if h.rec != nil || t.noShape {
		t.finish(t.promote(h, false))
		return
	}
	s := h.segment()
	k := shapeOf(&s, h.first.c2s)
	if !t.shapeSet || k != t.shape {
		// Made again and finished as any half, its summary kept for the
		// next of its shape.
		c := t.promote(h, false)
		t.shape, t.shapeSum, t.shapeSet = k, finishedSummary(c, &t.histories), true
		t.finish(c)
		return
	}
	t.hlist.remove(h)
	t.halves.remove(h)
	c := t.newConnObject()
	c.Summary = t.shapeSum
	c.ID, c.Client, c.Server = h.id, h.client, h.server
	c.FirstFrame, c.LastFrame, c.FirstTS, c.LastTS = h.lastFrame, h.lastFrame, h.lastTS, h.lastTS
	c.hash = h.hash
	if t.verifyShape != nil {
		r := t.replay(h)
		r.finalize(&t.histories)
		t.verifyShape(c, r)
		t.freeState(r.state)
	}
	t.freeHalf(h)
	c.done, c.streamsDone = true, true
	if t.opts.OnStreamsDone != nil {
		t.opts.OnStreamsDone(c)
	}
	if t.opts.OnFinish != nil {
		t.opts.OnFinish(c)
	}
	t.reuse(c)
}

// halfShape is what the finished summary of a connection made of one
// segment without payload, FIN or RST depends on, beside its endpoints,
// ID, frame and time: the segment's flags, direction and window-scale
// option, and its analysis (which alone depends on its sequence and
// acknowledgement numbers and window, analysed against the fresh state
// of a new connection).
type halfShape struct {
	flags  layer.Flags
	wscale int8
	c2s    bool
	a      Analysis
}

// shapeOf returns the shape of segment s, the only one of its
// connection, sent by the client if c2s.
func shapeOf(s *layer.Segment, c2s bool) halfShape {
	var fwd, rev seqInfo
	fwd.winScale, rev.winScale = wsUnknown, wsUnknown
	return halfShape{flags: s.Flags, wscale: s.WScale, c2s: c2s, a: analyze(&fwd, &rev, s, s.Ref.TS, 0)}
}

// finishedSummary returns the summary c, made by replay, will have when
// finished, without the fields that tell connections apart: what its
// streams' end adds to it, a connection of one segment without payload,
// FIN or RST gets from finalize alone.
func finishedSummary(c *Conn, names *interner) Summary {
	f := *c
	f.finalize(names)
	s := f.Summary
	s.ID, s.Client, s.Server = 0, netip.AddrPort{}, netip.AddrPort{}
	s.FirstFrame, s.LastFrame, s.FirstTS, s.LastTS = 0, 0, time.Time{}, time.Time{}
	return s
}

// decodeHalf makes the Conn of h from its encoding.
func (t *Tracker) decodeHalf(h *half) *Conn {
	c := t.newConnObject()
	c.state = t.newState()
	c.Client, c.Server, c.LastFrame, c.LastTS = h.client, h.server, h.lastFrame, h.lastTS
	d := decoder{b: h.rec, base: h.lastTS}
	d.state(c.state, false)
	c.lastRef.Frame, c.lastRef.TS = c.LastFrame, c.LastTS
	s := &c.Summary
	s.ID = event.ConnID(d.u())
	d.bits(&s.ClientGuessed)
	s.FirstFrame = d.u()
	s.LastFrame = s.FirstFrame + d.u()
	s.FirstTS = d.time()
	s.Packets.C2S = d.u()
	s.Packets.S2C = d.u()
	for _, v := range summaryCounts(s) {
		*v = int(d.u())
	}
	return c
}

// summaryCounts lists the summary's counters a half keeps.
func summaryCounts(s *Summary) [14]*int {
	return [14]*int{&s.SYNs, &s.SYNACKs, &s.Retransmissions, &s.FastRetransmissions, &s.SpuriousRetransmissions,
		&s.OutOfOrder, &s.LostSegments, &s.AckLostSegments, &s.DupACKs, &s.ZeroWindows, &s.ZeroWindowProbes,
		&s.WindowFull, &s.WindowUpdates, &s.KeepAlives}
}

// oldestOpen returns the least recently active open connection, a half
// (h) or a Conn (c); both nil when there is none.
func (t *Tracker) oldestOpen() (c *Conn, h *half) {
	c, h = t.open.head, t.hlist.head
	switch {
	case h == nil:
		return c, nil
	case c == nil || h.lastFrame < c.LastFrame:
		return nil, h
	}
	return c, nil
}
