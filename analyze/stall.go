package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

// WindowStallConfig holds the window_stall thresholds.
type WindowStallConfig struct {
	// MinStall is the shortest flow-control stall (HTTP/2 window at zero
	// with data waiting, or TCP zero window) reported as a warning;
	// CriticalStall the duration that makes it critical; 0 (the
	// default) never does: stalled time is a cost, a warning, by the
	// severity rule (README, "Findings").
	MinStall      time.Duration
	CriticalStall time.Duration
	// MinShare is the least share of the stalled streams' lifetime (of
	// the connection's, for its window) that many short HTTP/2 stalls,
	// adding up to MinStall, must take to be reported.
	MinShare float64
	// ZeroWindowGap is the longest gap between two zero-window segments
	// of one TCP stall episode.
	ZeroWindowGap time.Duration
}

func defaultWindowStall() WindowStallConfig {
	return WindowStallConfig{MinStall: 100 * time.Millisecond, MinShare: 0.1, ZeroWindowGap: 5 * time.Second}
}

func (c *WindowStallConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.MinStall, "stall-min", c.MinStall, "window_stall: shortest flow-control stall reported as a warning")
	fs.DurationVar(&c.CriticalStall, "stall-critical", c.CriticalStall, "window_stall: stall duration that makes it critical (0, the default: never; a stall is a cost, a warning, by the severity rule)")
	fs.Float64Var(&c.MinShare, "stall-min-share", c.MinShare, "window_stall: least share of the streams' lifetime that many short stalls must take")
	fs.DurationVar(&c.ZeroWindowGap, "stall-zero-window-gap", c.ZeroWindowGap, "window_stall: longest gap between zero-window segments of one TCP stall")
}

// Layers a window_stall names.
const (
	layerStream = "HTTP/2 stream window"
	layerConn   = "HTTP/2 connection window"
	layerTCP    = "TCP receive window"
)

// h2stall is one HTTP/2 stall kept for the report, with its duration.
type h2stall struct {
	http2.Stall
	dur  time.Duration
	open bool // lasted to the end of the capture
}

// windowStall reports senders held back by flow control.
//
// Signals, per connection and per starved sender (the side that could
// not send):
//   - HTTP/2: the stall intervals the dissector records (App.HTTP2.Stalls
//     for the connection window, Stream.Stalls for stream windows): the
//     sender's window at or below zero from Start (the DATA, or SETTINGS,
//     that exhausted it) to End (the WINDOW_UPDATE or SETTINGS that
//     reopened it). Its duration is the receiver's WINDOW_UPDATE latency.
//     One finding per connection, layer ("HTTP/2 stream window", "HTTP/2
//     connection window") and starved side, when one stall lasts at least
//     MinStall, or when the stalls add up to MinStall and take at least
//     MinShare of the stalled streams' lifetime (of the connection's, for
//     its window): a slow reader that lets a few KB through every few
//     milliseconds stalls the sender most of the time without any single
//     long stall.
//   - TCP: zero-window advertisements (Conn.ZeroWindows) by the receiver,
//     grouped into episodes (segments at most ZeroWindowGap apart). The
//     end of an episode is not recorded, so its duration is a lower bound:
//     first to last zero-window segment. An episode is reported when it
//     lasts at least MinStall or the sender had to probe the window
//     (zero-window probes); window-full segments (Conn.WindowFulls) of
//     the starved sender are added as supporting evidence.
//
// A stall open when the capture ends is timed up to the connection's last
// frame, and the summary says so. A warning; with CriticalStall set, a
// stall of CriticalStall or more (or short stalls adding up to it over
// half the streams' life) is critical.
//
// False positives avoided: stalls ended by END_STREAM or RST_STREAM (the
// window was exhausted exactly by the stream's last byte, or the stream
// was abandoned: no data was waiting) and by a capture gap (the window
// is unknown); a connection window still at zero at the end of the
// capture when every stream of that sender had finished; stalls below
// MinStall; scattered short stalls that are a small share of a long
// transfer; a lone zero-window segment with no probe, whose duration
// the capture cannot show.
//
// Metrics: stalls, total_stall_ms, longest_stall_ms, median_stall_ms,
// window_update_latency_ms (median, stalls ended by WINDOW_UPDATE),
// open_stalls, stall_share (HTTP/2), stalled_streams, min_window,
// stalls_dropped (past the dissector's bounds: totals are then lower
// bounds); for
// TCP: zero_windows, zero_window_probes, window_full, episodes,
// longest_stall_ms.
//
// Each connection's findings are made when it finishes.
type windowStall struct {
	cfg   WindowStallConfig
	found []pending
}

