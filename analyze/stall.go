package analyze

import (
	"flag"
	"time"
)

// WindowStallConfig holds the window_stall thresholds.
type WindowStallConfig struct {
	// MinStall is the shortest flow-control stall (HTTP/2 window at zero
	// with data waiting, or TCP zero window) reported as a warning;
	// CriticalStall the duration that makes it critical.
	MinStall      time.Duration
	CriticalStall time.Duration
}

func defaultWindowStall() WindowStallConfig {
	return WindowStallConfig{MinStall: 100 * time.Millisecond, CriticalStall: 2 * time.Second}
}

func (c *WindowStallConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.MinStall, "stall-min", c.MinStall, "window_stall: shortest flow-control stall reported as a warning")
	fs.DurationVar(&c.CriticalStall, "stall-critical", c.CriticalStall, "window_stall: stall duration that makes it critical")
}

// detectWindowStall is not written yet.
func detectWindowStall(in *Input, cfg WindowStallConfig) []Finding { return nil }
