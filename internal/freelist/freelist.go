// Package freelist keeps objects for reuse: a bounded stack of pointers to
// state that is allocated per connection and recycled when the connection
// lets it go, so that a capture of a million short connections allocates
// a few thousand of them rather than a million.
package freelist

// List holds at most Max values for reuse, the last put taken first. The
// zero List keeps nothing.
type List[T any] struct {
	// Max is the most values kept.
	Max int
	// Chunk, above 1, makes Get allocate new values that many at a time
	// (one allocation where there were Chunk). A chunk stays allocated
	// while any of its values is reachable: it suits values that die in
	// about the order they were made, such as the half-open records of a
	// SYN flood, finished oldest first.
	Chunk int
	items []*T
	fresh []T // the rest of the last chunk, never handed out
}

// Get returns a value taken from the list, as Put left it, or a new zero
// value when the list is empty.
func (l *List[T]) Get() *T {
	n := len(l.items)
	if n == 0 {
		if l.Chunk <= 1 {
			return new(T)
		}
		if len(l.fresh) == 0 {
			l.fresh = make([]T, l.Chunk)
		}
		v := &l.fresh[0]
		l.fresh = l.fresh[1:]
		return v
	}
	v := l.items[n-1]
	l.items[n-1] = nil
	l.items = l.items[:n-1]
	return v
}

// Full reports whether Put would drop a value: the list holds Max.
func (l *List[T]) Full() bool { return len(l.items) >= l.Max }

// Put keeps v for a later Get, unless the list is full.
func (l *List[T]) Put(v *T) {
	if !l.Full() {
		l.items = append(l.items, v)
	}
}

// Len returns the number of values kept.
func (l *List[T]) Len() int { return len(l.items) }
