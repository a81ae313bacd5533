package report

import (
	"math"
	"strconv"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http1"
)

// appendRecordJSON appends r's compact JSON, byte for byte what the
// report's JSON encoder writes (newJSONEncoder, without its newline),
// when r is a bare TCP connection (no application summary, as a SYN
// flood's million are) or one with an HTTP/1.x summary only (short
// HTTP/1.1 connections), whose strings need no escaping; ok is false
// otherwise, and the caller encodes r with encoding/json. Reflection
// costs more than the rest of such a connection's life.
func appendRecordJSON(b []byte, r *ConnRecord) (_ []byte, ok bool) {
	s := r.Summary
	if s == nil || r.HTTP1 != nil && !plainHTTP1(r.HTTP1) || r.HTTP2 != nil || r.GRPC != nil || r.TLS != nil || r.TunnelHTTP1 != nil ||
		r.Tunnel != "" || r.Decrypted != "" || len(s.Anomalies) > 0 || !s.Client.IsValid() || !s.Server.IsValid() ||
		!plainJSON(s.Proto) || !plainJSON(s.ConnState) || !plainJSON(s.History) || !plainJSON(string(s.Close)) {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, uint64(s.ID), 10)
	b = append(b, `,"client":"`...)
	b = s.Client.AppendTo(b)
	b = append(b, `","server":"`...)
	b = s.Server.AppendTo(b)
	b = append(b, '"')
	if s.Proto != "" {
		b = appendJSONString(append(b, `,"proto":`...), s.Proto)
	}
	if s.ClientGuessed {
		b = append(b, `,"client_guessed":true`...)
	}
	b = strconv.AppendUint(append(b, `,"first_frame":`...), s.FirstFrame, 10)
	b = strconv.AppendUint(append(b, `,"last_frame":`...), s.LastFrame, 10)
	if b, ok = appendJSONTime(append(b, `,"first_ts":`...), s.FirstTS); !ok {
		return b, false
	}
	if b, ok = appendJSONTime(append(b, `,"last_ts":`...), s.LastTS); !ok {
		return b, false
	}
	if b, ok = appendJSONFloat(append(b, `,"duration_ms":`...), s.DurationMS); !ok {
		return b, false
	}
	b = appendJSONPair(append(b, `,"packets":`...), s.Packets)
	b = appendJSONPair(append(b, `,"bytes":`...), s.Bytes)
	b = appendJSONString(append(b, `,"conn_state":`...), s.ConnState)
	b = appendJSONString(append(b, `,"history":`...), s.History)
	b = appendJSONString(append(b, `,"close":`...), string(s.Close))
	b = append(b, `,"handshake_rtt_ms":`...)
	if s.HandshakeRTTMS == nil {
		b = append(b, "null"...)
	} else if b, ok = appendJSONFloat(b, *s.HandshakeRTTMS); !ok {
		return b, false
	}
	b = strconv.AppendInt(append(b, `,"syns":`...), int64(s.SYNs), 10)
	b = strconv.AppendInt(append(b, `,"synacks":`...), int64(s.SYNACKs), 10)
	b = appendJSONIntPtr(append(b, `,"window_scale":{"c2s":`...), s.WindowScale.C2S)
	b = appendJSONIntPtr(append(b, `,"s2c":`...), s.WindowScale.S2C)
	b = append(b, '}')
	for _, f := range [...]struct {
		key string
		v   int
	}{
		{`,"retransmissions":`, s.Retransmissions}, {`,"fast_retransmissions":`, s.FastRetransmissions},
		{`,"spurious_retransmissions":`, s.SpuriousRetransmissions}, {`,"out_of_order":`, s.OutOfOrder},
		{`,"lost_segments":`, s.LostSegments}, {`,"ack_lost_segments":`, s.AckLostSegments},
		{`,"dup_acks":`, s.DupACKs}, {`,"zero_windows":`, s.ZeroWindows}, {`,"zero_window_probes":`, s.ZeroWindowProbes},
		{`,"window_full":`, s.WindowFull}, {`,"window_updates":`, s.WindowUpdates}, {`,"keep_alives":`, s.KeepAlives},
	} {
		b = strconv.AppendInt(append(b, f.key...), int64(f.v), 10)
	}
	b = appendJSONPair(append(b, `,"stream_bytes":`...), s.StreamBytes)
	b = strconv.AppendUint(append(b, `,"missed_bytes":`...), s.MissedBytes, 10)
	if h := r.HTTP1; h != nil {
		b = appendHTTP1JSON(append(b, `,"http1":`...), h)
	}
	return append(b, '}'), true
}

