package analyze

import "github.com/h2scope/h2scope/dissect"

// State is the analysis of a set of connections: every detector's and
// the tables' state, folded from each connection as it finished. It
// holds no connection, and it merges: the State of disjoint sets of
// connections, merged in any order and grouping, equals the State of
// their union, so that the findings and tables of a capture split into
// shards by connection (by a hash of the address pair) are those of the
// capture read whole. A State is not safe for concurrent use.
type State struct {
	a *analysis
}

// NewState returns the empty State of an analysis with cfg.
func NewState(cfg Config) *State {
	return &State{a: newAnalysis(cfg)}
}

// Observe folds in c, a finished connection that still holds its full
// records and its final summary (as Analyze reads them). A Collector
// does the same in two steps as the connection's application part ends
// and then as it finishes.
func (s *State) Observe(c *Conn) {
	s.a.observe(c)
	s.a.final(c)
}

// Merge adds o, the State of the same configuration over connections
// disjoint from s's. o must not be used afterwards.
func (s *State) Merge(o *State) {
	s.a.merge(o.a)
}

// Result reports the findings and tables of the connections folded in,
// st being the reading statistics of the whole capture (every shard's).
func (s *State) Result(st dissect.Stats) Result {
	return s.a.result(st)
}
