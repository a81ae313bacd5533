package analyze

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/grpc"
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
	ConnectionLost   ConnectionLostConfig
	RequestErrors    RequestErrorsConfig
	PacketLoss       PacketLossConfig
	ProtocolAbuse    ProtocolAbuseConfig
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
		ConnectionLost:   defaultConnectionLost(),
		RequestErrors:    defaultRequestErrors(),
		PacketLoss:       defaultPacketLoss(),
		ProtocolAbuse:    defaultProtocolAbuse(),
	}
}

// RegisterFlags defines one flag per threshold on fs, writing into c.
// FlagGroups lists them by detector. A value Validate would refuse is
// refused when the flag is set, so that parsing fails naming the flag.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, g := range c.groups() {
		tmp := flag.NewFlagSet(g.kind, flag.ContinueOnError)
		g.flags(tmp)
		tmp.VisitAll(func(f *flag.Flag) {
			fs.Var(checkedValue{f.Value.(flag.Getter), func() error { return c.check(f.Name) }}, f.Name, f.Usage)
		})
	}
}

// checkedValue is a flag value that is checked once set.
type checkedValue struct {
	flag.Getter
	check func() error
}

// Set sets the value, then checks it.
func (v checkedValue) Set(s string) error {
	if err := v.Getter.Set(s); err != nil {
		return err
	}
	return v.check()
}

// detectorFlags pairs a detector's kind with the function registering its
// thresholds.
type detectorFlags struct {
	kind  string
	flags func(*flag.FlagSet)
}

// groups returns the detectors' flag registrations in the order of the
// help text.
func (c *Config) groups() []detectorFlags {
	return []detectorFlags{
		{KindRSTStorm, c.RSTStorm.flags},
		{KindResumptionFailure, c.Resumption.flags},
		{KindReconnectChurn, c.Churn.flags},
		{KindWindowStall, c.WindowStall.flags},
		{KindGoAway, c.GoAway.flags},
		{KindKeepaliveMismatch, c.Keepalive.flags},
		{KindHandshakeLatency, c.HandshakeLatency.flags},
		{KindSYNRetransmit, c.SYNRetransmit.flags},
		{KindConnectionLost, c.ConnectionLost.flags},
		{KindRequestErrors, c.RequestErrors.flags},
		{KindPacketLoss, c.PacketLoss.flags},
		{KindProtocolAbuse, c.ProtocolAbuse.flags},
	}
}

// A FlagGroup names the threshold flags of one detector.
type FlagGroup struct {
	Kind  string   // the finding kind the detector reports, "rst_storm"
	Flags []string // flag names without dashes, sorted
}

// FlagGroups returns the flags RegisterFlags defines, grouped by detector,
// so that a help text can list them apart from a command's own flags.
func FlagGroups() []FlagGroup {
	c := DefaultConfig()
	var gs []FlagGroup
	for _, g := range c.groups() {
		fs := flag.NewFlagSet(g.kind, flag.ContinueOnError)
		g.flags(fs)
		fg := FlagGroup{Kind: g.kind}
		fs.VisitAll(func(f *flag.Flag) { fg.Flags = append(fg.Flags, f.Name) })
		gs = append(gs, fg)
	}
	return gs
}

// Validate reports the thresholds that make no sense, each naming its
// flag: negative counts, durations and ratios; zero where a count or a
// window must be at least one (or positive); shares above 1. The zero
// values that switch a test off (handshake-min, syn-min-retry, ...) are
// allowed. DefaultConfig is valid; a Config built by hand need not be.
func (c *Config) Validate() error {
	var errs []error
	for _, r := range c.rules() {
		if err := r.check(); err != nil {
			errs = append(errs, fmt.Errorf("--%s %s: %w", r.flag, r.value(), err))
		}
	}
	return errors.Join(errs...)
}

// check checks the threshold of one flag, as Validate does.
func (c *Config) check(name string) error {
	for _, r := range c.rules() {
		if r.flag == name {
			return r.check()
		}
	}
	return nil
}

