package report

import (
	"math"
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
// time.Time.MarshalJSON does: not for years it writes differently.
func plainJSONTime(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
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
// first and last times are in its head (connHead), the rest in the order
// appendRecordJSON writes it.

// Flags of a packed record.
const (
	packedGuessed   = 1 << iota // ClientGuessed
	packedRTT                   // HandshakeRTTMS set
	packedScaleC2S              // WindowScale.C2S set
	packedScaleS2C              // WindowScale.S2C set
	packedHTTP1                 // HTTP1 set
	packedKeepAlive             // HTTP1.KeepAlive
)

// packRecord appends r packed, when appendRecordJSON writes it and its
// times are in UTC (they read back in UTC); ok is false otherwise.
func packRecord(e *enc, r *ConnRecord) (ok bool) {
	s := r.Summary
	if !fastRecord(r) || s.FirstTS.Location() != time.UTC || s.LastTS.Location() != time.UTC {
		return false
	}
	var flags uint64
	if s.ClientGuessed {
		flags |= packedGuessed
	}
	if s.HandshakeRTTMS != nil {
		flags |= packedRTT
	}
	if s.WindowScale.C2S != nil {
		flags |= packedScaleC2S
	}
	if s.WindowScale.S2C != nil {
		flags |= packedScaleS2C
	}
	h := r.HTTP1
	if h != nil {
		flags |= packedHTTP1
		if h.KeepAlive {
			flags |= packedKeepAlive
		}
	}
	e.b = append(e.b, 0)
	e.Uint(flags)
	e.String(s.Proto)
	e.Uint(s.FirstFrame)
	e.Uint(s.LastFrame)
	e.Float(s.DurationMS)
	e.Uint(s.Packets.C2S)
	e.Uint(s.Packets.S2C)
	e.Uint(s.Bytes.C2S)
	e.Uint(s.Bytes.S2C)
	e.String(s.ConnState)
	e.String(s.History)
	e.String(string(s.Close))
	if s.HandshakeRTTMS != nil {
		e.Float(*s.HandshakeRTTMS)
	}
	e.Int(int64(s.SYNs))
	e.Int(int64(s.SYNACKs))
	if s.WindowScale.C2S != nil {
		e.Int(int64(*s.WindowScale.C2S))
	}
	if s.WindowScale.S2C != nil {
		e.Int(int64(*s.WindowScale.S2C))
	}
	for _, v := range [...]int{s.Retransmissions, s.FastRetransmissions, s.SpuriousRetransmissions, s.OutOfOrder,
		s.LostSegments, s.AckLostSegments, s.DupACKs, s.ZeroWindows, s.ZeroWindowProbes, s.WindowFull,
		s.WindowUpdates, s.KeepAlives} {
		e.Int(int64(v))
	}
	e.Uint(s.StreamBytes.C2S)
	e.Uint(s.StreamBytes.S2C)
	e.Uint(s.MissedBytes)
	if h != nil {
		for _, v := range [...]int{h.Requests, h.Responses, h.Interim, h.Unanswered, h.LostRequests,
			h.LostResponses, h.MaxPipelined} {
			e.Int(int64(v))
		}
		e.String(h.CloseRequestedBy)
		e.Uint(h.CloseRequestedFrame)
		e.Int(int64(h.KeepAliveTimeout))
		e.Int(int64(h.KeepAliveMax))
		e.String(h.Upgrade)
		e.Uint(h.UpgradeFrame)
	}
	return true
}

// isPacked reports whether rec, a spill record's record, is packed.
func isPacked(rec []byte) bool { return len(rec) > 0 && rec[0] == 0 }

// unpackRecord decodes a record packRecord packed, of the connection
// whose head is hd.
func unpackRecord(b []byte, hd *connHead) (ConnRecord, error) {
	if !isPacked(b) {
		return ConnRecord{}, errSpillCorrupt
	}
	d := dec{b: b[1:]}
	s := &tcp.Summary{ID: hd.id, Client: hd.client, Server: hd.server, FirstTS: hd.first, LastTS: hd.last}
	flags := d.Uint()
	s.ClientGuessed = flags&packedGuessed != 0
	s.Proto = d.String()
	s.FirstFrame = d.Uint()
	s.LastFrame = d.Uint()
	s.DurationMS = d.Float()
	s.Packets.C2S = d.Uint()
	s.Packets.S2C = d.Uint()
	s.Bytes.C2S = d.Uint()
	s.Bytes.S2C = d.Uint()
	s.ConnState = d.String()
	s.History = d.String()
	s.Close = tcp.Close(d.String())
	if flags&packedRTT != 0 {
		v := d.Float()
		s.HandshakeRTTMS = &v
	}
	s.SYNs = int(d.Int())
	s.SYNACKs = int(d.Int())
	if flags&packedScaleC2S != 0 {
		v := int(d.Int())
		s.WindowScale.C2S = &v
	}
	if flags&packedScaleS2C != 0 {
		v := int(d.Int())
		s.WindowScale.S2C = &v
	}
	for _, p := range [...]*int{&s.Retransmissions, &s.FastRetransmissions, &s.SpuriousRetransmissions, &s.OutOfOrder,
		&s.LostSegments, &s.AckLostSegments, &s.DupACKs, &s.ZeroWindows, &s.ZeroWindowProbes, &s.WindowFull,
		&s.WindowUpdates, &s.KeepAlives} {
		*p = int(d.Int())
	}
	s.StreamBytes.C2S = d.Uint()
	s.StreamBytes.S2C = d.Uint()
	s.MissedBytes = d.Uint()
	r := ConnRecord{Summary: s}
	if flags&packedHTTP1 != 0 {
		h := &http1.Summary{KeepAlive: flags&packedKeepAlive != 0}
		for _, p := range [...]*int{&h.Requests, &h.Responses, &h.Interim, &h.Unanswered, &h.LostRequests,
			&h.LostResponses, &h.MaxPipelined} {
			*p = int(d.Int())
		}
		h.CloseRequestedBy = d.String()
		h.CloseRequestedFrame = d.Uint()
		h.KeepAliveTimeout = int(d.Int())
		h.KeepAliveMax = int(d.Int())
		h.Upgrade = d.String()
		h.UpgradeFrame = d.Uint()
		r.HTTP1 = h
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errSpillCorrupt
	}
	return r, d.err
}
