package tcp

import (
	"hash/maphash"
	"net/netip"
)

// table is the connection table: a chained hash table of the connections
// by their endpoints, in either order. It costs a pointer per connection
// and one per bucket, where a Go map keyed by the two netip.AddrPorts
// cost about a hundred bytes per connection, and deleting (a million
// times over a SYN flood) leaves no tombstones to probe past.
type table struct {
	buckets []*Conn // chained through Conn.hnext
	n       int
	seed    maphash.Seed // random: a capture cannot choose collisions
}

const minBuckets = 1 << 10

func newTable() table {
	return table{buckets: make([]*Conn, minBuckets), seed: maphash.MakeSeed()}
}

// hashEnd hashes one endpoint.
func (t *table) hashEnd(a netip.AddrPort) uint64 {
	var b [18]byte
	ip := a.Addr().As16()
	copy(b[:], ip[:])
	b[16], b[17] = byte(a.Port()>>8), byte(a.Port())
	return maphash.Bytes(t.seed, b[:])
}

// hash is the same for (a, b) and (b, a).
func (t *table) hash(a, b netip.AddrPort) uint64 { return t.hashEnd(a) + t.hashEnd(b) }

// get returns the connection between a and b, nil if there is none, and
// the hash of the pair, for add.
func (t *table) get(a, b netip.AddrPort) (*Conn, uint64) {
	h := t.hash(a, b)
	for c := t.buckets[h&uint64(len(t.buckets)-1)]; c != nil; c = c.hnext {
		if c.Client == a && c.Server == b || c.Client == b && c.Server == a {
			return c, h
		}
	}
	return nil, h
}

// add inserts c, whose endpoints hash to h, which must not be in the
// table and match no connection in it.
func (t *table) add(c *Conn, h uint64) {
	if t.n >= len(t.buckets) {
		t.grow()
	}
	c.hash = h
	i := h & uint64(len(t.buckets)-1)
	c.hnext = t.buckets[i]
	t.buckets[i] = c
	t.n++
}

// remove takes c out of the table, if it is there.
func (t *table) remove(c *Conn) {
	p := &t.buckets[c.hash&uint64(len(t.buckets)-1)]
	for *p != nil {
		if *p == c {
			*p = c.hnext
			c.hnext = nil
			t.n--
			return
		}
		p = &(*p).hnext
	}
}

func (t *table) grow() {
	old := t.buckets
	t.buckets = make([]*Conn, 2*len(old))
	mask := uint64(len(t.buckets) - 1)
	for _, c := range old {
		for c != nil {
			next := c.hnext
			i := c.hash & mask
			c.hnext = t.buckets[i]
			t.buckets[i] = c
			c = next
		}
	}
}

// all returns the connections in the table.
func (t *table) all() []*Conn {
	all := make([]*Conn, 0, t.n)
	for _, c := range t.buckets {
		for ; c != nil; c = c.hnext {
			all = append(all, c)
		}
	}
	return all
}
