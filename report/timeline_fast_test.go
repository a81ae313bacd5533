package report

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// TestRequestsTimelineFast checks appendRequestsTimeline against
// appendRecordsTimeline (NewTimeline, encoded) on every connection of
// the committed captures and on requests made to hit its edges, with
// the default limits and small ones: the same bytes where it answers.
func TestRequestsTimelineFast(t *testing.T) {
	caps, err := filepath.Glob("../testdata/pcaps/*.pcapng")
	if err != nil || len(caps) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	var conns []*analyze.Conn
	for _, f := range caps {
		_, in, err := analyze.Run(context.Background(), []string{f}, dissect.Options{}, analyze.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, in.Conns...)
	}
	// Edges: a method or path to quote, a query to redact, responses
	// before their requests, a request with no response or no ref,
	// records released, dropped exchanges.
	for i, mod := range []func(x *analyze.Exchange, r *analyze.Records){
		func(x *analyze.Exchange, r *analyze.Records) { x.Method = "G\x01T" },
		func(x *analyze.Exchange, r *analyze.Records) { x.Path = "/caf\xe9" },
		func(x *analyze.Exchange, r *analyze.Records) { x.Path = "/x?token=secret&a=1" },
		func(x *analyze.Exchange, r *analyze.Records) { x.Request.Frame = x.ResponseEnd.Frame + 1 },
		func(x *analyze.Exchange, r *analyze.Records) { x.Status = 0 },
		func(x *analyze.Exchange, r *analyze.Records) { x.Request = nil },
		func(x *analyze.Exchange, r *analyze.Records) { x.Status = -7; r.ExchangesDropped = 3 },
		func(x *analyze.Exchange, r *analyze.Records) {
			y := *x
			y.Seq, y.Request, y.ResponseEnd = 2, &event.Ref{Frame: x.ResponseEnd.Frame + 1}, &event.Ref{Frame: x.ResponseEnd.Frame + 2}
			r.Exchanges = append(r.Exchanges, y, y, y)
		},
	} {
		c := synthConn(i)
		mod(&c.Records.Exchanges[0], c.Records)
		conns = append(conns, c)
	}
	released := synthConn(99)
	released.Records = nil
	conns = append(conns, released)
	fast := 0
	for _, lim := range []Limits{DefaultLimits, {Events: 1, Spans: 1}, {Events: 3, Spans: 0}, {Events: 0, Spans: -1}} {
		for _, red := range []Redaction{{}, {Off: true}} {
			for _, c := range conns {
				got, ok := appendRequestsTimeline([]byte("x"), c, red, lim)
				if !ok {
					if string(got) != "x" {
						t.Errorf("connection %d: declined, but appended", c.ID())
					}
					continue
				}
				fast++
				if want := appendRecordsTimeline([]byte("x"), c, red, lim); !bytes.Equal(got, want) {
					d := dec{b: got[1:]}
					g := readTimeline(&d)
					d = dec{b: want[1:]}
					w := readTimeline(&d)
					t.Errorf("connection %d, %+v:\n got %+v\nwant %+v", c.ID(), lim, g, w)
				}
			}
		}
	}
	if fast == 0 {
		t.Fatal("the fast path never answered")
	}
	t.Logf("%d timelines by the fast path", fast)
}
