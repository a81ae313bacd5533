package tcp

import (
	"net/netip"
	"time"
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

// tomb is a finished closed connection's tombstone; see above.
type tomb struct {
	client, server netip.AddrPort
	hnext          *tomb  // in tombTable's bucket
	hash           uint64 // of the endpoints (table.hash)
	prev, next     *tomb  // in tombList, less and more recently active
	lastTS         time.Time
	isn            [2]uint32 // initial sequence numbers, client's first
	isnSet         [2]bool
}

// reusedBy reports whether s, a SYN, reuses the tombstone's 4-tuple with
// another initial sequence number (as Tracker.add tests a live
// connection).
func (x *tomb) reusedBy(s netip.AddrPort, seq uint32) bool {
	d := 1
	if s == x.client {
		d = 0
	}
	return x.isnSet[d] && x.isn[d] != seq
}

// tombList is a list of tombstones in order of last activity.
type tombList struct {
	head, tail *tomb
	n          int
}

func (l *tombList) push(x *tomb) {
	l.n++
	x.prev = l.tail
	if l.tail != nil {
		l.tail.next = x
	} else {
		l.head = x
	}
	l.tail = x
}

func (l *tombList) remove(x *tomb) {
	l.n--
	if x.prev != nil {
		x.prev.next = x.next
	} else {
		l.head = x.next
	}
	if x.next != nil {
		x.next.prev = x.prev
	} else {
		l.tail = x.prev
	}
	x.prev, x.next = nil, nil
}

// tombTable is table for tombstones; it shares table's seed and hash.
type tombTable struct {
	buckets []*tomb
	n       int
}

func (t *tombTable) get(a, b netip.AddrPort, hash uint64) *tomb {
	if t.n == 0 {
		return nil
	}
	for x := t.buckets[hash&uint64(len(t.buckets)-1)]; x != nil; x = x.hnext {
		if x.hash == hash && (x.client == a && x.server == b || x.client == b && x.server == a) {
			return x
		}
	}
	return nil
}

func (t *tombTable) add(x *tomb) {
	if t.n >= len(t.buckets) {
		old := t.buckets
		t.buckets = make([]*tomb, max(minBuckets, 2*len(old)))
		mask := uint64(len(t.buckets) - 1)
		for _, y := range old {
			for y != nil {
				next := y.hnext
				i := y.hash & mask
				y.hnext = t.buckets[i]
				t.buckets[i] = y
				y = next
			}
		}
	}
	i := x.hash & uint64(len(t.buckets)-1)
	x.hnext = t.buckets[i]
	t.buckets[i] = x
	t.n++
}

func (t *tombTable) remove(x *tomb) {
	p := &t.buckets[x.hash&uint64(len(t.buckets)-1)]
	for *p != nil {
		if *p == x {
			*p = x.hnext
			x.hnext = nil
			t.n--
			return
		}
		p = &(*p).hnext
	}
}

// retire finishes c, a closed connection, early (past MaxClosed) and
// keeps its tombstone until ClosedTimeout after its last packet.
func (t *Tracker) retire(c *Conn) {
	if c.state == nil {
		t.expand(c)
	}
	x := t.freeTombs.Get()
	*x = tomb{client: c.Client, server: c.Server, hash: c.hash, lastTS: c.LastTS,
		isn:    [2]uint32{c.seq[0].baseSeq, c.seq[1].baseSeq},
		isnSet: [2]bool{c.seq[0].baseSet, c.seq[1].baseSet}}
	t.finish(c)
	for t.tlist.n >= t.opts.MaxConns {
		t.bury(t.tlist.head)
	}
	t.tlist.push(x)
	t.tombs.add(x)
}

// bury forgets a tombstone.
func (t *Tracker) bury(x *tomb) {
	t.tlist.remove(x)
	t.tombs.remove(x)
	if !t.freeTombs.Full() {
		*x = tomb{}
		t.freeTombs.Put(x)
	}
}

// unearth looks up the tombstone of a connection between src and dst,
// whose endpoints hash to h, forgets it, and reports whether it was one
// and whether syn (a SYN with sequence number seq, if set) reuses its
// ports.
func (t *Tracker) unearth(src, dst netip.AddrPort, h uint64, syn bool, seq uint32) (found, reused bool) {
	x := t.tombs.get(src, dst, h)
	if x == nil {
		return false, false
	}
	reused = syn && x.reusedBy(src, seq)
	t.bury(x)
	return true, reused
}
