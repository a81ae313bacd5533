package tcp

import (
	"net/netip"
	"time"
	"unsafe"
)

// Tombstones.
//
// A closed connection is kept whole (its summary, its tracking state,
// and whatever the callbacks hold for it until OnFinish: the analysis
// and the report keep a few kilobytes) while it waits out
// ClosedTimeout, so that a late packet is counted in it as Wireshark
// counts it. Past MaxClosed of them, the least recently active is
// finished early, and only a tombstone is kept: its endpoints and each
// side's initial sequence number, until ClosedTimeout after its last
// packet as the connection would have been (at most MaxConns of them).
// A SYN on that 4-tuple with another initial sequence number is then
// flagged ReusedPorts, as it would have been by the connection; any
// other packet starts a new connection.
//
// A tombstone takes 40 bytes and holds no pointer (the garbage collector
// never scans them): the endpoints are kept as their 64-bit hashes
// (table.hashEnd, randomly seeded), which two distinct endpoints share
// with a chance of 2^-64, and both of a pair must match.

// tombEntry is one tombstone; see above.
type tombEntry struct {
	cli, srv uint64 // hashes of the client and server endpoints
	sec      int64  // last packet time, Unix seconds
	isn      [2]uint32
	// nsec holds the nanoseconds of the last packet time in its low 30
	// bits, isnSet[0] and isnSet[1] in bits 30 and 31.
	nsec uint32
	// next is the index+1 of the next tombstone in the same bucket, 0
	// at the end of a chain, -1 once the tombstone is dead.
	next int32
}

const (
	tombNsec = 1<<30 - 1
	tombISN0 = 1 << 30
	tombISN1 = 1 << 31
)

func (e *tombEntry) lastTS() time.Time { return time.Unix(e.sec, int64(e.nsec&tombNsec)) }

// tombs holds the tombstones in a ring, in order of retirement (which is
// the order of last activity), and a chained hash index of them.
type tombs struct {
	ring    []tombEntry // live and dead entries from head, wrapping
	head    int
	used    int     // entries in the ring from head, dead ones included
	n       int     // live tombstones
	buckets []int32 // index+1 of each chain's first entry, 0 for none
	max     int     // the most tombstones kept
}

// minTombs is the ring's first size.
const minTombs = 1 << 10

func (ts *tombs) bucket(h uint64) *int32 { return &ts.buckets[h&uint64(len(ts.buckets)-1)] }

// get returns the index of the live tombstone of the endpoints that hash
// to ha and hb (either may be the client), -1 if there is none.
func (ts *tombs) get(ha, hb uint64) int {
	if ts.n == 0 {
		return -1
	}
	for i := *ts.bucket(ha + hb); i != 0; i = ts.ring[i-1].next {
		e := &ts.ring[i-1]
		if e.cli == ha && e.srv == hb || e.cli == hb && e.srv == ha {
			return int(i - 1)
		}
	}
	return -1
}

// unlink takes live entry i out of its chain and marks it dead.
func (ts *tombs) unlink(i int) {
	e := &ts.ring[i]
	p := ts.bucket(e.cli + e.srv)
	for *p != int32(i+1) {
		p = &ts.ring[*p-1].next
	}
	*p = e.next
	e.next = -1
	ts.n--
}

// pop drops the oldest entry.
func (ts *tombs) pop() {
	if ts.ring[ts.head].next >= 0 {
		ts.unlink(ts.head)
	}
	ts.head = (ts.head + 1) % len(ts.ring)
	ts.used--
}

// oldest returns the oldest live entry, nil when there is none; dead
// entries before it are dropped.
func (ts *tombs) oldest() *tombEntry {
	for ts.used > 0 {
		if e := &ts.ring[ts.head]; e.next >= 0 {
			return e
		}
		ts.pop()
	}
	return nil
}

