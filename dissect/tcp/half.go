package tcp

import (
	"net/netip"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// Half-open connections.
//
// A connection only one side of which has sent anything, and nothing but
// control segments (an unanswered SYN, above all), is kept as a half: its
// endpoints, its place in the table and in the order of activity, and its
// summary and tracking state encoded in a few dozen bytes, about 200 bytes
// in all where a compact Conn holds 600. It becomes a Conn again (a new
// one: nobody kept the old, see demotable) at its next packet, when it is
// evicted or timed out, or at Flush.
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
	rec            []byte   // the summary, then the state (see demote)
	recBuf         [96]byte // rec when it fits (one SYN takes about 80)
}

// maxSpare bounds Tracker.spare and Tracker.freeHalves.
const maxSpare = 1024

// halfChunk is how many halves are allocated at once: a SYN flood makes
// one per SYN, and they are finished about in the order they were made
// (evicted or timed out oldest first), so a chunk is soon let go whole.
const halfChunk = 64

// newConnObject returns a zero Conn, reusing a spare one: one that
// became a half in an earlier call (Add's caller let it go since).
func (t *Tracker) newConnObject() *Conn {
	c := t.spare.Get()
	*c = Conn{}
	return c
}

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
		o := t.young[t.youngHead]
		t.young[t.youngHead] = nil
		t.youngHead = (t.youngHead + 1) % len(t.young)
		t.youngN--
		// A finished Conn is its caller's now: not even read.
		if !o.done {
			o.youngQueued = false
			if o.demotable() {
				t.demote(o)
			}
		}
	}
	t.young[(t.youngHead+t.youngN)%len(t.young)] = c
	t.youngN++
	c.youngQueued = true
}

// demote replaces c, which is demotable and in the open list, with a half.
func (t *Tracker) demote(c *Conn) {
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
	h.rec = append(h.recBuf[:0], e.b...)
	c.list.remove(c)
	t.conns.remove(c)
	if slot := &t.recent[recentSlot(c.Client.Port(), c.Server.Port())]; *slot == c {
		*slot = nil
	}
	t.freeState(c.state)
	c.state = nil
	t.spare.Put(c)
	t.hlist.push(h)
	t.halves.add(h)
}

// promote replaces h with a Conn, in the table and at the most recently
// active end of the open list.
func (t *Tracker) promote(h *half) *Conn {
	t.hlist.remove(h)
	t.halves.remove(h)
	c := t.newConnObject()
	c.state, c.hash = t.newState(), h.hash
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
	t.conns.add(c, c.hash)
	t.open.push(c)
	if !t.freeHalves.Full() {
		*h = half{}
		t.freeHalves.Put(h)
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
