package report

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// Timelines are kept encoded while a Builder waits for their connection
// to finish, and in its spill file once it did: a busy connection's
// timeline holds thousands of events and spans, a few hundred bytes each
// in Go form and a few dozen encoded. The encoding is varints, strings
// inline, times as seconds and nanoseconds; it is private to the process
// (the spill file is removed when the report is).

// errSpillCorrupt reports a spill record that does not decode: the file
// was changed under the run.
var errSpillCorrupt = errors.New("report: spill file corrupt")

// enc appends values to a record.
type enc struct{ b []byte }

// Uint appends v as binary.AppendUvarint does; most values written are
// below 128, one byte.
func (e *enc) Uint(v uint64) {
	if v < 0x80 {
		e.b = append(e.b, byte(v))
		return
	}
	e.b = binary.AppendUvarint(e.b, v)
}

// Int appends v as binary.AppendVarint does (zigzag, then Uint).
func (e *enc) Int(v int64) { e.Uint(zig(v)) }

// zig returns v zigzag-encoded, as binary.AppendVarint writes it;
// unzig undoes it.
func zig(v int64) uint64   { return uint64(v)<<1 ^ uint64(v>>63) }
func unzig(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// floatBits returns f's bits with their bytes reversed, so that the
// zero bytes at the end of a short mantissa make a short varint;
// bitsFloat undoes it.
func floatBits(f float64) uint64 { return bits.ReverseBytes64(math.Float64bits(f)) }
func bitsFloat(u uint64) float64 { return math.Float64frombits(bits.ReverseBytes64(u)) }

func (e *enc) String(v string) {
	e.Uint(uint64(len(v)))
	e.b = append(e.b, v...)
}

func (e *enc) Bytes(v []byte) {
	e.Uint(uint64(len(v)))
	e.b = append(e.b, v...)
}

// Str appends s as Bytes does, unless it is one of timelineStrs, which
// it appends as its index: the lanes and labels of most events, the
// outcomes and methods of most spans (dec.Str reads either).
func (e *enc) Str(s string) {
	if i := timelineStr(s); i >= 0 {
		e.b = append(e.b, byte(i))
		return
	}
	e.StrLen(len(s))
	e.b = append(e.b, s...)
}

// StrLen appends the length of a string of n bytes that Str appends
// whole (not by its index); the caller appends the bytes.
func (e *enc) StrLen(n int) { e.Uint(uint64(len(timelineStrs) + n)) }

// timelineStrs are the strings Str appends as their index (fewer than
// 128, one byte).
var timelineStrs = [...]string{"", LaneTCP, LaneTLS, LaneHTTP, LaneReset, LaneGoAway, LaneStall,
	"SYN", "SYN (retransmitted)", "SYN-ACK", "FIN", "RST", "TCP zero window", "Finished",
	"ok", "error", "incomplete", "GET", "POST"} // LaneReset is outcome "reset" too

// Indices in timelineStrs of the strings appendTCPTimeline writes.
const (
	strTCP        = 1
	strStall      = 6
	strSYN        = 7
	strSYNAgain   = 8
	strSYNACK     = 9
	strFIN        = 10
	strRST        = 11
	strZeroWindow = 12
)

// timelineStr returns the index of s in timelineStrs, or -1.
func timelineStr(s string) int {
	switch s {
	case "":
		return 0
	case LaneTCP:
		return 1
	case LaneTLS:
		return 2
	case LaneHTTP:
		return 3
	case LaneReset:
		return 4
	case LaneGoAway:
		return 5
	case LaneStall:
		return 6
	case "SYN":
		return 7
	case "SYN (retransmitted)":
		return 8
	case "SYN-ACK":
		return 9
	case "FIN":
		return 10
	case "RST":
		return 11
	case "TCP zero window":
		return 12
	case "Finished":
		return 13
	case "ok":
		return 14
	case "error":
		return 15
	case "incomplete":
		return 16
	case "GET":
		return 17
	case "POST":
		return 18
	}
	return -1
}

// Float appends f as floatBits.
func (e *enc) Float(f float64) { e.Uint(floatBits(f)) }

// Time appends t; it reads back in UTC.
func (e *enc) Time(t time.Time) {
	if t.IsZero() {
		e.Uint(0)
		return
	}
	e.Uint(uint64(t.Nanosecond()) + 1)
	e.Int(t.Unix())
}

// dec reads a record in the order it was encoded; the first error stops
// it (every later read returns zero values) and is kept in err.
type dec struct {
	b   []byte
	err error
}

func (d *dec) Uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) Int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errSpillCorrupt
	}
	d.b = nil
}

