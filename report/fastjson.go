package report

import (
	"math"
	"math/bits"
	"strconv"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// appendRecordJSON appends r's compact JSON, byte for byte what the
// report's JSON encoder writes (newJSONEncoder, without its newline),
// when r is a bare TCP connection (no application summary, as a SYN
// flood's million are) or one with an HTTP/1.x summary only (short
// HTTP/1.1 connections), whose strings need no escaping; ok is false
// otherwise, and the caller encodes r with encoding/json. Reflection
// costs more than the rest of such a connection's life.
func appendRecordJSON(b []byte, r *ConnRecord) (_ []byte, ok bool) {
	if !fastRecord(r) {
		return b, false
	}
	s := r.Summary
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
	b = appendJSONTime(append(b, `,"first_ts":`...), s.FirstTS)
	b = appendJSONTime(append(b, `,"last_ts":`...), s.LastTS)
	b = appendJSONFloat(append(b, `,"duration_ms":`...), s.DurationMS)
	b = appendJSONPair(append(b, `,"packets":`...), s.Packets)
	b = appendJSONPair(append(b, `,"bytes":`...), s.Bytes)
	b = appendJSONString(append(b, `,"conn_state":`...), s.ConnState)
	b = appendJSONString(append(b, `,"history":`...), s.History)
	b = appendJSONString(append(b, `,"close":`...), string(s.Close))
	b = append(b, `,"handshake_rtt_ms":`...)
	if s.HandshakeRTTMS == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONFloat(b, *s.HandshakeRTTMS)
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

// fastRecord reports whether appendRecordJSON writes r: a bare TCP
// connection or one with a plain HTTP/1.x summary, whose strings need no
// escaping and whose times and floats encoding/json writes as
// appendJSONTime and appendJSONFloat do.
func fastRecord(r *ConnRecord) bool {
	s := r.Summary
	if s == nil || r.HTTP1 != nil && !plainHTTP1(r.HTTP1) || r.HTTP2 != nil || r.GRPC != nil || r.TLS != nil || r.TunnelHTTP1 != nil ||
		r.Tunnel != "" || r.Decrypted != "" || len(s.Anomalies) > 0 || !s.Client.IsValid() || !s.Server.IsValid() ||
		!plainJSON(s.Proto) || !plainJSON(s.ConnState) || !plainJSON(s.History) || !plainJSON(string(s.Close)) {
		return false
	}
	return plainJSONTime(s.FirstTS) && plainJSONTime(s.LastTS) && plainJSONFloat(s.DurationMS) &&
		(s.HandshakeRTTMS == nil || plainJSONFloat(*s.HandshakeRTTMS))
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

// plainJSONTime reports whether appendJSONTime writes t as
// time.Time.MarshalJSON does: not for years or zone offsets (24 hours
// or more) it refuses.
func plainJSONTime(t time.Time) bool {
	y := t.Year()
	_, off := t.Zone()
	return y >= 0 && y <= 9999 && off > -24*3600 && off < 24*3600
}

// appendJSONTime appends t as time.Time.MarshalJSON does, when
// plainJSONTime(t).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// plainJSONFloat reports whether f is in the range where encoding/json
// uses plain decimal notation (not NaN or infinities, which it refuses).
func plainJSONFloat(f float64) bool {
	a := math.Abs(f)
	return !math.IsNaN(f) && !math.IsInf(f, 0) && (a == 0 || a >= 1e-6 && a < 1e21)
}

// appendJSONFloat appends f as encoding/json does, when plainJSONFloat(f).
func appendJSONFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// A record appendRecordJSON writes is kept in the spill file packed
// (packRecord), its JSON made only when it is read back: a capture's
// connections are all written and few read. A packed record starts with
// a 0 byte, which no JSON does; the connection's id, addresses and
// first and last times are in its head (connHead). Then come its flags,
// its strings, and its numbers (packedNums) as a mask of those that are
// not zero and those, in order: most of a short connection's are zero.

// Flags of a packed record.
const (
	packedGuessed   = 1 << iota // ClientGuessed
	packedRTT                   // HandshakeRTTMS set
	packedScaleC2S              // WindowScale.C2S set
	packedScaleS2C              // WindowScale.S2C set
	packedHTTP1                 // HTTP1 set
	packedKeepAlive             // HTTP1.KeepAlive
)

// packedNums is the numbers of a packed record, each as a uint64: signed
// ones zigzag-encoded (zig), floats as their bits reversed (Float), the
// last frame as its distance from the first (mod 2^64); a number whose
// flag is unset (RTT, window scales, HTTP/1.x) is zero.
type packedNums [packedNumCount]uint64

// Indices in packedNums.
const (
	pnFirstFrame = iota
	pnLastFrame
	pnDuration
	pnPacketsC2S
	pnPacketsS2C
	pnBytesC2S
	pnBytesS2C
	pnRTT
	pnSYNs
	pnSYNACKs
	pnScaleC2S
	pnScaleS2C
	pnStreamC2S
	pnStreamS2C
	pnMissed
	pnCloseFrame
	pnKeepAliveTimeout
	pnKeepAliveMax
	pnUpgradeFrame
	pnCounters                       // the 12 of packedCounters, in its order
	pnHTTP1        = pnCounters + 12 // the 7 of packedHTTP1Ints, in its order
	packedNumCount = pnHTTP1 + 7
)

// packedCounters returns the addresses of s's 12 counters, in packed
// order.
func packedCounters(s *tcp.Summary) [12]*int {
	return [...]*int{&s.Retransmissions, &s.FastRetransmissions, &s.SpuriousRetransmissions, &s.OutOfOrder,
		&s.LostSegments, &s.AckLostSegments, &s.DupACKs, &s.ZeroWindows, &s.ZeroWindowProbes, &s.WindowFull,
		&s.WindowUpdates, &s.KeepAlives}
}

// packedHTTP1Ints returns the addresses of h's 7 counts, in packed order.
func packedHTTP1Ints(h *http1.Summary) [7]*int {
	return [...]*int{&h.Requests, &h.Responses, &h.Interim, &h.Unanswered, &h.LostRequests,
		&h.LostResponses, &h.MaxPipelined}
}

// packRecord appends r packed, when appendRecordJSON writes it and its
// times are in UTC (they read back in UTC); ok is false otherwise.
func packRecord(e *enc, r *ConnRecord) (ok bool) {
	s := r.Summary
	if !fastRecord(r) || s.FirstTS.Location() != time.UTC || s.LastTS.Location() != time.UTC {
		return false
	}
	var flags uint64
	var n packedNums
	if s.ClientGuessed {
		flags |= packedGuessed
	}
	if s.HandshakeRTTMS != nil {
		flags |= packedRTT
		n[pnRTT] = floatBits(*s.HandshakeRTTMS)
	}
	if s.WindowScale.C2S != nil {
		flags |= packedScaleC2S
		n[pnScaleC2S] = zig(int64(*s.WindowScale.C2S))
	}
	if s.WindowScale.S2C != nil {
		flags |= packedScaleS2C
		n[pnScaleS2C] = zig(int64(*s.WindowScale.S2C))
	}
	n[pnFirstFrame] = s.FirstFrame
	n[pnLastFrame] = s.LastFrame - s.FirstFrame
	n[pnDuration] = floatBits(s.DurationMS)
	n[pnPacketsC2S], n[pnPacketsS2C] = s.Packets.C2S, s.Packets.S2C
	n[pnBytesC2S], n[pnBytesS2C] = s.Bytes.C2S, s.Bytes.S2C
	n[pnSYNs], n[pnSYNACKs] = zig(int64(s.SYNs)), zig(int64(s.SYNACKs))
	for i, p := range packedCounters(s) {
		n[pnCounters+i] = zig(int64(*p))
	}
	n[pnStreamC2S], n[pnStreamS2C], n[pnMissed] = s.StreamBytes.C2S, s.StreamBytes.S2C, s.MissedBytes
	h := r.HTTP1
	if h != nil {
		flags |= packedHTTP1
		if h.KeepAlive {
			flags |= packedKeepAlive
		}
		for i, p := range packedHTTP1Ints(h) {
			n[pnHTTP1+i] = zig(int64(*p))
		}
		n[pnCloseFrame] = h.CloseRequestedFrame
		n[pnKeepAliveTimeout], n[pnKeepAliveMax] = zig(int64(h.KeepAliveTimeout)), zig(int64(h.KeepAliveMax))
		n[pnUpgradeFrame] = h.UpgradeFrame
	}
	var mask uint64
	for i, v := range n {
		if v != 0 {
			mask |= 1 << i
		}
	}
	e.b = append(e.b, 0, byte(flags))
	e.String(s.Proto)
	e.String(s.ConnState)
	e.String(s.History)
	e.String(string(s.Close))
	if h != nil {
		e.String(h.CloseRequestedBy)
		e.String(h.Upgrade)
	}
	e.Uint(mask)
	for m := mask; m != 0; m &= m - 1 {
		e.Uint(n[bits.TrailingZeros64(m)])
	}
	return true
}

// isPacked reports whether rec, a spill record's record, is packed.
func isPacked(rec []byte) bool { return len(rec) > 0 && rec[0] == 0 }

// unpackRecord decodes a record packRecord packed, of the connection
// whose head is hd.
func unpackRecord(b []byte, hd *connHead) (ConnRecord, error) {
	if !isPacked(b) || len(b) < 2 {
		return ConnRecord{}, errSpillCorrupt
	}
	flags := b[1]
	d := dec{b: b[2:]}
	s := &tcp.Summary{ID: hd.id, Client: hd.client, Server: hd.server, FirstTS: hd.first, LastTS: hd.last}
	s.ClientGuessed = flags&packedGuessed != 0
	s.Proto = d.String()
	s.ConnState = d.String()
	s.History = d.String()
	s.Close = tcp.Close(d.String())
	r := ConnRecord{Summary: s}
	var h *http1.Summary
	if flags&packedHTTP1 != 0 {
		h = &http1.Summary{KeepAlive: flags&packedKeepAlive != 0}
		h.CloseRequestedBy = d.String()
		h.Upgrade = d.String()
		r.HTTP1 = h
	}
	var n packedNums
	mask := d.Uint()
	if mask>>packedNumCount != 0 {
		d.fail()
	}
	for m := mask; m != 0; m &= m - 1 {
		n[bits.TrailingZeros64(m)] = d.Uint()
	}
	s.FirstFrame = n[pnFirstFrame]
	s.LastFrame = n[pnFirstFrame] + n[pnLastFrame]
	s.DurationMS = bitsFloat(n[pnDuration])
	s.Packets = event.Pair{C2S: n[pnPacketsC2S], S2C: n[pnPacketsS2C]}
	s.Bytes = event.Pair{C2S: n[pnBytesC2S], S2C: n[pnBytesS2C]}
	if flags&packedRTT != 0 {
		v := bitsFloat(n[pnRTT])
		s.HandshakeRTTMS = &v
	}
	s.SYNs, s.SYNACKs = int(unzig(n[pnSYNs])), int(unzig(n[pnSYNACKs]))
	if flags&packedScaleC2S != 0 {
		v := int(unzig(n[pnScaleC2S]))
		s.WindowScale.C2S = &v
	}
	if flags&packedScaleS2C != 0 {
		v := int(unzig(n[pnScaleS2C]))
		s.WindowScale.S2C = &v
	}
	for i, p := range packedCounters(s) {
		*p = int(unzig(n[pnCounters+i]))
	}
	s.StreamBytes = event.Pair{C2S: n[pnStreamC2S], S2C: n[pnStreamS2C]}
	s.MissedBytes = n[pnMissed]
	if h != nil {
		for i, p := range packedHTTP1Ints(h) {
			*p = int(unzig(n[pnHTTP1+i]))
		}
		h.CloseRequestedFrame = n[pnCloseFrame]
		h.KeepAliveTimeout, h.KeepAliveMax = int(unzig(n[pnKeepAliveTimeout])), int(unzig(n[pnKeepAliveMax]))
		h.UpgradeFrame = n[pnUpgradeFrame]
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errSpillCorrupt
	}
	return r, d.err
}
