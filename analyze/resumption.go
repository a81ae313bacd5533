package analyze

import (
	"flag"
	"time"
)

// ResumptionConfig holds the resumption_failure thresholds.
type ResumptionConfig struct {
	// MinFailures is the fewest failed resumptions (offered, answered
	// with a full handshake) in one (client, SNI, server) group that make
	// a finding; MinFailRatio the smallest share of failed offers.
	MinFailures  int
	MinFailRatio float64
}

func defaultResumption() ResumptionConfig {
	return ResumptionConfig{MinFailures: 2, MinFailRatio: 0.5}
}

func (c *ResumptionConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.MinFailures, "resumption-min-failures", c.MinFailures, "resumption_failure: failed resumptions in one client/SNI/server group that make a finding")
	fs.Float64Var(&c.MinFailRatio, "resumption-fail-ratio", c.MinFailRatio, "resumption_failure: smallest share of resumption offers that failed")
	_ = time.Second
}

// detectResumptionFailure is not written yet.
func detectResumptionFailure(in *Input, cfg ResumptionConfig) []Finding { return nil }
