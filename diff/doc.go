// Package diff compares two h2scope analyses — of two captures, two
// `analyze --json` reports, or one of each — as a before and after of a
// change: which findings were resolved, which are new, which changed
// severity or key metrics, and how each connection pool's figures moved.
//
// # Matching
//
// Addresses and ports change between captures, so sides are matched by
// pool: the server name (TLS SNI, else the Host or :authority of the
// first request, else the server's address) and the server's port. Pools
// pair by hand first (Options.Match, `--match OLD=NEW`), then by equal
// name and port, then by equal name alone when each side has exactly one
// pool of that name left. A finding belongs to the pool of its first
// connection's server; findings pair by kind, cause (when the report
// gives one) and pool, in report order.
//
// A paired finding is changed when its severity differs, or when one of
// its numeric metrics moved by more than 20% (ephemeral port bounds
// aside); unchanged otherwise. Result.FailOn says whether a new finding,
// or one whose severity rose, reaches a severity.
//
// # Figures
//
// Each pool shows, side by side: connections and requests per
// connection (the report's pool table, summed over clients), new
// connections per second (the conns_per_s of the pool's reconnect_churn
// finding, when it has one) and the TLS resumption rate (resumed over
// offered handshakes, from the resumption table). The report tables hold
// no per-pool handshake percentiles, so diff shows none.
package diff