func (d *windowStall) observe(c *Conn) {
	for _, f := range h2StallFindings(nil, d.cfg, c) {
		d.found = append(d.found, newPending(f, c))
	}
	for _, f := range tcpStallFindings(nil, d.cfg, c) {
		d.found = append(d.found, newPending(f, c))
	}
}

func (d *windowStall) findings(in *capture) []Finding { return finishAll(in, d.found) }

// h2StallFindings returns c's HTTP/2 flow-control findings.
func h2StallFindings(in *capture, cfg WindowStallConfig, c *Conn) []Finding {
	if c.App == nil || c.App.HTTP2 == nil {
		return nil
	}
	end := c.TCP.LastTS
	keep := func(s http2.Stall) (h2stall, bool) {
		switch s.EndedBy {
		case http2.StallEndStream, http2.StallRSTStream, http2.StallCaptureGap:
			return h2stall{}, false
		}
		if s.End == nil {
			return h2stall{Stall: s, dur: end.Sub(s.Start.TS), open: true}, true
		}
		return h2stall{Stall: s, dur: s.End.TS.Sub(s.Start.TS)}, true
	}
	var out []Finding
	for _, dir := range []event.Dir{event.C2S, event.S2C} {
		// Stream windows.
		var ss []h2stall
		var life time.Duration
		dropped := 0
		for i := range c.Records.Streams {
			st := &c.Records.Streams[i]
			n := len(ss)
			dropped += st.StallsDropped
			for _, s := range st.Stalls {
				if s.Dir != dir {
					continue
				}
				if x, ok := keep(s); ok {
					ss = append(ss, x)
				}
			}
			if len(ss) > n {
				life += streamLife(st, end)
			}
		}
		if f, ok := h2StallFinding(in, cfg, c, dir, layerStream, ss, life, dropped); ok {
			out = append(out, f)
		}
		// The connection window.
		ss = ss[:0]
		for _, s := range c.Records.Stalls {
			if s.Dir != dir {
				continue
			}
			x, ok := keep(s)
			if !ok || x.open && !pendingSender(c, dir) {
				continue
			}
			ss = append(ss, x)
		}
		if f, ok := h2StallFinding(in, cfg, c, dir, layerConn, ss, end.Sub(c.TCP.FirstTS), c.App.HTTP2.StallsDropped); ok {
			out = append(out, f)
		}
	}
	return out
}

// streamLife returns how long st lasted: from its first HEADERS to the
// last of its ends, or to end when it did not finish.
func streamLife(st *http2.Stream, end time.Time) time.Duration {
	if st.FirstHeaders == nil {
		return 0
	}
	last := time.Time{}
	for _, r := range []*event.Ref{st.ClientEnd, st.ServerEnd} {
		if r != nil && r.TS.After(last) {
			last = r.TS
		}
	}
	if st.Reset != nil && st.Reset.Ref.TS.After(last) {
		last = st.Reset.Ref.TS
	}
	if st.ClientEnd == nil || st.ServerEnd == nil {
		if st.Reset == nil {
			last = end
		}
	}
	if last.Before(st.FirstHeaders.TS) {
		return 0
	}
	return last.Sub(st.FirstHeaders.TS)
}