// add appends e, dropping the oldest past ts.max.
func (ts *tombs) add(e tombEntry) {
	if ts.used == len(ts.ring) {
		if len(ts.ring) < ts.max {
			ts.grow()
		} else {
			ts.pop()
		}
	}
	i := (ts.head + ts.used) % len(ts.ring)
	ts.used++
	ts.n++
	p := ts.bucket(e.cli + e.srv)
	e.next = *p
	*p = int32(i + 1)
	ts.ring[i] = e
}

// grow doubles the ring (up to max), keeping the live entries in order,
// and rebuilds the index.
func (ts *tombs) grow() {
	size := min(max(minTombs, 2*len(ts.ring)), ts.max)
	live := make([]tombEntry, 0, ts.n)
	for k := range ts.used {
		if e := ts.ring[(ts.head+k)%len(ts.ring)]; e.next >= 0 {
			live = append(live, e)
		}
	}
	n := 1
	for n < size {
		n <<= 1
	}
	ts.ring, ts.head, ts.used, ts.n = make([]tombEntry, size), 0, 0, 0
	ts.buckets = make([]int32, n)
	for _, e := range live {
		ts.add(e)
	}
}

// prefetch starts fetching what adding the tombstone of a pair hashing
// to h is to read: its bucket, and that of the oldest tombstone, dropped
// first when the ring is full.
func (ts *tombs) prefetch(h uint64) {
	if len(ts.buckets) == 0 {
		return
	}
	prefetch(uintptr(unsafe.Pointer(ts.bucket(h))))
	if ts.used == len(ts.ring) {
		if e := &ts.ring[ts.head]; e.next >= 0 {
			prefetch(uintptr(unsafe.Pointer(ts.bucket(e.cli + e.srv))))
		}
	}
}

// clear forgets every tombstone.
func (ts *tombs) clear() {
	ts.ring, ts.buckets, ts.head, ts.used, ts.n = nil, nil, 0, 0, 0
}

// retire finishes c, a closed connection, early (past MaxClosed) and
// keeps its tombstone until ClosedTimeout after its last packet.
func (t *Tracker) retire(c *Conn) {
	if c.state == nil {
		t.expand(c)
	}
	e := tombEntry{sec: c.LastTS.Unix(), nsec: uint32(c.LastTS.Nanosecond()), isn: [2]uint32{c.seq[0].baseSeq, c.seq[1].baseSeq}}
	if c.cliSet {
		// As newConn hashed them.
		e.cli, e.srv = c.cliHash, c.hash-c.cliHash
	} else {
		e.cli, e.srv = t.conns.hashEnd(c.Client), t.conns.hashEnd(c.Server)
	}
	if c.seq[0].baseSet {
		e.nsec |= tombISN0
	}
	if c.seq[1].baseSet {
		e.nsec |= tombISN1
	}
	t.finish(c)
	t.tombs.add(e)
}

// unearth looks up the tombstone of a connection between src and dst
// and forgets it, and reports whether syn (a SYN with sequence number
// seq, if set) reuses its ports with another initial sequence number (as
// Tracker.add tests a live connection).
func (t *Tracker) unearth(src, dst netip.AddrPort, syn bool, seq uint32) (reused bool) {
	hs, hd := t.ends(src, dst)
	i := t.tombs.get(hs, hd)
	if i < 0 {
		return false
	}
	e := &t.tombs.ring[i]
	set, isn := e.nsec&tombISN1 != 0, e.isn[1]
	if e.cli == hs && e.srv == hd {
		set, isn = e.nsec&tombISN0 != 0, e.isn[0]
	}
	t.tombs.unlink(i)
	return syn && set && isn != seq
}

// buryOld forgets the tombstones ClosedTimeout after their last packet
// at capture time now.
func (t *Tracker) buryOld(now time.Time) {
	for e := t.tombs.oldest(); e != nil && now.Sub(e.lastTS()) >= t.opts.ClosedTimeout; e = t.tombs.oldest() {
		t.tombs.pop()
	}
}
