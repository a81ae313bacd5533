package analyze

import (
	"flag"
	"slices"

	"github.com/h2scope/h2scope/dissect"
)

// Config holds every detector's thresholds. DefaultConfig returns the
// defaults; RegisterFlags exposes each as a command-line flag.
type Config struct {
	RSTStorm         RSTStormConfig
	Resumption       ResumptionConfig
	Churn            ChurnConfig
	WindowStall      WindowStallConfig
	GoAway           GoAwayConfig
	Keepalive        KeepaliveConfig
	HandshakeLatency HandshakeLatencyConfig
	SYNRetransmit    SYNRetransmitConfig
}

// DefaultConfig returns the default thresholds.
func DefaultConfig() Config {
	return Config{
		RSTStorm:         defaultRSTStorm(),
		Resumption:       defaultResumption(),
		Churn:            defaultChurn(),
		WindowStall:      defaultWindowStall(),
		GoAway:           defaultGoAway(),
		Keepalive:        defaultKeepalive(),
		HandshakeLatency: defaultHandshakeLatency(),
		SYNRetransmit:    defaultSYNRetransmit(),
	}
}

// RegisterFlags defines one flag per threshold on fs, writing into c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.RSTStorm.flags(fs)
	c.Resumption.flags(fs)
	c.Churn.flags(fs)
	c.WindowStall.flags(fs)
	c.GoAway.flags(fs)
	c.Keepalive.flags(fs)
	c.HandshakeLatency.flags(fs)
	c.SYNRetransmit.flags(fs)
}

// Input is what the detectors read: every finished connection of the
// capture, in id order, and the capture's reading statistics.
type Input struct {
	Conns []*Conn
	Stats dissect.Stats
}

// Result is the analysis of one capture.
type Result struct {
	// Findings are sorted by severity (highest first), kind, then frame.
	Findings []Finding `json:"findings"`
	// Tables holds the summaries users ask for.
	Tables Tables `json:"tables"`
}

// Analyze runs every detector over in, whose connections still hold
// their full records: each is observed in id order, as a Collector
// observes them when they finish.
func Analyze(in *Input, cfg Config) Result {
	a := newAnalysis(cfg)
	for _, c := range in.Conns {
		a.observe(c)
	}
	return a.result(in)
}

// confidence rates what conns show given the capture's quality: each
// reason lowers it one step from "high". A detector adds its own reasons
// with Confidence.with. With in nil, the capture's reasons are left out
// (see pending).
func confidence(in *Input, conns ...*Conn) Confidence {
	var reasons []string
	add := func(ok bool, r string) {
		if ok {
			reasons = append(reasons, r)
		}
	}
	for _, c := range conns {
		t := c.TCP
		add(t.LostSegments > 0 || t.MissedBytes > 0, "packet loss in the capture (missed bytes)")
		add(t.SYNs == 0 && t.SYNACKs == 0, "connection start not captured (no handshake seen)")
		add(t.WindowScale.C2S == nil || t.WindowScale.S2C == nil, "TCP window scale unknown")
		add(c.App != nil && c.App.TLS != nil && !c.App.TLS.Decrypted && c.App.TLS.AppDataRecords != [2]int{},
			"TLS not decrypted (no key log for it)")
	}
	reasons = append(reasons, statsReasons(in)...)
	return Confidence{}.with(reasons...)
}

// statsReasons returns the reasons the capture's reading statistics give
// to doubt every finding (none for in nil).
func statsReasons(in *Input) []string {
	if in == nil {
		return nil
	}
	var reasons []string
	if in.Stats.Layer.Truncated > 0 {
		reasons = append(reasons, "frames cut by the snap length")
	}
	if len(in.Stats.Faults) > 0 {
		reasons = append(reasons, "capture file damaged or cut short")
	}
	return reasons
}

// with returns c with reasons added (those it already has are not
// repeated) and its level lowered one step from "high" per reason.
func (c Confidence) with(reasons ...string) Confidence {
	c.Reasons = slices.Clip(c.Reasons)
	for _, r := range reasons {
		if !slices.Contains(c.Reasons, r) {
			c.Reasons = append(c.Reasons, r)
		}
	}
	switch {
	case len(c.Reasons) >= 2:
		c.Level = "low"
	case len(c.Reasons) == 1:
		c.Level = "medium"
	default:
		c.Level = "high"
	}
	return c
}
