package analyze

import (
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
)

func detectConnectionLost(in *Input) []Finding {
	cfg := DefaultConfig()
	return detectOver(&connectionLost{cfg: cfg.ConnectionLost, race: cfg.Keepalive.RaceWindow}, in)
}

// h2Lost returns an HTTP/2 connection whose client opened streams 1 and
// 3 at 1 s; the server answered stream 1 in full and started stream 3's
// response (HEADERS at 1.1 s) but not its end.
func h2Lost(id event.ConnID) *Conn {
	c := conn(id, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 5*time.Second)
	c.App = &dissect.App{HTTP2: &http2.Summary{}, Streams: []http2.Stream{
		{ID: 1, Initiator: "client", Method: "GET", Path: "/a", FirstHeaders: refp(ref(10, time.Second)),
			ReplyHeaders: refp(ref(12, time.Second+50*time.Millisecond)), ServerEnd: refp(ref(13, time.Second+60*time.Millisecond))},
		{ID: 3, Initiator: "client", Method: "GET", Path: "/big", FirstHeaders: refp(ref(11, time.Second)),
			ReplyHeaders: refp(ref(14, time.Second+100*time.Millisecond))},
	}}
	c.Records.takeRecords(c.App)
	return c
}

func TestConnectionLostSynthetic(t *testing.T) {
	tests := []struct {
		name string
		conn func() *Conn
		want *findingWant
	}{
		{
			name: "server killed mid-response",
			conn: func() *Conn {
				c := h2Lost(4)
				c.FIN[event.S2C] = refp(ref(40, 2*time.Second))
				return c
			},
			want: &findingWant{sev: Critical, cause: CauseServerAbort,
				summary: "Server closed connection 4 (FIN, no GOAWAY) from 10.0.0.1 to 10.0.0.2:443 with 1 request in flight",
				frames:  []uint64{40, 11}, metrics: map[string]float64{"connections": 1, "in_flight": 1, "closed_by_fin": 1}},
		},
		{
			name: "client gives up",
			conn: func() *Conn {
				c := h2Lost(4)
				c.RST[event.C2S] = refp(ref(40, 2*time.Second))
				return c
			},
			want: &findingWant{sev: Warning, cause: CauseClientAbort, summary: "Client gave up on 1 request in flight",
				frames: []uint64{40}, metrics: map[string]float64{"closed_by_rst": 1}},
		},
		{
			name: "a GOAWAY explains it",
			conn: func() *Conn {
				c := h2Lost(4)
				c.App.HTTP2.GoAways = []http2.GoAway{{Dir: event.S2C, Ref: ref(39, 2*time.Second)}}
				c.FIN[event.S2C] = refp(ref(40, 2*time.Second))
				return c
			},
		},
		{
			name: "the capture ends it",
			conn: func() *Conn { return h2Lost(4) },
		},
		{
			name: "HTTP/1 request in flight for 2 s when the server resets",
			conn: func() *Conn {
				c := conn(2, "10.0.0.1:40000", "10.0.0.2:80", 1, 0, 5*time.Second)
				c.Records.Exchanges = []Exchange{{Proto: event.ProtoHTTP1, Seq: 1, Method: "POST", Path: "/upload",
					Request: refp(ref(5, time.Second)), RequestEnd: refp(ref(6, time.Second))}}
				c.RST[event.S2C] = refp(ref(9, 3*time.Second))
				return c
			},
			want: &findingWant{sev: Critical, cause: CauseServerAbort, summary: "Server closed connection 2 (RST, no GOAWAY)",
				frames: []uint64{9, 5}},
		},
		{
			// The request crossed the server's idle close: the keep-alive
			// race, keepalive_mismatch's.
			name: "HTTP/1 request racing the close",
			conn: func() *Conn {
				c := conn(2, "10.0.0.1:40000", "10.0.0.2:80", 1, 0, 5*time.Second)
				c.Records.Exchanges = []Exchange{{Proto: event.ProtoHTTP1, Seq: 2, Method: "GET", Path: "/",
					Request: refp(ref(5, 3*time.Second-10*time.Millisecond))}}
				c.FIN[event.S2C] = refp(ref(9, 3*time.Second))
				return c
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detectConnectionLost, tt.conn()), KindConnectionLost, tt.want)
		})
	}
}

