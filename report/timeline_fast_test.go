package report

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// committedConns returns the connections of the committed captures, as
// analyze.Run keeps them.
func committedConns(t *testing.T) []*analyze.Conn {
	t.Helper()
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
	return conns
}

// TestRequestsTimelineFast checks appendRequestsTimeline against
// appendRecordsTimeline (NewTimeline, encoded) on every connection of
// the committed captures and on requests made to hit its edges, with
// the default limits and small ones: the same bytes where it answers.
func TestRequestsTimelineFast(t *testing.T) {
	conns := committedConns(t)
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
		func(x *analyze.Exchange, r *analyze.Records) {
			// More exchanges than appendRequestsTimeline keeps the
			// span strings of, some with paths to redact or quote.
			for i := range 11 {
				y := *x
				f := x.ResponseEnd.Frame + uint64(2*i)
				y.Seq, y.Request, y.ResponseEnd = 2+i, &event.Ref{Frame: f + 1}, &event.Ref{Frame: f + 2}
				y.Path = []string{"/a?token=s&b=2", "/caf\xe9", "/p"}[i%3]
				r.Exchanges = append(r.Exchanges, y)
			}
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

// TestTCPTimelineFast checks appendTCPTimeline against summaryTimeline,
// encoded, on every connection of the committed captures and on TCP
// events made to hit its edges (retransmitted SYNs, events on one frame,
// zero windows among FINs and RSTs, too many events, small limits), and
// appendEmptyTimeline against appendRequestsTimeline for the
// connections whose records hold no request or reset.
func TestTCPTimelineFast(t *testing.T) {
	conns := committedConns(t)
	ref := func(f uint64) event.Ref { return event.Ref{Frame: f, TS: time.Unix(1700000000, int64(f)*1000)} }
	rp := func(f uint64) *event.Ref { r := ref(f); return &r }
	for i, mod := range []func(c *analyze.Conn){
		func(c *analyze.Conn) {},
		func(c *analyze.Conn) { c.SYNs = append(c.SYNs, ref(7), ref(3)) },
		func(c *analyze.Conn) { c.SYNs = nil },
		func(c *analyze.Conn) {
			c.SYNACKs = []event.Ref{ref(2), ref(2)}
			c.FIN = [2]*event.Ref{rp(9), rp(8)}
			c.RST = [2]*event.Ref{nil, rp(9)}
			c.ZeroWindows = [2][]event.Ref{{ref(9), ref(4)}, {ref(8)}}
		},
		func(c *analyze.Conn) { c.ZeroWindows[1] = make([]event.Ref, maxTCPEvents) },
		func(c *analyze.Conn) { c.SYNs[0].TS = time.Time{}; c.RST[0] = rp(0) },
		func(c *analyze.Conn) { c.SYNs[0].TS = c.SYNs[0].TS.In(time.FixedZone("x", 3600)) },
	} {
		c := synthSYN(1000 + i)
		mod(c)
		conns = append(conns, c)
		h := synthConn(2000 + i)
		mod(h)
		conns = append(conns, h)
	}
	fast, empty := 0, 0
	for _, lim := range []Limits{DefaultLimits, {Events: 1, Spans: 1}, {Events: 0, Spans: 0}} {
		for _, c := range conns {
			e := enc{b: []byte("x")}
			if !appendTCPTimeline(&e, c, c.ID(), lim) {
				if string(e.b) != "x" {
					t.Errorf("connection %d: declined, but appended", c.ID())
				}
			} else {
				fast++
				tl := summaryTimeline(c, Redaction{}, lim, nil)
				want := enc{b: []byte("x")}
				appendTimeline(&want, &tl)
				if !bytes.Equal(e.b, want.b) {
					d := dec{b: e.b[1:]}
					g := readTimeline(&d)
					t.Errorf("connection %d, %+v:\n got %+v\nwant %+v", c.ID(), lim, g, tl)
				}
			}
			if recs := c.Records; c.App == nil && (recs == nil || len(recs.Exchanges) == 0 && len(recs.Resets) == 0) {
				empty++
				e := enc{b: []byte("x")}
				dropped := 0
				if recs != nil {
					dropped = recs.ExchangesDropped
				}
				appendEmptyTimeline(&e, c.ID(), dropped)
				want, ok := appendRequestsTimeline([]byte("x"), c, Redaction{}, lim)
				if !ok || !bytes.Equal(e.b, want) {
					t.Errorf("connection %d: empty timeline %x, want %x (%v)", c.ID(), e.b, want, ok)
				}
			}
		}
	}
	if fast == 0 || empty == 0 {
		t.Fatalf("the fast paths answered %d and %d times", fast, empty)
	}
	t.Logf("%d timelines by the fast path, %d empty", fast, empty)
}
