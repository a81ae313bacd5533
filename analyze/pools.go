package analyze

import (
	"cmp"
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
// n/heavyHittersK of n connections is kept.
type heavyHitters struct {
	items []hitter
}

// hitter is a client's estimated connection count, at most err above
// the truth.
type hitter struct {
	client netip.Addr
	n, err int
}

func (h *heavyHitters) add(client netip.Addr, n int) {
	for i := range h.items {
		if h.items[i].client == client {
			h.items[i].n += n
			return
		}
	}
	if len(h.items) < heavyHittersK {
		h.items = append(h.items, hitter{client, n, 0})
		return
	}
	lo := 0
	for i := range h.items {
		if h.items[i].n < h.items[lo].n || h.items[i].n == h.items[lo].n && h.items[i].client.Less(h.items[lo].client) {
			lo = i
		}
	}
	m := h.items[lo].n
	h.items[lo] = hitter{client, m + n, m}
}

// merge adds o's counts (a client o did not keep counts 0 there), keeping
// the heaviest heavyHittersK.
func (h *heavyHitters) merge(o *heavyHitters) {
	if o == nil {
		return
	}
	for _, x := range o.items {
		i := slices.IndexFunc(h.items, func(y hitter) bool { return y.client == x.client })
		if i >= 0 {
			h.items[i].n += x.n
			h.items[i].err += x.err
		} else {
			h.items = append(h.items, x)
		}
	}
	h.sort()
	h.items = h.items[:min(len(h.items), heavyHittersK)]
}

func (h *heavyHitters) sort() {
	slices.SortFunc(h.items, func(a, b hitter) int { return cmp.Or(cmp.Compare(b.n, a.n), a.client.Compare(b.client)) })
}

// top returns the clients kept, heaviest first.
func (h *heavyHitters) top() []hitter {
	h.sort()
	return h.items
}

// mergePools adds the pools of o, another state's over other
// connections, to *m: a pool in both is merged by add(into, from, key),
// one only in o is taken as it is. Then, as each state kept at most
// maxPools pools of their own clients, the pools past maxPools (those
// last in cmp order) fold into their folded keys' pools, made by mk when
// new, through add with the folded pool's key: a merge of shards holds
// at most maxPools clients' pools and a "*" one per server, as a whole
// run does, and not one bound's worth per shard. Which clients keep a pool of their own then differs
// from a whole run's (its first maxPools by the order connections
// finish), as the README says.
func mergePools[K foldableKey[K], V any](m *map[K]*V, o map[K]*V, cmp func(K, K) int, mk func(K) *V, add func(into, from *V, k K)) {
	for k, ov := range o {
		if v := (*m)[k]; v != nil {
			add(v, ov, k)
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
		add(f, v, k)
	}
}
