package analyze

import (
	"flag"
	"time"
)

// SYNRetransmitConfig holds the syn_retransmit thresholds.
type SYNRetransmitConfig struct {
	// CriticalAttempts is the number of failed or retried connection
	// attempts that makes the finding critical.
	CriticalAttempts int
}

func defaultSYNRetransmit() SYNRetransmitConfig {
	return SYNRetransmitConfig{CriticalAttempts: 10}
}

func (c *SYNRetransmitConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.CriticalAttempts, "syn-critical", c.CriticalAttempts, "syn_retransmit: failed or retried attempts that make it critical")
	_ = time.Second
}

// detectSYNRetransmit is not written yet.
func detectSYNRetransmit(in *Input, cfg SYNRetransmitConfig) []Finding { return nil }
