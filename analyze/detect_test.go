package analyze

import "net/netip"

// The detectX functions run one detector over in as Analyze does: each
// connection observed in id order, then the findings.

func detectOver(d detector, in *Input) []Finding {
	for _, c := range in.Conns {
		c.summarize()
		d.observe(c)
		d.final(c)
	}
	return d.findings(in.capture())
}

func detectRSTStorm(in *Input, cfg RSTStormConfig) []Finding {
	return detectOver(&rstStorm{cfg: cfg, servers: map[netip.AddrPort]*stormServer{}}, in)
}

func detectReconnectChurn(in *Input, cfg ChurnConfig) []Finding {
	return detectOver(newChurnFold(cfg), in)
}

func detectResumptionFailure(in *Input, cfg ResumptionConfig) []Finding {
	return detectOver(newResumptionFold(cfg), in)
}

func detectHandshakeLatency(in *Input, cfg HandshakeLatencyConfig) []Finding {
	return detectOver(newHandshakeFold(cfg), in)
}

func detectSYNRetransmit(in *Input, cfg SYNRetransmitConfig) []Finding {
	return detectOver(newSYNFold(cfg), in)
}

func detectWindowStall(in *Input, cfg WindowStallConfig) []Finding {
	return detectOver(&windowStall{cfg: cfg}, in)
}

func detectGoAway(in *Input, cfg GoAwayConfig) []Finding {
	return detectOver(&goAway{cfg: cfg}, in)
}

func detectKeepaliveMismatch(in *Input, cfg KeepaliveConfig) []Finding {
	return detectOver(&keepalive{cfg: cfg}, in)
}

// buildTables computes the tables of in.
func buildTables(in *Input) Tables {
	t := newTableBuilder()
	for _, c := range in.Conns {
		c.summarize()
		t.observe(c)
		t.final(c)
	}
	return t.tables(in.capture())
}

// capture returns what the detectors know of in's capture as a whole.
func (in *Input) capture() *capture {
	return &capture{Stats: in.Stats, conns: len(in.Conns)}
}