// TestConnectionLostIncompleteHTTP1Response is nginx-curl-client-timeout:
// curl --max-time gives up on a download and resets the connection; the
// HTTP/1 dissector flushes the response it cut short, marked incomplete,
// on that same RST frame. An incomplete response did not end its
// exchange: the request was in flight at the client's RST.
func TestConnectionLostIncompleteHTTP1Response(t *testing.T) {
	const id = event.ConnID(1)
	k := NewCollector(DefaultConfig())
	k.Keep = true
	tc := &tcp.Conn{}
	tc.ID = id
	h1 := http1.NewConn(id, nil, http1.Options{Exchanges: true})
	h1.Data(event.C2S, []byte("GET /200000 HTTP/1.1\r\nHost: h\r\n\r\n"), ref(4, 0))
	h1.Data(event.S2C, []byte("HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\npartial"), ref(6, 10*time.Millisecond))
	for _, d := range []event.Dir{event.C2S, event.S2C} { // the client's RST ends both
		h1.Close(d, true, ref(62, time.Second))
	}
	app := &dissect.App{Proto: event.ProtoHTTP1}
	app.Exchanges, app.ExchangesDropped = h1.Exchanges()
	k.App(tc, app)
	x := k.openConn(id).Records.Exchanges[0]
	if x.Status != 200 || x.Response == nil || x.ResponseEnd != nil || x.Request.Frame != 4 {
		t.Fatalf("exchange %+v: want status 200, a request head at frame 4, a response head and no end", x)
	}
	c := conn(id, "10.0.0.1:40000", "10.0.0.2:80", 1, 0, time.Second)
	c.Records = k.openConn(id).Records
	c.RST[event.C2S] = refp(ref(62, time.Second))
	checkFindings(t, run(detectConnectionLost, c), KindConnectionLost, &findingWant{sev: Warning, cause: CauseClientAbort,
		frames: []uint64{62, 4}, metrics: map[string]float64{"in_flight": 1, "closed_by_rst": 1}})
}

// TestConnectionLostClientFIN: a client's FIN alone is a half-close,
// after which it may read the response to the end (HTTP/1.0 clients,
// UPnP); but when the server then closes too with the response cut
// short, the client's close aborted it (nginx-curl-client-timeout: curl
// --max-time closes, nginx stops sending and closes).
func TestConnectionLostClientFIN(t *testing.T) {
	mk := func(complete bool) *Conn {
		c := conn(1, "10.0.0.1:40000", "10.0.0.2:80", 1, 0, 2*time.Second)
		x := Exchange{Proto: event.ProtoHTTP1, Seq: 1, Method: "GET", Path: "/200000", Request: refp(ref(4, 0)),
			RequestEnd: refp(ref(4, 0)), Status: 200, Response: refp(ref(30, time.Second+time.Millisecond))}
		if complete {
			x.ResponseEnd = x.Response
		}
		c.Records.Exchanges = []Exchange{x}
		c.FIN[event.C2S] = refp(ref(20, time.Second))
		c.FIN[event.S2C] = refp(ref(30, time.Second+time.Millisecond))
		return c
	}
	tests := []struct {
		name string
		conn *Conn
		want *findingWant
	}{
		{"the server closes with the response cut short", mk(false), &findingWant{sev: Warning, cause: CauseClientAbort,
			frames: []uint64{20, 4}, metrics: map[string]float64{"in_flight": 1, "closed_by_fin": 1}}},
		{"a half-close: the server finishes the response, then closes", mk(true), nil},
		{"no response begun: the server may refuse a half-closed client (te_cl_desync, continuation-flood)", func() *Conn {
			c := mk(false)
			c.Records.Exchanges[0].Response, c.Records.Exchanges[0].Status = nil, 0
			return c
		}(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detectConnectionLost, tt.conn), KindConnectionLost, tt.want)
		})
	}
}