// A rule checks the threshold of one flag; its error says what the value
// must be ("must be at least 1").
type rule struct {
	flag  string
	value func() string
	check func() error
}

// rules returns the checks of every threshold.
func (c *Config) rules() []rule {
	count := func(name string, v *int, least int) rule {
		return rule{name, func() string { return fmt.Sprint(*v) }, func() error {
			if *v < least {
				return fmt.Errorf("must be at least %d", least)
			}
			return nil
		}}
	}
	dur := func(name string, d *time.Duration, zeroOK bool) rule {
		return rule{name, func() string { return d.String() }, func() error {
			switch {
			case *d <= 0 && !zeroOK:
				return errors.New("must be positive")
			case *d < 0:
				return errors.New("must not be negative")
			}
			return nil
		}}
	}
	nonNeg := func(name string, f *float64) rule {
		return rule{name, func() string { return fmt.Sprint(*f) }, func() error {
			if !(*f >= 0) { // NaN too
				return errors.New("must not be negative")
			}
			return nil
		}}
	}
	share := func(name string, f *float64) rule {
		return rule{name, func() string { return fmt.Sprint(*f) }, func() error {
			if !(*f >= 0 && *f <= 1) {
				return errors.New("must be a share from 0 to 1")
			}
			return nil
		}}
	}
	const zeroOK, positive = true, false
	r, ch, w, h, s := &c.RSTStorm, &c.Churn, &c.WindowStall, &c.HandshakeLatency, &c.SYNRetransmit
	return []rule{
		dur("rst-window", &r.Window, positive),
		count("rst-min", &r.MinResets, 1),
		dur("rst-rapid", &r.RapidReset, zeroOK),
		count("rst-critical", &r.CriticalResets, 1),

		count("resumption-min-failures", &c.Resumption.MinFailures, 1),
		share("resumption-fail-ratio", &c.Resumption.MinFailRatio),

		count("churn-min-conns", &ch.MinConns, 1),
		nonNeg("churn-max-reqs", &ch.MaxRequestsPerConn),
		share("churn-one-req-share", &ch.MinOneRequestShare),
		dur("churn-window", &ch.ReuseWindow, positive),
		dur("churn-long-lived", &ch.LongLived, positive),
		count("churn-critical-time-wait", &ch.CriticalTimeWait, 1),

		dur("stall-min", &w.MinStall, zeroOK),
		dur("stall-critical", &w.CriticalStall, zeroOK),
		share("stall-min-share", &w.MinShare),
		dur("stall-zero-window-gap", &w.ZeroWindowGap, positive),

		dur("goaway-reconnect-window", &c.GoAway.ReconnectWindow, positive),

		dur("keepalive-min-idle", &c.Keepalive.MinIdle, zeroOK),
		dur("keepalive-race", &c.Keepalive.RaceWindow, positive),

		nonNeg("handshake-factor", &h.Factor),
		nonNeg("handshake-mads", &h.MADs),
		dur("handshake-min", &h.MinLatency, zeroOK),
		count("handshake-min-samples", &h.MinSamples, 1),
		dur("handshake-critical", &h.CriticalLatency, zeroOK),
		dur("handshake-slow-baseline", &h.SlowBaseline, positive),

		count("syn-critical", &s.CriticalAttempts, 1),
		dur("syn-min-retry", &s.MinRetryDelay, zeroOK),
		count("syn-scan-ports", &s.ScanPorts, 1),
		dur("syn-fallback", &s.Fallback, zeroOK),

		count("lost-min-in-flight", &c.ConnectionLost.MinInFlight, 1),

		count("errors-min", &c.RequestErrors.MinErrors, 1),
		share("errors-min-share", &c.RequestErrors.MinShare),
		share("errors-critical-share", &c.RequestErrors.CriticalShare),

		count("loss-min", &c.PacketLoss.MinRetransmissions, 1),
		share("loss-min-share", &c.PacketLoss.MinShare),
		share("loss-critical-share", &c.PacketLoss.CriticalShare),

		count("abuse-flood-frames", &c.ProtocolAbuse.FloodFrames, 1),
		count("abuse-flood-per-stream", &c.ProtocolAbuse.FloodPerStream, 1),
		nonNeg("abuse-flood-rate", &c.ProtocolAbuse.FloodRate),
		count("abuse-syn-flood", &c.ProtocolAbuse.SYNFlood, 1),
		count("abuse-syn-sources", &c.ProtocolAbuse.SYNFloodSources, 1),
	}
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
		a.final(c)
	}
	return a.result(in.Stats)
}

