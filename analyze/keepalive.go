package analyze

import (
	"flag"
	"time"
)

// KeepaliveConfig holds the keepalive_mismatch thresholds.
type KeepaliveConfig struct {
	// MinIdle is the shortest idle gap before a server close that counts
	// as an idle timeout; RaceWindow the longest time between a request
	// and the server FIN or RST it crosses.
	MinIdle    time.Duration
	RaceWindow time.Duration
}

func defaultKeepalive() KeepaliveConfig {
	return KeepaliveConfig{MinIdle: 500 * time.Millisecond, RaceWindow: time.Second}
}

func (c *KeepaliveConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.MinIdle, "keepalive-min-idle", c.MinIdle, "keepalive_mismatch: shortest idle gap before a server close counted as an idle timeout")
	fs.DurationVar(&c.RaceWindow, "keepalive-race", c.RaceWindow, "keepalive_mismatch: longest request-to-server-close delay counted as a race")
}

// detectKeepaliveMismatch is not written yet.
func detectKeepaliveMismatch(in *Input, cfg KeepaliveConfig) []Finding { return nil }
