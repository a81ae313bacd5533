package http1

import (
	"fmt"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// exString renders an exchange: number, request, its frames, and the
// response as far as it was seen.
func exString(x Exchange) string {
	s := fmt.Sprintf("#%d %s %s host=%q req=f%d/f%d@f%d", x.Seq, x.Method, x.Target, x.Host,
		x.Request.Frame, x.RequestEnd.Frame, x.Request.TS.Sub(t0).Milliseconds())
	if x.Answered {
		s += fmt.Sprintf(" %d ka=%v resp=f%d complete=%v", x.Status, x.KeepAlive, x.Response.Frame, x.Complete)
	}
	return s
}

func TestExchanges(t *testing.T) {
	post := "POST /up HTTP/1.1\r\nhOsT: up.example\r\nContent-Length: 4\r\n\r\n"
	tests := []struct {
		name string
		ops  []op
		want []string
	}{
		{
			name: "request and response",
			ops:  []op{c2s(1, get1), s2c(2, resp1[:40]), s2c(3, resp1[40:])},
			want: []string{"#1 GET /a host=\"example.com\" req=f1/f1@f1 200 ka=true resp=f3 complete=true"},
		},
		{
			// The head completes at frame 1, the body at frame 2: the
			// request's ref is the head's frame with the end's time.
			name: "body in a later frame, host in any case",
			ops:  []op{c2s(1, post), c2s(2, "data"), s2c(3, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")},
			want: []string{"#1 POST /up host=\"up.example\" req=f1/f2@f2 204 ka=false resp=f3 complete=true"},
		},
		{
			name: "interim response does not answer, 101 does",
			ops: []op{
				c2s(1, "GET /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"),
				s2c(2, "HTTP/1.1 100 Continue\r\n\r\n"),
				s2c(3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
				c2s(4, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
				s2c(5, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
			},
			want: []string{
				"#1 GET /a host=\"h\" req=f1/f1@f1 200 ka=true resp=f3 complete=true",
				"#2 GET /ws host=\"h\" req=f4/f4@f4 101 ka=true resp=f5 complete=true",
			},
		},
		{
			name: "pipelined, the second unanswered",
			ops: []op{
				c2s(1, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"),
				s2c(2, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
			},
			want: []string{
				"#1 GET /1 host=\"h\" req=f1/f1@f1 200 ka=true resp=f2 complete=true",
				"#2 GET /2 host=\"h\" req=f1/f1@f1",
			},
		},
		{
			// The gap swallows the first response whole: it is
			// assumed lost, and the next answers the second request.
			name: "response lost in a gap",
			ops: []op{
				c2s(1, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"),
				gap(2, event.S2C, 38),
				s2c(3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
			},
			want: []string{
				"#1 GET /1 host=\"h\" req=f1/f1@f1",
				"#2 GET /2 host=\"h\" req=f1/f1@f1 200 ka=true resp=f3 complete=true",
			},
		},
		{
			// A response before any request answers nothing; the next
			// answers the first request.
			name: "unmatched response first",
			ops: []op{
				s2c(1, "HTTP/1.1 204 No Content\r\n\r\n"),
				c2s(2, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"),
				s2c(3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
			},
			want: []string{"#1 GET /1 host=\"h\" req=f2/f2@f2 200 ka=true resp=f3 complete=true"},
		},
		{
			name: "response cut short by a reset",
			ops: []op{
				c2s(1, get1), s2c(2, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart"),
				closeOp(3, event.C2S, true), closeOp(3, event.S2C, true),
			},
			want: []string{"#1 GET /a host=\"example.com\" req=f1/f1@f1 200 ka=true resp=f3 complete=false"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, bytewise := range []bool{false, true} {
				c := NewConn(1, nil, Options{Exchanges: true})
				play(c, tt.ops, bytewise)
				xs, dropped := c.Exchanges()
				var got []string
				for _, x := range xs {
					got = append(got, exString(x))
				}
				if dropped != 0 || strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("bytewise=%v: dropped %d, exchanges\n%s\nwant\n%s", bytewise, dropped, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
				if xs, _ := c.Exchanges(); xs != nil {
					t.Errorf("a second Exchanges returned %d exchanges, want none", len(xs))
				}
			}
		})
	}
}

// TestExchangesBound checks the bound: requests past MaxExchanges are
// counted, their responses answer nothing kept, and a Conn without
// Options.Exchanges keeps none.
func TestExchangesBound(t *testing.T) {
	const n = MaxExchanges + 10
	var req, resp strings.Builder
	for i := range n {
		fmt.Fprintf(&req, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
		status := 200
		if i >= MaxExchanges {
			status = 503 // answers a request not kept: no exchange
		}
		fmt.Fprintf(&resp, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n", status)
	}
	for _, keep := range []bool{true, false} {
		c := NewConn(1, nil, Options{Exchanges: keep, MaxPending: 2 * n})
		c.Feed(event.C2S, []byte(req.String()), ref(1))
		c.Feed(event.S2C, []byte(resp.String()), ref(2))
		xs, dropped := c.Exchanges()
		if !keep {
			if xs != nil || dropped != 0 {
				t.Errorf("without Options.Exchanges: %d exchanges, %d dropped; want none", len(xs), dropped)
			}
			continue
		}
		if len(xs) != MaxExchanges || dropped != n-MaxExchanges {
			t.Fatalf("%d exchanges, %d dropped; want %d and %d", len(xs), dropped, MaxExchanges, n-MaxExchanges)
		}
		last := xs[len(xs)-1]
		if last.Seq != MaxExchanges || !last.Answered || last.Target != fmt.Sprintf("/%d", MaxExchanges-1) {
			t.Errorf("last exchange kept: %s", exString(last))
		}
		for _, x := range xs {
			if !x.Answered || x.Status != 200 {
				t.Fatalf("exchange %s: want answered by its own response, 200", exString(x))
			}
		}
	}
}

// TestExchangesReset checks that Reset starts a Conn with no exchange of
// the connection before, whose slice stays the caller's.
func TestExchangesReset(t *testing.T) {
	c := NewConn(1, nil, Options{Exchanges: true})
	c.Feed(event.C2S, []byte(get1), ref(1))
	c.Reset(2, nil, Options{Exchanges: true})
	if xs, dropped := c.Exchanges(); xs != nil || dropped != 0 {
		t.Errorf("after Reset: %d exchanges, %d dropped; want none", len(xs), dropped)
	}
}