// plainHTTP1 reports whether appendHTTP1JSON writes h: no anomalies (a
// map) and strings that need no escaping.
func plainHTTP1(h *http1.Summary) bool {
	return len(h.Anomalies) == 0 && plainJSON(h.CloseRequestedBy) && plainJSON(h.Upgrade)
}

// appendHTTP1JSON appends h's JSON as encoding/json writes it, when
// plainHTTP1(h): the record of a short HTTP/1.1 connection, of which a
// busy capture holds millions.
func appendHTTP1JSON(b []byte, h *http1.Summary) []byte {
	b = strconv.AppendInt(append(b, `{"requests":`...), int64(h.Requests), 10)
	b = strconv.AppendInt(append(b, `,"responses":`...), int64(h.Responses), 10)
	if h.Interim != 0 {
		b = strconv.AppendInt(append(b, `,"interim":`...), int64(h.Interim), 10)
	}
	b = strconv.AppendInt(append(b, `,"unanswered":`...), int64(h.Unanswered), 10)
	if h.LostRequests != 0 {
		b = strconv.AppendInt(append(b, `,"lost_requests":`...), int64(h.LostRequests), 10)
	}
	if h.LostResponses != 0 {
		b = strconv.AppendInt(append(b, `,"lost_responses":`...), int64(h.LostResponses), 10)
	}
	b = strconv.AppendInt(append(b, `,"max_pipelined":`...), int64(h.MaxPipelined), 10)
	b = strconv.AppendBool(append(b, `,"keep_alive":`...), h.KeepAlive)
	if h.CloseRequestedBy != "" {
		b = appendJSONString(append(b, `,"close_requested_by":`...), h.CloseRequestedBy)
	}
	if h.CloseRequestedFrame != 0 {
		b = strconv.AppendUint(append(b, `,"close_requested_frame":`...), h.CloseRequestedFrame, 10)
	}
	if h.KeepAliveTimeout != 0 {
		b = strconv.AppendInt(append(b, `,"keep_alive_timeout":`...), int64(h.KeepAliveTimeout), 10)
	}
	if h.KeepAliveMax != 0 {
		b = strconv.AppendInt(append(b, `,"keep_alive_max":`...), int64(h.KeepAliveMax), 10)
	}
	if h.Upgrade != "" {
		b = appendJSONString(append(b, `,"upgrade":`...), h.Upgrade)
	}
	if h.UpgradeFrame != 0 {
		b = strconv.AppendUint(append(b, `,"upgrade_frame":`...), h.UpgradeFrame, 10)
	}
	return append(b, '}')
}

// plainJSON reports whether s is printable ASCII that JSON writes as it
// is (no quote, backslash, control, or byte the encoder would escape).
func plainJSON(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendJSONPair(b []byte, p event.Pair) []byte {
	b = strconv.AppendUint(append(b, `{"c2s":`...), p.C2S, 10)
	b = strconv.AppendUint(append(b, `,"s2c":`...), p.S2C, 10)
	return append(b, '}')
}

func appendJSONIntPtr(b []byte, p *int) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, int64(*p), 10)
}

// appendJSONTime appends t as time.Time.MarshalJSON does; ok is false
// for years it writes differently.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// appendJSONFloat appends f as encoding/json does in the range where it
// uses plain decimal notation; ok is false outside it (and for NaN and
// infinities, which it refuses).
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if a := math.Abs(f); math.IsNaN(f) || math.IsInf(f, 0) || a != 0 && (a < 1e-6 || a >= 1e21) {
		return b, false
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), true
}
