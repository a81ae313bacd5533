package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/internal/pack/packtest"
)

// FuzzTimelineCodec fills every field of timelines from the input and
// checks that the spill's encoding gives them back exactly, two
// timelines in one buffer.
func FuzzTimelineCodec(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\x03\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"), []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var want [2]Timeline
		var e enc
		for i, in := range [][]byte{a, b} {
			packtest.Fill(&want[i], in)
			if want[i].Events == nil {
				want[i].Events = []TimelineEvent{} // as NewTimeline makes them
			}
			if want[i].Spans == nil {
				want[i].Spans = []Span{}
			}
			appendTimeline(&e, &want[i])
		}
		d := dec{b: e.b}
		for i := range want {
			if got := readTimeline(&d); !reflect.DeepEqual(got, want[i]) {
				t.Errorf("timeline %d read back as\n%+v\nwant\n%+v", i, got, want[i])
			}
		}
		if d.err != nil || len(d.b) != 0 {
			t.Errorf("decoding: %v, %d bytes left", d.err, len(d.b))
		}
	})
}

// TestConnRecordGRPCAnomalies: the gRPC dissector's anomalies reach the
// connection's record (conns --json, the report), even with no call.
func TestConnRecordGRPCAnomalies(t *testing.T) {
	sum := &tcp.Summary{ID: 3}
	rec := NewConnRecord(sum, &dissect.App{GRPCAnomalies: map[string]int{"message_too_large": 1}})
	if rec.GRPC == nil || rec.GRPC.Anomalies["message_too_large"] != 1 || rec.GRPC.Calls != 0 {
		t.Fatalf("record: %+v", rec.GRPC)
	}
	b, err := json.Marshal(rec)
	if err != nil || !strings.Contains(string(b), `"grpc":{"calls":0,"status":{},"anomalies":{"message_too_large":1}}`) {
		t.Errorf("JSON %s, %v", b, err)
	}
}

// TestTimelineStrs: Str appends each of timelineStrs as its index, any
// other string whole, and dec.Str reads both back (and the whole form of
// a string timelineStrs holds too, as appendRequestsTimeline may write
// it).
func TestTimelineStrs(t *testing.T) {
	var e enc
	var want []string
	for i, s := range timelineStrs {
		if got := timelineStr(s); got != i {
			t.Errorf("timelineStr(%q) = %d, want %d", s, got, i)
		}
		e.Str(s)
		e.StrLen(len(s))
		e.b = append(e.b, s...)
		want = append(want, s, s)
	}
	for i, s := range map[int]string{strTCP: LaneTCP, strStall: LaneStall, strSYN: "SYN", strSYNAgain: "SYN (retransmitted)",
		strSYNACK: "SYN-ACK", strFIN: "FIN", strRST: "RST", strZeroWindow: "TCP zero window"} {
		if timelineStrs[i] != s {
			t.Errorf("timelineStrs[%d] = %q, want %q", i, timelineStrs[i], s)
		}
	}
	long := strings.Repeat("x", 200)
	for _, s := range []string{"x", "GETS", "get", "SYN ", long, "\x00"} {
		if timelineStr(s) != -1 {
			t.Errorf("timelineStr(%q) = %d, want -1", s, timelineStr(s))
		}
		e.Str(s)
		want = append(want, s)
	}
	if n := len(timelineStrs); e.b[0] != 0 || e.b[1] != byte(n) || n >= 128 {
		t.Errorf("encoding starts %x (%d strings)", e.b[:2], n)
	}
	d := dec{b: e.b}
	for _, w := range want {
		if got := d.Str(); got != w {
			t.Errorf("read %q, want %q", got, w)
		}
	}
	if d.err != nil || len(d.b) != 0 {
		t.Errorf("decoding: %v, %d bytes left", d.err, len(d.b))
	}
	d = dec{b: []byte{byte(len(timelineStrs) + 5), 'a'}}
	if d.Str(); d.err == nil {
		t.Error("a string past the end read back")
	}
}

// TestAppendAddrPort: appendAddrPort appends what Bytes does of
// AppendBinary, and the spill's decoding reads it back.
func TestAppendAddrPort(t *testing.T) {
	for _, a := range []netip.AddrPort{{}, netip.MustParseAddrPort("10.1.2.3:443"), netip.MustParseAddrPort("0.0.0.0:0"),
		netip.MustParseAddrPort("255.255.255.255:65535"), netip.MustParseAddrPort("[::ffff:10.1.2.3]:80"),
		netip.MustParseAddrPort("[2001:db8::1]:8080"), netip.MustParseAddrPort("[fe80::1%eth0]:1"),
		netip.MustParseAddrPort("[fe80::1%" + strings.Repeat("z", 200) + "]:1")} {
		var got, want enc
		appendAddrPort(&got, a)
		b, _ := a.AppendBinary(nil)
		want.Bytes(b)
		if !bytes.Equal(got.b, want.b) {
			t.Errorf("%v: %x, want %x", a, got.b, want.b)
		}
		d := dec{b: got.b}
		var back netip.AddrPort
		if err := back.UnmarshalBinary(d.Bytes()); err != nil || back != a {
			t.Errorf("%v read back as %v (%v)", a, back, err)
		}
	}
}

// TestSpillHeadTimes: a spill record's head reads back its first and
// last times, the last in one byte when it is the first.
func TestSpillHeadTimes(t *testing.T) {
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for _, c := range []struct {
		first, last time.Time
		short       bool
	}{
		{t0, t0, true}, {time.Time{}, time.Time{}, false}, {t0, t0.Add(time.Nanosecond), false},
		{t0, time.Time{}, false}, {time.Time{}, t0, false}, {t0, t0.Add(-time.Hour), false},
		{time.Unix(-5, 999999999).UTC(), time.Unix(-5, 999999999).UTC(), true}, {t0.Add(time.Second), t0.Add(2 * time.Second), false},
	} {
		h := connHead{id: 7, first: c.first, last: c.last, syn: true}
		var e, full enc
		encodeSpillHead(&e, &h, []byte("{}"))
		full.Time(c.last)
		r, err := decodeSpill(e.b)
		if err != nil || r.head != h || string(r.rec) != "{}" || len(r.tl) != 0 {
			t.Errorf("%v, %v: read back as %+v, %q, %v", c.first, c.last, r.head, r.rec, err)
		}
		var f enc
		f.Time(c.first)
		last := len(full.b)
		if c.short {
			last = 1
		}
		// The id, the two zero addresses (a length and a port each),
		// the last time, the flags and the record.
		if n := len(e.b) - len(f.b); n != 1+3+3+last+1+3 {
			t.Errorf("%v, %v: %d bytes but the first time's", c.first, c.last, n)
		}
	}
}
