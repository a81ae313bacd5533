package analyze

import "github.com/h2scope/h2scope/dissect/event"

// connTable maps connection IDs to values, for the Collector's
// connections not yet finished. The tracker hands IDs out in increasing
// order and most connections finish soon after they start, so the IDs
// in use at once lie mostly in a window just below the latest: those
// are kept in a ring of slots indexed by ID, where a lookup costs an
// index rather than a hash into a table of a hundred thousand entries
// (a SYN flood's half-open connections). The window is at most
// connTableMax IDs wide; an ID it leaves behind still in use (a long
// connection, a gap in the IDs of a shard) moves to a map, so memory
// grows with the IDs in use, never with those finished. The zero
// connTable is empty and ready to use.
type connTable[V any] struct {
	// slots is the ring (its length a power of two, or 0); the window
	// is the n slots from head, for IDs base to base+n-1, the slots
	// past it empty.
	slots  []connSlot[V]
	head   int
	n      int
	base   event.ConnID
	inRing int
	// far holds the values of IDs below base; farN counts them by the
	// low 16 bits of their ID (saturating), so that looking up an ID
	// below the window that is not there (every connection of a SYN
	// flood finished past the window, with a few long-lived ones in
	// far) mostly skips the map.
	far  map[event.ConnID]V
	farN *[1 << 16]uint16
}

// connSlot is one ID's slot: its value if ok.
type connSlot[V any] struct {
	v  V
	ok bool
}

// connTableMax bounds the IDs a connTable's ring spans; connTableMin is
// the ring's first size.
const (
	connTableMax = 1 << 16
	connTableMin = 1 << 10
)

// get returns id's value and whether it has one.
func (t *connTable[V]) get(id event.ConnID) (V, bool) {
	if id < t.base {
		if t.farN == nil || t.farN[uint16(id)] == 0 {
			var zero V
			return zero, false
		}
		v, ok := t.far[id]
		return v, ok
	}
	if d := id - t.base; d < event.ConnID(t.n) {
		s := &t.slots[(t.head+int(d))&(len(t.slots)-1)]
		return s.v, s.ok
	}
	var zero V
	return zero, false
}

// set sets id's value to v.
func (t *connTable[V]) set(id event.ConnID, v V) {
	if id < t.base {
		t.setFar(id, v)
		return
	}
	if t.n == 0 {
		t.base = id // nothing in the window: it starts at id
	}
	for id-t.base >= connTableMax {
		t.popHead()
		if t.n == 0 {
			t.base = id
		}
	}
	d := int(id - t.base)
	if d >= len(t.slots) {
		t.grow(d + 1)
	}
	s := &t.slots[(t.head+d)&(len(t.slots)-1)]
	if !s.ok {
		t.inRing++
	}
	s.v, s.ok = v, true
	t.n = max(t.n, d+1)
}

// delete forgets id's value.
func (t *connTable[V]) delete(id event.ConnID) {
	if id < t.base {
		if _, ok := t.far[id]; ok {
			delete(t.far, id)
			if n := &t.farN[uint16(id)]; *n != 0xffff {
				*n--
			}
		}
		return
	}
	d := id - t.base
	if d >= event.ConnID(t.n) {
		return
	}
	s := &t.slots[(t.head+int(d))&(len(t.slots)-1)]
	if !s.ok {
		return
	}
	*s = connSlot[V]{}
	t.inRing--
	// The window starts at the lowest ID in use.
	for t.n > 0 && !t.slots[t.head].ok {
		t.head = (t.head + 1) & (len(t.slots) - 1)
		t.base++
		t.n--
	}
}

// popHead moves the window's first slot out of it, its value (if any)
// to far.
func (t *connTable[V]) popHead() {
	s := &t.slots[t.head]
	if s.ok {
		t.setFar(t.base, s.v)
		t.inRing--
	}
	*s = connSlot[V]{}
	t.head = (t.head + 1) & (len(t.slots) - 1)
	t.base++
	t.n--
}

// setFar sets the value of id, below the window, in far.
func (t *connTable[V]) setFar(id event.ConnID, v V) {
	if t.far == nil {
		t.far, t.farN = map[event.ConnID]V{}, new([1 << 16]uint16)
	}
	if _, ok := t.far[id]; !ok {
		if n := &t.farN[uint16(id)]; *n != 0xffff {
			*n++
		}
	}
	t.far[id] = v
}

// grow makes the ring hold at least n slots, the window's in order
// from 0.
func (t *connTable[V]) grow(n int) {
	size := max(len(t.slots), connTableMin)
	for size < n {
		size *= 2
	}
	slots := make([]connSlot[V], size)
	for i := range t.n {
		slots[i] = t.slots[(t.head+i)&(len(t.slots)-1)]
	}
	t.slots, t.head = slots, 0
}

// len returns the number of IDs with a value.
func (t *connTable[V]) len() int { return t.inRing + len(t.far) }

// each calls f with every ID and its value, in no order.
func (t *connTable[V]) each(f func(event.ConnID, V)) {
	for id, v := range t.far {
		f(id, v)
	}
	for i := range t.n {
		if s := &t.slots[(t.head+i)&(len(t.slots)-1)]; s.ok {
			f(t.base+event.ConnID(i), s.v)
		}
	}
}