// confidence rates what conns show given the capture's quality: each
// reason lowers it one step from "high". A detector adds its own reasons
// with Confidence.with. With in nil, the capture's reasons are left out
// (see pending).
func confidence(in *capture, conns ...*Conn) Confidence {
	rs := make([]connReasons, len(conns))
	for i, c := range conns {
		rs[i] = reasonsOf(c)
	}
	return confidenceOf(in, rs...)
}

// confidenceOf is confidence over the reasons of the connections, in
// their order.
func confidenceOf(in *capture, rs ...connReasons) Confidence {
	var reasons []string
	for _, r := range rs {
		reasons = r.append(reasons)
	}
	reasons = append(reasons, statsReasons(in)...)
	return Confidence{}.with(reasons...)
}

// connReasons are the reasons one connection gives to doubt what it
// shows, as bits, so that a detector keeps them without the connection.
type connReasons uint8

// The reasons, in the order a finding's confidence lists them.
const (
	reasonLoss connReasons = 1 << iota
	reasonNoHandshake
	reasonWindowScale
	reasonUndecrypted
	reasonGRPCFraming
)

var connReasonText = [...]string{
	"packet loss in the capture (missed bytes)",
	"connection start not captured (no handshake seen)",
	"TCP window scale unknown",
	"TLS not decrypted (no key log for it)",
	"gRPC framing anomalies (calls may be misread or missing)",
}

// reasonsOf returns the reasons c gives.
func reasonsOf(c *Conn) connReasons {
	var r connReasons
	t := c.TCP
	if t.LostSegments > 0 || t.MissedBytes > 0 {
		r |= reasonLoss
	}
	if t.SYNs == 0 && t.SYNACKs == 0 {
		r |= reasonNoHandshake
	}
	if t.WindowScale.C2S == nil || t.WindowScale.S2C == nil {
		r |= reasonWindowScale
	}
	if c.App != nil && c.App.TLS != nil && !c.App.TLS.Decrypted && c.App.TLS.AppDataRecords != [2]int{} {
		r |= reasonUndecrypted
	}
	if c.App != nil && len(c.App.GRPCAnomalies) > 0 {
		for _, a := range grpcFramingAnomalies {
			if c.App.GRPCAnomalies[a] > 0 {
				r |= reasonGRPCFraming
			}
		}
	}
	return r
}

// grpcFramingAnomalies are the gRPC dissector's anomalies that make its
// calls doubtful (a capture gap, already a reason of its own, or a call
// reset before its status are not among them).
var grpcFramingAnomalies = []string{grpc.AnomalyMessageTooLarge, grpc.AnomalyBadMessageFlag, grpc.AnomalyBadGRPCStatus, grpc.AnomalyCallsNotRecorded, grpc.AnomalyTooManyStreams}

// append appends the texts of r's reasons to reasons.
func (r connReasons) append(reasons []string) []string {
	for i, text := range connReasonText {
		if r&(1<<i) != 0 {
			reasons = append(reasons, text)
		}
	}
	return reasons
}

// statsReasons returns the reasons the capture's reading statistics give
// to doubt every finding (none for in nil).
func statsReasons(in *capture) []string {
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
