package analyze

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// Helpers shared by the detectors and the tables.

// Numbers.

// ms converts a duration to float milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// roundTo rounds x to d decimals, halves away from zero.
func roundTo(x float64, d int) float64 {
	p := 1.0
	for range d {
		p *= 10
	}
	return math.Round(x*p) / p
}

// medianOf returns the median of v, the mean of the middle two for an
// even count (0 for none); v is reordered.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// durationStats returns the minimum, median and maximum of ds (sorted in
// place); the median is the upper middle one for an even count, unlike
// medianOf's. Zero when ds is empty.
func durationStats(ds []time.Duration) (lo, mid, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[0], ds[len(ds)/2], ds[len(ds)-1]
}

// Text.

// fmtDur renders a duration briefly: "1 s", "250 ms", "3.2 ms".
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", d.Seconds()), "0"), ".0") + " s"
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond)/time.Millisecond)
	default:
		return fmt.Sprintf("%.1f ms", ms(d))
	}
}

// fmtMS renders milliseconds briefly, as fmtDur does.
func fmtMS(v float64) string {
	return fmtDur(time.Duration(v * float64(time.Millisecond)))
}

// dirWho names the sender of d: "client" or "server".
func dirWho(d event.Dir) string {
	if d == event.C2S {
		return "client"
	}
	return "server"
}

// capital returns s with its first letter in upper case (ASCII).
func capital(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// Maps.

// sortedKeys returns m's keys in increasing order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortedAddrPorts returns m's keys in increasing order.
func sortedAddrPorts[V any](m map[netip.AddrPort]V) []netip.AddrPort {
	keys := make([]netip.AddrPort, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, netip.AddrPort.Compare)
	return keys
}

// Connections.

// requests returns the requests a connection carried (HTTP/1.x requests,
// HTTP/2 client streams) and whether that number is known: it is not for
// undecrypted TLS or unrecognised payload. It counts the exchanges past
// the Collector's bound and the HTTP/2 streams past the dissector's
// (http2.Summary.StreamsDropped, which have no record and so no
// exchange) — those are taken as client streams: a server opens streams
// only by PUSH_PROMISE.
func requests(c *Conn) (int, bool) { return c.sum.requests, c.sum.requestsKnown }

// countRequests is requests from c's records r, for summarize.
func countRequests(c *Conn, r *Records) (int, bool) {
	n := len(r.Exchanges) + r.ExchangesDropped
	if c.App != nil && c.App.HTTP2 != nil {
		n += c.App.HTTP2.StreamsDropped
	}
	if n > 0 {
		return n, true
	}
	if c.App != nil {
		if c.App.HTTP1 != nil && c.App.HTTP1.Requests > 0 {
			return c.App.HTTP1.Requests, true
		}
		if c.App.HTTP1 != nil || c.App.HTTP2 != nil {
			return 0, true
		}
	}
	if c.TCP.StreamBytes.C2S == 0 && c.TCP.StreamBytes.S2C == 0 {
		return 0, true
	}
	return 0, false
}

// varints reads, in order, the signed varints a packedList was written
// with.
type varints []byte

func (v *varints) next() int64 {
	x, n := binary.Varint(*v)
	*v = (*v)[n:]
	return x
}

// packed is what a packedList holds: a value that appends itself to a
// list's bytes against the value added before it (prev, zero for the
// first), and reads itself back from them.
type packed[T any] interface {
	*T
	appendPacked(b []byte, prev *T) []byte
	readPacked(b *varints, prev *T)
}

// packedList holds values encoded as varints, each against the one
// before it, for lists of many values that differ little from one to
// the next (a pool's connections: ids, times): a few bytes each rather
// than their struct's size.
type packedList[T any, P packed[T]] struct {
	b    []byte
	n    int
	last T // the last added: the next is encoded against it
}

// add appends v.
func (l *packedList[T, P]) add(v *T) {
	l.b = P(v).appendPacked(l.b, &l.last)
	l.last = *v
	l.n++
}

// all returns the values, in the order they were added.
func (l *packedList[T, P]) all() []T {
	out := make([]T, l.n)
	var prev T
	b := varints(l.b)
	for i := range out {
		P(&out[i]).readPacked(&b, &prev)
		prev = out[i]
	}
	return out
}

// set replaces the values with vs.
func (l *packedList[T, P]) set(vs []T) {
	*l = packedList[T, P]{b: l.b[:0]}
	for i := range vs {
		l.add(&vs[i])
	}
}

// peakOpenNanos returns the most of n spans, given in Unix nanoseconds
// by span, open at once; a span ending when another starts does not
// overlap it. Each end sorts as one uint64 key, its offset from the
// earliest time doubled and its start bit below, so that an end comes
// before a start at the same instant; times 292 years or more apart (a
// pcapng's 64-bit timestamps), whose keys would overflow, sort as pairs.
func peakOpenNanos(n int, span func(i int) (start, end int64)) int {
	if n == 0 {
		return 0
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range n {
		s, e := span(i)
		lo, hi = min(lo, s, e), max(hi, s, e)
	}
	open, peak := 0, 0
	step := func(start bool) {
		if start {
			open++
			peak = max(peak, open)
		} else {
			open--
		}
	}
	if uint64(hi)-uint64(lo) < 1<<63 {
		keys := make([]uint64, 0, 2*n)
		for i := range n {
			s, e := span(i)
			keys = append(keys, 2*(uint64(s)-uint64(lo))+1, 2*(uint64(e)-uint64(lo)))
		}
		slices.Sort(keys)
		for _, k := range keys {
			step(k&1 != 0)
		}
		return peak
	}
	type edge struct {
		t     int64
		start bool
	}
	edges := make([]edge, 0, 2*n)
	for i := range n {
		s, e := span(i)
		edges = append(edges, edge{s, true}, edge{e, false})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(boolInt(a.start), boolInt(b.start)))
	})
	for _, e := range edges {
		step(e.start)
	}
	return peak
}

