package report

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

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