// pendingSender reports whether some stream of c was left unfinished by
// dir (no END_STREAM from it, no reset): dir may still have had data to
// send when the capture ended.
func pendingSender(c *Conn, dir event.Dir) bool {
	for i := range c.Records.Streams {
		st := &c.Records.Streams[i]
		ended := st.ClientEnd
		if dir == event.S2C {
			ended = st.ServerEnd
		}
		if ended == nil && st.Reset == nil {
			return true
		}
	}
	return false
}

// h2StallFinding builds the finding for dir's stalls ss of one layer of c,
// if they are worth one; life is the lifetime they are a share of, and
// dropped counts the stalls of the layer past the dissector's bounds (of
// either side: the records do not say).
func h2StallFinding(in *capture, cfg WindowStallConfig, c *Conn, dir event.Dir, layer string, ss []h2stall, life time.Duration, dropped int) (Finding, bool) {
	if len(ss) == 0 {
		return Finding{}, false
	}
	var total time.Duration
	var durs, wu []float64
	longest := 0
	open, minWin, measured, inferred := 0, int64(0), 0, 0
	streams := map[uint32]bool{}
	for i, s := range ss {
		total += s.dur
		durs = append(durs, ms(s.dur))
		if s.EndedBy == http2.StallWindowUpdate {
			wu = append(wu, ms(s.dur))
		}
		if s.dur > ss[longest].dur {
			longest = i
		}
		if s.open {
			open++
		}
		if s.Inferred {
			inferred++
		} else {
			minWin = min(minWin, s.MinWindow)
			measured++
		}
		if s.Stream != 0 {
			streams[s.Stream] = true
		}
	}
	share := 0.0
	if life > 0 {
		share = min(1, float64(total)/float64(life))
	}
	long := ss[longest]
	single := long.dur >= cfg.MinStall
	cumulative := total >= cfg.MinStall && share >= cfg.MinShare
	if !single && !cumulative {
		return Finding{}, false
	}
	f := Finding{Kind: KindWindowStall, Severity: Warning, Connections: []event.ConnID{c.ID()}, Cause: CauseH2StreamWindow}
	if layer == layerConn {
		f.Cause = CauseH2ConnectionWindow
	}
	if cfg.CriticalStall > 0 && (long.dur >= cfg.CriticalStall || total >= cfg.CriticalStall && share >= 0.5) {
		f.Severity = Critical
	}
	m := map[string]any{
		"stalls":           len(ss),
		"total_stall_ms":   ms(total),
		"longest_stall_ms": ms(long.dur),
		"median_stall_ms":  medianOf(durs),
	}
	if measured > 0 {
		m["min_window"] = minWin
	}
	if inferred > 0 {
		m["inferred_stalls"] = inferred
	}
	if len(wu) > 0 {
		m["window_update_latency_ms"] = medianOf(wu)
	}
	if open > 0 {
		m["open_stalls"] = open
	}
	if life > 0 {
		m["stall_share"] = roundTo(share, 3)
	}
	if len(streams) > 0 {
		m["stalled_streams"] = len(streams)
	}
	if dropped > 0 {
		m["stalls_dropped"] = dropped
	}
	f.Metrics = m
	ids := sortedKeys(streams)
	for _, id := range ids {
		f.Streams = append(f.Streams, StreamRef{Conn: c.ID(), Stream: id})
	}

	sender, receiver := dirWho(dir), dirWho(dir.Reverse())
	where := "on connection " + connText(c.ID())
	if len(ids) == 1 {
		where = fmt.Sprintf("on stream %d of connection %s", ids[0], connText(c.ID()))
	} else if len(ids) > 1 {
		where = fmt.Sprintf("on %d streams of connection %s", len(ids), connText(c.ID()))
	}
	if single && (len(ss) == 1 || !cumulative) {
		f.Summary = fmt.Sprintf("%s blocked by the %s's %s for %s %s", capital(sender), receiver, layer, fmtDur(long.dur), where)
	} else {
		more := ""
		if dropped > 0 {
			more = "at least "
		}
		f.Summary = fmt.Sprintf("%s blocked by the %s's %s %s%d times %s, %s%s in all (%.0f%% of the time), longest %s",
			capital(sender), receiver, layer, more, len(ss), where, more, fmtDur(total), share*100, fmtDur(long.dur))
	}
	if len(wu) > 0 {
		f.Summary += fmt.Sprintf("; WINDOW_UPDATE after %s (median)", fmtMS(medianOf(wu)))
	}
	if long.open {
		f.Summary += "; still stalled when the capture ended (timed to the connection's last frame)"
	}

	// Evidence: the longest stalls, start and end.
	top := slices.Clone(ss)
	slices.SortStableFunc(top, func(a, b h2stall) int { return cmp.Compare(b.dur, a.dur) })
	for _, s := range top[:min(len(top), maxEvidence/2)] {
		what := fmt.Sprintf("%s's %s reaches %d", sender, layer, s.MinWindow)
		if s.Inferred {
			what = fmt.Sprintf("%s's %s reaches 0 (inferred: the sender stops at the same level again and again)", sender, layer)
		}
		f.Evidence = append(f.Evidence, evidence(c.ID(), s.Stream, s.Start, what))
		if s.End != nil {
			f.Evidence = append(f.Evidence, evidence(c.ID(), s.Stream, *s.End,
				fmt.Sprintf("%s from the %s reopens it after %s", s.EndedBy, receiver, fmtDur(s.dur))))
		}
	}
	f.Confidence = confidence(in, c)
	if dropped > 0 {
		f.Confidence = f.Confidence.with(fmt.Sprintf("%d stalls past the dissector's bound not examined", dropped))
	}
	if inferred > 0 {
		f.Confidence = f.Confidence.with("window inferred: the capture started mid-connection, so the window's start is unknown")
	}
	f.Remedy = h2StallRemedy(dir)
	return f, true
}

