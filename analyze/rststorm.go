package analyze

import (
	"flag"
	"time"
)

// RSTStormConfig holds the rst_storm thresholds.
type RSTStormConfig struct {
	// Window is the sliding window over which resets are counted.
	Window time.Duration
	// MinResets is the fewest resets in one window (on one connection,
	// or to one server) that make a storm.
	MinResets int
	// RapidReset is the longest HEADERS-to-RST_STREAM delay of a client
	// reset counted as a rapid reset.
	RapidReset time.Duration
}

func defaultRSTStorm() RSTStormConfig {
	return RSTStormConfig{Window: time.Second, MinResets: 10, RapidReset: 10 * time.Millisecond}
}

func (c *RSTStormConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Window, "rst-window", c.Window, "rst_storm: sliding window over which RST_STREAM frames are counted")
	fs.IntVar(&c.MinResets, "rst-min", c.MinResets, "rst_storm: RST_STREAM frames in one window that make a storm")
	fs.DurationVar(&c.RapidReset, "rst-rapid", c.RapidReset, "rst_storm: longest HEADERS-to-RST_STREAM delay counted as a rapid reset")
}

// detectRSTStorm is not written yet.
func detectRSTStorm(in *Input, cfg RSTStormConfig) []Finding { return nil }
