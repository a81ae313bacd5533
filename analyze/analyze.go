package analyze

import (
	"flag"
	"time"

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

// Analyze runs every detector over in.
func Analyze(in *Input, cfg Config) Result {
	var fs []Finding
	fs = append(fs, detectRSTStorm(in, cfg.RSTStorm)...)
	fs = append(fs, detectResumptionFailure(in, cfg.Resumption)...)
	fs = append(fs, detectReconnectChurn(in, cfg.Churn)...)
	fs = append(fs, detectWindowStall(in, cfg.WindowStall)...)
	fs = append(fs, detectGoAway(in, cfg.GoAway)...)
	fs = append(fs, detectKeepaliveMismatch(in, cfg.Keepalive)...)
	fs = append(fs, detectHandshakeLatency(in, cfg.HandshakeLatency)...)
	fs = append(fs, detectSYNRetransmit(in, cfg.SYNRetransmit)...)
	for i := range fs {
		fs[i].normalize()
	}
	sortFindings(fs)
	if fs == nil {
		fs = []Finding{}
	}
	return Result{Findings: fs, Tables: buildTables(in)}
}

// confidence rates what conns show given the capture's quality: each
// reason lowers it one step from "high".
func confidence(in *Input, conns ...*Conn) Confidence {
	var reasons []string
	add := func(ok bool, r string) {
		if ok {
			for _, x := range reasons {
				if x == r {
					return
				}
			}
			reasons = append(reasons, r)
		}
	}
	for _, c := range conns {
		t := c.TCP
		add(t.LostSegments > 0 || t.MissedBytes > 0, "packet loss in the capture (missed bytes)")
		add(t.SYNs == 0 && t.SYNACKs == 0, "connection start not captured (no handshake seen)")
		add(t.WindowScale.C2S == nil || t.WindowScale.S2C == nil, "TCP window scale unknown")
		if c.App != nil && c.App.TLS != nil && !c.App.TLS.Decrypted && c.App.TLS.AppDataRecords != [2]int{} {
			add(true, "TLS not decrypted (no key log for it)")
		}
	}
	add(in.Stats.Layer.Truncated > 0, "frames cut by the snap length")
	add(len(in.Stats.Faults) > 0, "capture file damaged or cut short")
	level := "high"
	switch {
	case len(reasons) >= 2:
		level = "low"
	case len(reasons) == 1:
		level = "medium"
	}
	return Confidence{Level: level, Reasons: reasons}
}

// ms converts a duration to float milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}