// h2StallRemedy names the settings behind an HTTP/2 stall of sender dir.
func h2StallRemedy(dir event.Dir) string {
	if dir == event.S2C {
		return "The client's receive windows hold the server back: make sure the client reads and closes response " +
			"bodies promptly (a handler that stops reading resp.Body stalls the stream); raise the client's windows " +
			"(net/http: Transport.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream, MaxReceiveBufferPerConnection}; " +
			"grpc-go: grpc.WithInitialWindowSize / grpc.WithInitialConnWindowSize — setting them turns off BDP-based " +
			"window growth, so leave them unset unless the static size is larger than what BDP probing reaches). " +
			"Envoy: http2_protocol_options.initial_stream_window_size / initial_connection_window_size; nginx proxies " +
			"are bounded by proxy_buffer_size/proxy_buffers."
	}
	return "The server's receive windows hold the client's uploads back: make the handler read the request body " +
		"as it arrives; raise the server's windows (golang.org/x/net/http2 Server.MaxUploadBufferPerStream / " +
		"MaxUploadBufferPerConnection, or net/http Server.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream, " +
		"MaxReceiveBufferPerConnection}; grpc-go server options grpc.InitialWindowSize / grpc.InitialConnWindowSize, " +
		"which disable BDP probing when set). Envoy: http2_protocol_options.initial_stream_window_size / " +
		"initial_connection_window_size; nginx: http2_body_preread_size, client_body_buffer_size."
}

