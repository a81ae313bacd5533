package analyze

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// maxPools bounds the pools (client, server, name) a detector or table
// keeps: past it, connections from a client without a pool yet fold into
// one pool per server and name whose client is "*" (the zero
// netip.Addr), and that pool's heaviest clients are kept by a
// heavyHitters sketch. A SYN flood from a million spoofed addresses
// makes at most maxPools pools and a "*" pool per server.
const maxPools = 10000

// MaxPools is maxPools, for the renderers' words about pools of "*".
const MaxPools = maxPools

// anyClient is the client of a pool that folds many: "*".
var anyClient netip.Addr

// clientString renders a pool's client, "*" for anyClient.
func clientString(a netip.Addr) string {
	if !a.IsValid() {
		return "*"
	}
	return a.String()
}

// heavyHittersK is how many clients a heavyHitters sketch keeps.
const heavyHittersK = 16

// heavyHitters keeps the clients with the most connections among many
// (Space-Saving): at most heavyHittersK counters; a client not kept
// takes the smallest counter's place and count plus one, so that a
// count is at most err above the truth, and every client with more than
// n/heavyHittersK of n connections is kept. The counters are arrays,
// scanned for the smallest with integer comparisons: a scan of structs
// comparing netip.Addrs on each add was 5% of a SYN flood's CPU.
type heavyHitters struct {
	k       int // counters in use
	clients [heavyHittersK]netip.Addr
	n, err  [heavyHittersK]int
	// order is each client's place in netip.Addr's order but for its
	// zone, which breaks ties between counts.
	order [heavyHittersK]addrOrder
}

// hitter is a client's estimated connection count, at most err above
// the truth.
type hitter struct {
	client netip.Addr
	n, err int
}

// addrOrder orders addresses as netip.Addr.Compare does, zones aside:
// by length, then value.
type addrOrder struct {
	bits   int
	hi, lo uint64
}

func orderOf(a netip.Addr) addrOrder {
	b := a.As16()
	return addrOrder{a.BitLen(), binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// before reports whether counter i comes before counter j: a smaller
// count, or the same and a client first in netip.Addr's order.
func (h *heavyHitters) before(i, j int) bool {
	if h.n[i] != h.n[j] {
		return h.n[i] < h.n[j]
	}
	a, b := &h.order[i], &h.order[j]
	switch {
	case a.bits != b.bits:
		return a.bits < b.bits
	case a.hi != b.hi:
		return a.hi < b.hi
	case a.lo != b.lo:
		return a.lo < b.lo
	}
	return h.clients[i].Less(h.clients[j]) // the zones tell
}

func (h *heavyHitters) add(client netip.Addr, n int) {
	for i := range h.k {
		if h.clients[i] == client {
			h.n[i] += n
			return
		}
	}
	if h.k < heavyHittersK {
		h.set(h.k, client, n, 0)
		h.k++
		return
	}
	lo := 0
	for i := 1; i < heavyHittersK; i++ {
		if h.n[i] <= h.n[lo] && (h.n[i] < h.n[lo] || h.before(i, lo)) {
			lo = i
		}
	}
	m := h.n[lo]
	h.set(lo, client, m+n, m)
}

func (h *heavyHitters) set(i int, client netip.Addr, n, err int) {
	h.clients[i], h.n[i], h.err[i], h.order[i] = client, n, err, orderOf(client)
}

// addExact adds client's n connections, counted exactly elsewhere (a
// client's own pool folded into "*" by a merge), as a merge of a sketch
// holding only that client: adding them as Space-Saving does, taking the
// smallest counter, would make a merge's result depend on the order the
// states are merged in (Beam combines in any order), where merges of
// sketches over different clients do not.
func (h *heavyHitters) addExact(client netip.Addr, n int) {
	one := heavyHitters{k: 1}
	one.set(0, client, n, 0)
	h.merge(&one)
}

// merge adds o's counts (a client o did not keep counts 0 there), keeping
// the heaviest heavyHittersK.
func (h *heavyHitters) merge(o *heavyHitters) {
	if o == nil {
		return
	}
	all := h.top()
	for _, x := range o.top() {
		i := slices.IndexFunc(all, func(y hitter) bool { return y.client == x.client })
		if i >= 0 {
			all[i].n += x.n
			all[i].err += x.err
		} else {
			all = append(all, x)
		}
	}
	sortHitters(all)
	*h = heavyHitters{}
	for _, x := range all[:min(len(all), heavyHittersK)] {
		h.set(h.k, x.client, x.n, x.err)
		h.k++
	}
}

// top returns the clients kept, heaviest first (ties: by client).
func (h *heavyHitters) top() []hitter {
	out := make([]hitter, h.k)
	for i := range out {
		out[i] = hitter{h.clients[i], h.n[i], h.err[i]}
	}
	sortHitters(out)
	return out
}

func sortHitters(hs []hitter) {
	slices.SortFunc(hs, func(a, b hitter) int { return cmp.Or(cmp.Compare(b.n, a.n), a.client.Compare(b.client)) })
}

// mergePools adds the pools of o, another state's over other
// connections, to *m: a pool in both is merged by add(into, from, key,
// false), one only in o is taken as it is. Then, as each state kept at
// most maxPools pools of their own clients, the pools past maxPools
// (those last in cmp order) fold into their folded keys' pools, made by
// mk when new, through add(folded, pool, key, true): a merge of shards holds
// at most maxPools clients' pools and a "*" one per server, as a whole
// run does, and not one bound's worth per shard. Which clients keep a
// pool of their own then differs from a whole run's (its first maxPools
// by the order connections finish), as the README says. last, when not
// nil, is *m's lastEntry, cleared: it may remember a pool folded.
func mergePools[K foldableKey[K], V any](m *map[K]*V, o map[K]*V, last *lastEntry[K, V], cmp func(K, K) int, mk func(K) *V, add func(into, from *V, k K, folded bool)) {
	if last != nil {
		*last = lastEntry[K, V]{}
	}
	for k, ov := range o {
		if v := (*m)[k]; v != nil {
			add(v, ov, k, false)
			continue
		}
		if *m == nil {
			*m = make(map[K]*V, len(o))
		}
		(*m)[k] = ov
	}
	if len(*m) <= maxPools {
		return
	}
	own := make([]K, 0, len(*m))
	for k := range *m {
		if k != k.folded() {
			own = append(own, k)
		}
	}
	if len(own) <= maxPools {
		return
	}
	slices.SortFunc(own, cmp)
	for _, k := range own[maxPools:] {
		v := (*m)[k]
		delete(*m, k)
		fk := k.folded()
		f := (*m)[fk]
		if f == nil {
			f = mk(fk)
			(*m)[fk] = f
		}
		add(f, v, k, true)
	}
}

// mergeHeavy merges into *h, made when needed, the busiest clients of a
// pool merged into h's: o's sketch, and, when a merge folded one
// client's own pool into h's "*" pool, that client's conns connections,
// exactly (addExact).
func mergeHeavy(h **heavyHitters, o *heavyHitters, folded bool, client netip.Addr, conns int) {
	if o == nil && !folded {
		return
	}
	if *h == nil {
		*h = &heavyHitters{}
	}
	if folded {
		(*h).addExact(client, conns)
	}
	(*h).merge(o)
}
