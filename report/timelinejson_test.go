package report

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// TestTimelineJSONFast: appendTimelineJSON writes what the report's
// encoder writes, compact and indented at several depths, for random
// timelines (nil and empty lists, omitted fields, counts of what was
// left out), and declines the ones it cannot write (strings to escape,
// years and zone offsets encoding/json refuses, a nil timeline).
func TestTimelineJSONFast(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "tcp", "GET /x?y=1", "RST_STREAM CANCEL", "a\"b", "tab\there", "é", "\u2028", "x\x7f"}
	pick := func() string {
		if r.IntN(4) > 0 {
			return strs[r.IntN(4)] // mostly plain
		}
		return strs[r.IntN(len(strs))]
	}
	ts := func() time.Time {
		switch r.IntN(12) {
		case 0:
			return time.Time{}
		case 1:
			return time.Date(10000+r.IntN(5), 1, 1, 0, 0, 0, 0, time.UTC) // refused by encoding/json
		case 2:
			return time.Date(2026, 3, 2, 10, 0, 0, 0, time.FixedZone("x", 3600))
		case 3:
			// Offsets about a day: from 24 hours, encoding/json refuses.
			offs := []int{-86400, -86399, 86399, 86400, 90000}
			return time.Date(2026, 3, 2, 10, 0, 0, 0, time.FixedZone("x", offs[r.IntN(len(offs))]))
		}
		return time.Unix(1772445600+r.Int64N(1000), r.Int64N(1e9)).UTC()
	}
	var fast, declined int
	for i := range 3000 {
		tl := Timeline{Conn: event.ConnID(r.IntN(1000)), EventsOmitted: r.IntN(3) - 1, SpansOmitted: r.IntN(3) - 1}
		if r.IntN(5) > 0 {
			tl.Events = make([]TimelineEvent, r.IntN(4))
		}
		for j := range tl.Events {
			tl.Events[j] = TimelineEvent{Frame: uint64(r.IntN(3)), TS: ts(), Lane: pick(), Dir: event.Dir(r.IntN(2)),
				Stream: uint32(r.IntN(2) * r.IntN(9)), What: pick(), EndFrame: uint64(r.IntN(2) * 7), EndTS: ts()}
		}
		if r.IntN(5) > 0 {
			tl.Spans = make([]Span, r.IntN(3))
		}
		for j := range tl.Spans {
			tl.Spans[j] = Span{Stream: uint32(r.IntN(3)), Seq: r.IntN(3) - 1, StartFrame: uint64(r.IntN(5)), StartTS: ts(),
				EndFrame: uint64(r.IntN(5)), EndTS: ts(), Method: pick(), Path: pick(), Status: r.IntN(2) * 200,
				GRPC: pick(), Reset: pick(), Outcome: pick()}
		}
		for _, depth := range []int{-1, 0, 1, 2, 9} {
			jw := &jsonWriter{compact: depth < 0}
			var buf bytes.Buffer
			err := jw.encoder(&buf, max(depth, 0)).Encode(&tl)
			got, ok := jw.appendFast(nil, &tl, max(depth, 0))
			if !ok {
				declined++
				continue
			}
			fast++
			if err != nil {
				t.Fatalf("timeline %d: fast path wrote what encoding/json refuses (%v): %s", i, err, got)
			}
			if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
				t.Fatalf("timeline %d at depth %d:\n got %s\nwant %s", i, depth, got, want)
			}
		}
	}
	if _, ok := (&jsonWriter{}).appendFast(nil, (*Timeline)(nil), 2); ok {
		t.Error("a nil timeline is written fast; encoding/json writes null")
	}
	if fast < 1000 || declined < 1000 {
		t.Errorf("%d timelines written fast, %d declined: the test does not cover both", fast, declined)
	}
}