// tcpStallFindings returns c's TCP zero-window findings.
func tcpStallFindings(in *capture, cfg WindowStallConfig, c *Conn) []Finding {
	var out []Finding
	for _, rdir := range []event.Dir{event.C2S, event.S2C} {
		zw := c.ZeroWindows[rdir]
		if len(zw) == 0 {
			continue
		}
		// Episodes of zero-window segments.
		type episode struct{ first, last int }
		var eps []episode
		for i := range zw {
			if len(eps) > 0 && zw[i].TS.Sub(zw[eps[len(eps)-1].last].TS) <= cfg.ZeroWindowGap {
				eps[len(eps)-1].last = i
				continue
			}
			eps = append(eps, episode{i, i})
		}
		longest := 0
		var total time.Duration
		dur := func(e episode) time.Duration { return zw[e.last].TS.Sub(zw[e.first].TS) }
		for i, e := range eps {
			total += dur(e)
			if dur(e) > dur(eps[longest]) {
				longest = i
			}
		}
		long := dur(eps[longest])
		probes := c.TCP.ZeroWindowProbes
		if long < cfg.MinStall && probes == 0 {
			continue
		}
		sdir := rdir.Reverse()
		sender, receiver := dirWho(sdir), dirWho(rdir)
		f := Finding{Kind: KindWindowStall, Severity: Warning, Connections: []event.ConnID{c.ID()}, Cause: CauseTCPZeroWindow}
		if cfg.CriticalStall > 0 && long >= cfg.CriticalStall {
			f.Severity = Critical
		}
		f.Metrics = map[string]any{
			"zero_windows":       max(c.TCP.ZeroWindows, len(zw)),
			"zero_window_probes": probes,
			"window_full":        c.TCP.WindowFull,
			"episodes":           len(eps),
			"longest_stall_ms":   ms(long),
			"total_stall_ms":     ms(total),
		}
		atLeast := "at least "
		f.Summary = fmt.Sprintf("%s advertised a zero %s on connection %s: the %s could not send for %s%s",
			capital(receiver), layerTCP, connText(c.ID()), sender, atLeast, fmtDur(long))
		if len(eps) > 1 {
			f.Summary += fmt.Sprintf(" (%d episodes)", len(eps))
		}
		if probes > 0 {
			f.Summary += fmt.Sprintf(", %d zero-window probes", probes)
		}
		if last := zw[eps[longest].last]; c.TCP.LastFrame > 0 && last.Frame == c.TCP.LastFrame {
			f.Summary += "; the window was still zero at the connection's last frame"
		}
		e := eps[longest]
		f.Evidence = append(f.Evidence, evidence(c.ID(), 0, zw[e.first], fmt.Sprintf("%s advertises a zero TCP window", receiver)))
		if e.last != e.first {
			f.Evidence = append(f.Evidence, evidence(c.ID(), 0, zw[e.last], fmt.Sprintf("%s still advertises zero %s later", receiver, fmtDur(long))))
		}
		for i, ep := range eps {
			if i != longest && len(f.Evidence) < maxEvidence/2 {
				f.Evidence = append(f.Evidence, evidence(c.ID(), 0, zw[ep.first], fmt.Sprintf("%s advertises a zero TCP window", receiver)))
			}
		}
		for _, r := range c.WindowFulls[sdir][:min(len(c.WindowFulls[sdir]), 4)] {
			f.Evidence = append(f.Evidence, evidence(c.ID(), 0, r, fmt.Sprintf("%s's data fills the %s's window", sender, receiver)))
		}
		f.Confidence = confidence(in, c)
		f.Remedy = fmt.Sprintf("The %s's application does not drain its socket: read (and close) bodies promptly, "+
			"keep handlers and consumers off the read path; if it reads but the buffer is too small for the "+
			"bandwidth-delay product, raise it (Linux net.core.rmem_max and net.ipv4.tcp_rmem, SO_RCVBUF via "+
			"net.TCPConn.SetReadBuffer — a fixed SO_RCVBUF turns off receive-buffer autotuning).", receiver)
		out = append(out, f)
	}
	return out
}

func (d *windowStall) final(*Conn) {}

func (d *windowStall) merge(o detector) { d.found = append(d.found, o.(*windowStall).found...) }