// Bytes returns the next byte string, sharing d's buffer.
func (d *dec) Bytes() []byte { return d.take(d.Uint()) }

// take returns the next n bytes, sharing d's buffer.
func (d *dec) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) Float() float64 { return bitsFloat(d.Uint()) }

func (d *dec) String() string { return string(d.Bytes()) }

// Str reads what enc.Str appended.
func (d *dec) Str() string {
	v := d.Uint()
	if v < uint64(len(timelineStrs)) {
		return timelineStrs[v]
	}
	return string(d.take(v - uint64(len(timelineStrs))))
}

func (d *dec) Time() time.Time {
	ns := d.Uint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(d.Int(), int64(ns-1)).UTC()
}

// appendTimeline encodes tl (its times are UTC, as NewTimeline makes
// them).
func appendTimeline(e *enc, tl *Timeline) {
	e.Uint(uint64(tl.Conn))
	e.Int(int64(tl.EventsOmitted))
	e.Int(int64(tl.SpansOmitted))
	e.Uint(uint64(len(tl.Events)))
	for i := range tl.Events {
		x := &tl.Events[i]
		appendEventHead(e, x.Frame, x.TS, x.Lane, x.Dir, x.Stream)
		e.Str(x.What)
		appendEventEnd(e, x.EndFrame, x.EndTS)
	}
	e.Uint(uint64(len(tl.Spans)))
	for i := range tl.Spans {
		appendSpan(e, &tl.Spans[i])
	}
}

// appendEventHead encodes the fields of an event before What,
// appendEventEnd those after it.
func appendEventHead(e *enc, frame uint64, ts time.Time, lane string, dir event.Dir, stream uint32) {
	e.Uint(frame)
	e.Time(ts)
	e.Str(lane)
	e.Uint(uint64(dir))
	e.Uint(uint64(stream))
}

func appendEventEnd(e *enc, frame uint64, ts time.Time) {
	e.Uint(frame)
	e.Time(ts)
}

func appendSpan(e *enc, x *Span) {
	e.Uint(uint64(x.Stream))
	e.Int(int64(x.Seq))
	e.Uint(x.StartFrame)
	e.Time(x.StartTS)
	e.Uint(x.EndFrame)
	e.Time(x.EndTS)
	for _, v := range [...]string{x.Method, x.Path, x.GRPC, x.Reset, x.Outcome} {
		e.Str(v)
	}
	e.Int(int64(x.Status))
}

// readTimeline decodes what appendTimeline encoded.
func readTimeline(d *dec) Timeline {
	tl := Timeline{Conn: event.ConnID(d.Uint()), EventsOmitted: int(d.Int()), SpansOmitted: int(d.Int())}
	n := d.Uint()
	if n > uint64(len(d.b)) { // each takes bytes
		d.fail()
		n = 0
	}
	tl.Events = make([]TimelineEvent, n)
	for i := range tl.Events {
		x := &tl.Events[i]
		x.Frame = d.Uint()
		x.TS = d.Time()
		x.Lane = d.Str()
		x.Dir = event.Dir(d.Uint())
		x.Stream = uint32(d.Uint())
		x.What = d.Str()
		x.EndFrame = d.Uint()
		x.EndTS = d.Time()
	}
	n = d.Uint()
	if n > uint64(len(d.b)) {
		d.fail()
		n = 0
	}
	tl.Spans = make([]Span, n)
	for i := range tl.Spans {
		x := &tl.Spans[i]
		x.Stream = uint32(d.Uint())
		x.Seq = int(d.Int())
		x.StartFrame = d.Uint()
		x.StartTS = d.Time()
		x.EndFrame = d.Uint()
		x.EndTS = d.Time()
		for _, p := range [...]*string{&x.Method, &x.Path, &x.GRPC, &x.Reset, &x.Outcome} {
			*p = d.Str()
		}
		x.Status = int(d.Int())
	}
	return tl
}
