package analyze

import (
	"flag"
	"time"
)

// GoAwayConfig holds the goaway thresholds.
type GoAwayConfig struct {
	// ReconnectWindow is how long after a GOAWAY a new connection to the
	// same server counts as the client reconnecting.
	ReconnectWindow time.Duration
}

func defaultGoAway() GoAwayConfig {
	return GoAwayConfig{ReconnectWindow: 30 * time.Second}
}

func (c *GoAwayConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ReconnectWindow, "goaway-reconnect-window", c.ReconnectWindow, "goaway: how long after a GOAWAY a new connection counts as the reconnect")
}

// detectGoAway is not written yet.
func detectGoAway(in *Input, cfg GoAwayConfig) []Finding { return nil }
