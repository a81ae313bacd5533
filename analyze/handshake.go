package analyze

import (
	"flag"
	"time"
)

// HandshakeLatencyConfig holds the handshake_latency thresholds.
type HandshakeLatencyConfig struct {
	// Factor is how many times the capture baseline (median) a handshake
	// must take, and MADs how many median absolute deviations above it,
	// to be slow; MinLatency is an absolute floor below which nothing is
	// slow; MinSamples the fewest handshakes that make a baseline.
	Factor     float64
	MADs       float64
	MinLatency time.Duration
	MinSamples int
}

func defaultHandshakeLatency() HandshakeLatencyConfig {
	return HandshakeLatencyConfig{Factor: 3, MADs: 5, MinLatency: 50 * time.Millisecond, MinSamples: 5}
}

func (c *HandshakeLatencyConfig) flags(fs *flag.FlagSet) {
	fs.Float64Var(&c.Factor, "handshake-factor", c.Factor, "handshake_latency: times the median handshake a slow one takes")
	fs.Float64Var(&c.MADs, "handshake-mads", c.MADs, "handshake_latency: median absolute deviations above the median a slow one takes")
	fs.DurationVar(&c.MinLatency, "handshake-min", c.MinLatency, "handshake_latency: handshakes faster than this are never slow")
	fs.IntVar(&c.MinSamples, "handshake-min-samples", c.MinSamples, "handshake_latency: fewest handshakes that make a baseline")
}

// detectHandshakeLatency is not written yet.
func detectHandshakeLatency(in *Input, cfg HandshakeLatencyConfig) []Finding { return nil }