// trimLowest keeps the n lowest of s by cmp (keepLowest) once s holds
// 2n or more, and reports whether it cut; it clears the rest, so that
// the array is reused for the next n without holding what they point
// to (clipping it made every round copy the kept ones into a new one).
func trimLowest[T any](s []T, n int, cmp func(a, b T) int) ([]T, bool) {
	if len(s) < 2*n {
		return s, false
	}
	m := len(s)
	s = keepLowest(s, n, cmp)
	clear(s[n:m])
	return s, true
}

// keepLowest returns s[:n] after slices.SortFunc(s, cmp), cmp being a
// strict order (no two elements of s compare 0), when len(s) >= n: the
// n lowest in order. Where s[:n] is already in order (as keepLowest
// left it, with elements appended since), it does not sort s: it keeps
// those of the rest below s[n-1], sorts them alone (usually few: a
// bound keeping the slowest or latest sees most new ones fall outside)
// and merges them in, from the back. s[n:] is left holding unspecified
// elements: not the ones cut (the merge overwrites some of them with
// copies of kept ones), so a caller that must see what was cut sorts s
// itself.
func keepLowest[T any](s []T, n int, cmp func(a, b T) int) []T {
	if n <= 0 || !slices.IsSortedFunc(s[:n], cmp) {
		slices.SortFunc(s, cmp)
		return s[:max(n, 0)]
	}
	cut := s[n-1]
	k := n
	for i := n; i < len(s); i++ {
		if cmp(s[i], cut) < 0 {
			s[k], s[i] = s[i], s[k]
			k++
		}
	}
	k -= n
	if k == 0 {
		return s[:n]
	}
	slices.SortFunc(s[n:n+k], cmp)
	// Merge s[:n] and s[n:n+k] from the highest down, dropping the k
	// highest and writing the rest at s[w] from n-1 down: w stays above
	// the next unread element of s[:n] while any of s[n:n+k] is unread
	// (w-i is k minus the number read), so nothing unread is overwritten;
	// once they are all read, the rest of s[:n] is in place.
	i, j := n-1, n+k-1
	for w := n - 1 + k; w >= 0 && j >= n; w-- {
		var v T
		if i >= 0 && cmp(s[i], s[j]) > 0 {
			v, i = s[i], i-1
		} else {
			v, j = s[j], j-1
		}
		if w < n {
			s[w] = v
		}
	}
	return s[:n]
}

// parallelFor calls fn(i) for every i in [0, n), on up to GOMAXPROCS
// goroutines, and returns when every call has: fn must only write what
// its i owns. A panic in a call is raised again on the caller's
// goroutine (a takePanic, as the pipes raise theirs), after the others
// stopped, so that a caller that recovers (batch) still can.
func parallelFor(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var (
		next   atomic.Int64
		failed atomic.Bool
		fault  takePanic
		once   sync.Once
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			defer func() {
				if x := recover(); x != nil {
					once.Do(func() { fault = asTakePanic(x) })
					failed.Store(true)
				}
			}()
			for i := int(next.Add(1) - 1); i < n && !failed.Load(); i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		panic(fault)
	}
}
