package analyze

import (
	"flag"
	"time"
)

// ChurnConfig holds the reconnect_churn thresholds.
type ChurnConfig struct {
	// MinConns is the fewest connections in one pool (client IP, server
	// address, SNI or authority) that can churn.
	MinConns int
	// MaxRequestsPerConn is the highest mean requests per connection of a
	// churning pool; MinOneRequestShare the smallest share of its
	// connections that carried at most one request.
	MaxRequestsPerConn float64
	MinOneRequestShare float64
	// ReuseWindow is the window in which a reused 4-tuple or a FIN
	// followed by the next SYN counts as churn.
	ReuseWindow time.Duration
}

func defaultChurn() ChurnConfig {
	return ChurnConfig{MinConns: 5, MaxRequestsPerConn: 2, MinOneRequestShare: 0.5, ReuseWindow: 60 * time.Second}
}

func (c *ChurnConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.MinConns, "churn-min-conns", c.MinConns, "reconnect_churn: connections in one pool that can churn")
	fs.Float64Var(&c.MaxRequestsPerConn, "churn-max-reqs", c.MaxRequestsPerConn, "reconnect_churn: highest mean requests per connection of a churning pool")
	fs.Float64Var(&c.MinOneRequestShare, "churn-one-req-share", c.MinOneRequestShare, "reconnect_churn: smallest share of one-request connections")
	fs.DurationVar(&c.ReuseWindow, "churn-window", c.ReuseWindow, "reconnect_churn: window for FIN-to-next-SYN gaps and 4-tuple reuse")
}

// detectReconnectChurn is not written yet.
func detectReconnectChurn(in *Input, cfg ChurnConfig) []Finding { return nil }
