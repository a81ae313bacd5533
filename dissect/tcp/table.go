package tcp

import (
	"hash/maphash"
	"net/netip"
	"unsafe"
)

// table is the connection table: an open-addressing hash table of the
// connections by their endpoints, in either order. Each slot holds the
// pair's hash beside the pointer, so that a lookup compares hashes in one
// array and reads a connection only when its hash matches: most lookups
// of a new connection (every SYN of a flood) touch one cache line and no
// connection, where a chained table read every connection of the
// bucket. Deleting (a million times over a SYN flood) shifts the
// following entries back, leaving no tombstones to probe past.
type table struct {
	slots oaTable[Conn]
	seed  maphash.Seed // random: a capture cannot choose collisions
}

func newTable() table {
	return table{seed: maphash.MakeSeed()}
}

// hashEnd hashes one endpoint. A pair of endpoints hashes to the sum of
// theirs, the same for (a, b) and (b, a). Endpoints whose addresses have
// the same 16-byte form (an IPv4 address and its IPv4-mapped IPv6 form,
// or IPv6 addresses that differ only in zone) hash alike, as tombstones
// tell endpoints apart by hash alone; the netip.AddrPort itself is
// hashed, which costs half of hashing its 18 bytes.
func (t *table) hashEnd(a netip.AddrPort) uint64 {
	if ip := a.Addr(); ip.Is4In6() || ip.Zone() != "" {
		a = netip.AddrPortFrom(ip.Unmap().WithZone(""), a.Port())
	}
	return maphash.Comparable(t.seed, a)
}

// get returns the connection between a and b, whose pair hashes to h,
// nil if there is none.
func (t *table) get(a, b netip.AddrPort, h uint64) *Conn {
	s := &t.slots
	if s.n == 0 {
		return nil
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := &s.slots[i]
		if e.p == nil {
			return nil
		}
		if c := e.p; e.hash == h && (c.Client == a && c.Server == b || c.Client == b && c.Server == a) {
			return c
		}
	}
}

// add inserts c, whose endpoints hash to h, which must not be in the
// table and match no connection in it.
func (t *table) add(c *Conn, h uint64) {
	c.hash = h
	t.slots.add(c, h)
}

// remove takes c out of the table, if it is there.
func (t *table) remove(c *Conn) { t.slots.remove(c, c.hash) }

// len returns the number of connections in the table.
func (t *table) len() int { return t.slots.n }

// all returns the connections in the table.
func (t *table) all() []*Conn {
	all := make([]*Conn, 0, t.slots.n)
	for _, e := range t.slots.slots {
		if e.p != nil {
			all = append(all, e.p)
		}
	}
	return all
}

// oaTable is an open-addressing hash set of pointers with their hashes,
// linear probing, at most half full. Lookups by content are the
// caller's (see table.get): it walks the slots from hash&mask up to the
// first empty one.
type oaTable[T any] struct {
	slots []oaSlot[T] // a power of two long
	n     int
}

type oaSlot[T any] struct {
	hash uint64
	p    *T
}

// minSlots is an oaTable's first size.
const minSlots = 1 << 11

// add inserts p, which hashes to h and is not in the table.
func (t *oaTable[T]) add(p *T, h uint64) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].p != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = oaSlot[T]{h, p}
	t.n++
}

// remove takes p, which hashes to h, out of the table if it is there,
// and moves back the entries after it that may take its slot, so that
// every entry stays reachable from its home slot without gaps.
func (t *oaTable[T]) remove(p *T, h uint64) {
	if t.n == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].p != p {
		if t.slots[i].p == nil {
			return
		}
		i = (i + 1) & mask
	}
	t.n--
	for j := (i + 1) & mask; t.slots[j].p != nil; j = (j + 1) & mask {
		// The entry at j may move to the hole at i unless its home slot
		// lies cyclically within (i, j].
		if home := t.slots[j].hash & mask; (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = oaSlot[T]{}
}

// prefetch starts fetching the home slot of hash h into the cache, where
// a lookup, insertion or removal of h is to start soon. A table of many
// connections (a SYN flood's halves: 2 MiB of slots) is seldom in the
// cache, and waiting for its slot was most of what these operations
// cost; the fetch then overlaps other work.
func (t *oaTable[T]) prefetch(h uint64) {
	if len(t.slots) > 0 {
		prefetch(uintptr(unsafe.Pointer(&t.slots[h&uint64(len(t.slots)-1)])))
	}
}

// grow doubles the table.
func (t *oaTable[T]) grow() {
	old := t.slots
	t.slots = make([]oaSlot[T], max(minSlots, 2*len(old)))
	mask := uint64(len(t.slots) - 1)
	for _, e := range old {
		if e.p == nil {
			continue
		}
		i := e.hash & mask
		for t.slots[i].p != nil {
			i = (i + 1) & mask
		}
		t.slots[i] = e
	}
}
