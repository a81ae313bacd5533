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
