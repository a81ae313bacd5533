package pack

// Record is the pointer type of a record a List holds: it writes itself
// into an Encoder and reads itself back, exactly, from a Decoder.
type Record[T any] interface {
	*T
	Encode(e *Encoder)
	Decode(d *Decoder)
}

// List holds records by index: in Go form while they may change, encoded
// in a Store once frozen. At decodes a frozen record again (a late frame
// on a closed stream); Settle then puts it back where it was when its
// encoding still fits there, else leaves it in Go form, so that late
// changes cannot grow the Store. Indexes are stable; a pointer from Add
// or At stays valid until the Settle after the record was frozen.
type List[T any, P Record[T]] struct {
	n int
	// where[i] is record i's Loc + 1 once it was frozen, else 0; records
	// in hot are in Go form (where may then name their previous
	// encoding, of size reopened[i]).
	where    []uint32
	hot      map[int]*T
	reopened map[int]int
	// pending lists the records frozen, or reopened, since the last
	// Settle.
	pending []int
	free    []*T
	store   Store
	enc     Encoder
	// dec is the Decoder of At and Each: a local one would escape
	// through the generic method call, one allocation a record.
	dec Decoder
}

// Len returns the number of records.
func (l *List[T, P]) Len() int { return l.n }

// Add appends r and returns its index and the record in Go form.
func (l *List[T, P]) Add(r T) (int, *T) {
	if l.hot == nil {
		l.hot = make(map[int]*T)
	}
	p := l.alloc()
	*p = r
	l.hot[l.n] = p
	l.where = append(l.where, 0)
	l.n++
	return l.n - 1, p
}

func (l *List[T, P]) alloc() *T {
	if n := len(l.free); n > 0 {
		p := l.free[n-1]
		l.free = l.free[:n-1]
		return p
	}
	return new(T)
}

// At returns record i in Go form, decoding it when it was frozen (it is
// then frozen again by the next Settle).
func (l *List[T, P]) At(i int) *T {
	if p := l.hot[i]; p != nil {
		return p
	}
	p := l.alloc()
	l.dec = l.store.Get(Loc(l.where[i] - 1))
	P(p).Decode(&l.dec)
	l.hot[i] = p
	if l.reopened == nil {
		l.reopened = make(map[int]int)
	}
	l.reopened[i] = l.dec.Len()
	l.pending = append(l.pending, i)
	return p
}

// Frozen reports whether record i is encoded (and not in Go form).
func (l *List[T, P]) Frozen(i int) bool { return l.hot[i] == nil }

// Freeze marks record i, which will not change again, to be encoded by
// the next Settle.
func (l *List[T, P]) Freeze(i int) { l.pending = append(l.pending, i) }

// Settle encodes the records frozen or reopened since the last Settle.
// A record that cannot be stored exactly stays in Go form.
func (l *List[T, P]) Settle() {
	for _, i := range l.pending {
		p := l.hot[i]
		if p == nil {
			continue
		}
		l.enc.Reset(&l.store)
		P(p).Encode(&l.enc)
		if n, ok := l.reopened[i]; ok {
			if !l.store.Replace(Loc(l.where[i]-1), n, &l.enc) {
				continue
			}
			delete(l.reopened, i)
		} else {
			loc, ok := l.store.Put(&l.enc)
			if !ok {
				continue
			}
			l.where[i] = uint32(loc) + 1
		}
		delete(l.hot, i)
		var zero T
		*p = zero
		l.free = append(l.free, p)
	}
	l.pending = l.pending[:0]
}

// Each calls fn with every record in index order; a frozen record is
// decoded into a scratch copy that fn must not keep.
func (l *List[T, P]) Each(fn func(*T)) {
	scratch := new(T)
	for i := range l.n {
		if p := l.hot[i]; p != nil {
			fn(p)
			continue
		}
		var zero T
		*scratch = zero
		l.dec = l.store.Get(Loc(l.where[i] - 1))
		P(scratch).Decode(&l.dec)
		fn(scratch)
	}
}
