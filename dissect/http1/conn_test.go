package http1

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// check plays ops whole and byte at a time: both must give want.
func check(t *testing.T, opts Options, ops []op, want []string) *Conn {
	t.Helper()
	c, got := run(opts, ops, false)
	diff(t, got, want)
	c2, got2 := run(opts, ops, true)
	diff(t, got2, want)
	if s1, s2 := c.Summary(), c2.Summary(); !summaryEqual(s1, s2) {
		t.Errorf("summaries differ byte at a time:\n%+v\n%+v", s1, s2)
	}
	return c
}

func summaryEqual(a, b Summary) bool {
	return reflect.DeepEqual(a, b)
}

func TestRequestResponse(t *testing.T) {
	c, got := run(Options{}, []op{c2s(1, get1), s2c(2, resp1[:40]), s2c(3, resp1[40:])}, false)
	diff(t, got, []string{
		"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
		`f3 s2c response #1 head=f3 HTTP/1.1 200 "OK" req=1 body=5`,
	})
	s := c.Summary()
	if s.Requests != 1 || s.Responses != 1 || s.Unanswered != 0 || !s.KeepAlive || s.MaxPipelined != 1 || s.Anomalies != nil {
		t.Errorf("summary %+v", s)
	}
}

func TestHeaders(t *testing.T) {
	var got [][]event.Header
	c := NewConn(1, event.SinkFunc(func(e *event.Event) {
		got = append(got, append([]event.Header(nil), e.HTTP1.Headers...))
	}), Options{})
	c.Feed(event.C2S, []byte("GET / HTTP/1.1\r\nHost:  x.org \r\nX-Folded: a\r\n  b\r\n\tc\r\nEmpty:\r\nbad line\r\nName : v\r\n\r\n"), ref(1))
	want := []event.Header{{Name: "Host", Value: "x.org"}, {Name: "X-Folded", Value: "a b c"}, {Name: "Empty"}, {Name: "Name", Value: "v"}}
	if len(got) != 1 || len(got[0]) != len(want) {
		t.Fatalf("headers %+v", got)
	}
	for i := range want {
		if got[0][i] != want[i] {
			t.Errorf("header %d: %+v, want %+v", i, got[0][i], want[i])
		}
	}
	anomalies(t, c, map[string]int{"obs_fold": 2, "bad_header_line": 2})
}

func TestPipelining(t *testing.T) {
	reqs := "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"HEAD /2 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"POST /3 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd" +
		"GET /4 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /5 HTTP/1.1\r\n\r\n"
	resps := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
		"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + // HEAD: no body
		"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n" + // 204: no body
		"HTTP/1.1 304 Not Modified\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
	c := check(t, Options{}, []op{c2s(1, reqs), s2c(2, resps)}, []string{
		"f1 c2s request #1 head=f1 GET /1 HTTP/1.1 body=0",
		"f1 c2s request #2 head=f1 HEAD /2 HTTP/1.1 body=0",
		"f1 c2s request #3 head=f1 POST /3 HTTP/1.1 body=4",
		"f1 c2s request #4 head=f1 GET /4 HTTP/1.1 body=0",
		"f1 c2s request #5 head=f1 GET /5 HTTP/1.1 body=0",
		`f2 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=2`,
		`f2 s2c response #2 head=f2 HTTP/1.1 200 "OK" req=2 body=0`,
		`f2 s2c response #3 head=f2 HTTP/1.1 204 "No Content" req=3 body=0`,
		`f2 s2c response #4 head=f2 HTTP/1.1 304 "Not Modified" req=4 body=0`,
		`f2 s2c response #5 head=f2 HTTP/1.1 200 "OK" req=5 body=1`,
	})
	if s := c.Summary(); s.MaxPipelined != 5 || s.Unanswered != 0 {
		t.Errorf("summary %+v", s)
	}
}

func TestChunked(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"5;name=value;other=\"q\"\r\nhello\r\n" +
		"1A\r\nabcdefghijklmnopqrstuvwxyz\r\n" +
		"0\r\nX-Sum: 42\r\nX-Other: y\r\n\r\n"
	check(t, Options{}, []op{c2s(1, get1), s2c(2, resp[:50]), s2c(3, resp[50:90]), s2c(4, resp[90:])}, []string{
		"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
		`f4 s2c response #1 head=f3 HTTP/1.1 200 "OK" req=1 body=31 chunked trailer[X-Sum=42] trailer[X-Other=y]`,
	})
	// Chunked request, no trailers, bare LF line ends.
	req := "POST /up HTTP/1.1\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"
	check(t, Options{}, []op{c2s(1, req)}, []string{"f1 c2s request #1 head=f1 POST /up HTTP/1.1 body=3 chunked"})
}

func TestBadChunkSize(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + resp1
	c := check(t, Options{}, []op{c2s(1, get1+get1), s2c(2, resp)}, []string{
		"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
		"f1 c2s request #2 head=f1 GET /a HTTP/1.1 body=0",
		`f2 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=0 chunked incomplete`,
		`f2 s2c response #2 head=f2 HTTP/1.1 200 "OK" req=2 body=5`,
	})
	anomalies(t, c, map[string]int{"bad_chunk_size": 1, "resync": 1})
	// A chunk not followed by CRLF.
	resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n" + resp1
	c = check(t, Options{}, []op{c2s(1, get1+get1), s2c(2, resp)}, []string{
		"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
		"f1 c2s request #2 head=f1 GET /a HTTP/1.1 body=0",
		`f2 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=2 chunked incomplete`,
		`f2 s2c response #2 head=f2 HTTP/1.1 200 "OK" req=2 body=5`,
	})
	anomalies(t, c, map[string]int{"bad_chunk_end": 1, "resync": 1})
}

func TestUntilClose(t *testing.T) {
	resp := "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>...</html>"
	c := check(t, Options{}, []op{
		c2s(1, "GET / HTTP/1.0\r\n\r\n"),
		s2c(2, resp[:30]), s2c(3, resp[30:]),
		closeOp(4, event.S2C, false),
		closeOp(5, event.C2S, false),
	}, []string{
		"f1 c2s request #1 head=f1 GET / HTTP/1.0 body=0 close",
		`f4 s2c response #1 head=f3 HTTP/1.0 200 "OK" req=1 body=16 close`,
	})
	s := c.Summary()
	if s.KeepAlive || s.CloseRequestedBy != "client" || s.CloseRequestedFrame != 1 {
		t.Errorf("summary %+v", s)
	}
	// A reset cuts it short.
	check(t, Options{}, []op{c2s(1, get1), s2c(2, "HTTP/1.1 200 OK\r\n\r\nabc"), closeOp(3, event.S2C, true)}, []string{
		"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
		`f3 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=3 close incomplete`,
	})
}

func TestKeepAlive(t *testing.T) {
	tests := []struct {
		req, resp   string
		reqKA, ka   bool
		by          string
		timeout, mx int
	}{
		{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, true, "", 0, 0},
		{"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, false, "client", 0, 0},
		{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", true, false, "server", 0, 0},
		{"GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, false, "client", 0, 0},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n", true, true, "", 5, 100},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", true, false, "server", 0, 0},
		{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nKeep-Alive: max=3,timeout=\"15\", foo\r\nConnection: keep-alive, Upgrade-Insecure\r\nContent-Length: 0\r\n\r\n", true, true, "", 15, 3},
		{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", true, false, "server", 0, 0}, // until close
	}
	for i, tt := range tests {
		var evs []*event.HTTP1
		c := NewConn(1, event.SinkFunc(func(e *event.Event) { d := *e.HTTP1; evs = append(evs, &d) }), Options{})
		c.Feed(event.C2S, []byte(tt.req), ref(1))
		c.Feed(event.S2C, []byte(tt.resp), ref(2))
		c.Close(event.S2C, false, ref(3))
		s := c.Summary()
		if len(evs) != 2 || evs[0].KeepAlive != tt.reqKA || evs[1].KeepAlive != tt.ka || s.KeepAlive != tt.ka ||
			s.CloseRequestedBy != tt.by || evs[1].KeepAliveTimeout != tt.timeout || evs[1].KeepAliveMax != tt.mx ||
			s.KeepAliveTimeout != tt.timeout || s.KeepAliveMax != tt.mx {
			t.Errorf("case %d: events %+v summary %+v", i, evs, s)
		}
	}
}

func Test100Continue(t *testing.T) {
	c := check(t, Options{}, []op{
		c2s(1, "PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
		s2c(2, "HTTP/1.1 100 Continue\r\n\r\n"),
		c2s(3, "abc"),
		s2c(4, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
	}, []string{
		`f2 s2c response #1 head=f2 HTTP/1.1 100 "Continue" req=1 body=0`,
		"f3 c2s request #1 head=f1 PUT /f HTTP/1.1 body=3",
		`f4 s2c response #2 head=f4 HTTP/1.1 201 "Created" req=1 body=0`,
	})
	if s := c.Summary(); s.Responses != 2 || s.Interim != 1 || s.Unanswered != 0 {
		t.Errorf("summary %+v", s)
	}
}

func TestUpgradeH2C(t *testing.T) {
	req := "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
	resp := "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	const settings = "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	for _, bytewise := range []bool{false, true} {
		var got []string
		c := NewConn(3, event.SinkFunc(func(e *event.Event) { got = append(got, evString(e)) }), Options{})
		n := play(c, []op{c2s(1, req), s2c(2, resp+settings)}, bytewise)
		if _, ok := c.Upgraded(); ok != true {
			t.Fatal("not upgraded")
		}
		n2 := play(c, []op{c2s(3, preface+settings)}, bytewise)
		if n[0] != len(req) || n[1] != len(resp) || n2[0] != 0 {
			t.Errorf("bytewise %v: consumed %v then %v, want [%d %d] then 0", bytewise, n, n2, len(req), len(resp))
		}
		diff(t, got, []string{
			"f1 c2s request #1 head=f1 GET / HTTP/1.1 body=0",
			`f2 s2c response #1 head=f2 HTTP/1.1 101 "Switching Protocols" req=1 body=0`,
		})
		if p, _ := c.Upgraded(); p != "h2c" {
			t.Errorf("upgraded to %q", p)
		}
		if s := c.Summary(); s.Upgrade != "h2c" || s.UpgradeFrame != 2 || s.Anomalies != nil {
			t.Errorf("summary %+v", s)
		}
	}
	// One Feed carrying the end of the response head and HTTP/2 bytes.
	c := NewConn(3, nil, Options{})
	c.Feed(event.C2S, []byte(req), ref(1))
	if n := c.Feed(event.S2C, []byte(resp+settings), ref(2)); n != len(resp) {
		t.Errorf("consumed %d, want %d", n, len(resp))
	}
}

// TestUpgradeWithBody: the 101 arrives before the upgrade request's body
// is complete; the client direction switches after the body.
func TestUpgradeWithBody(t *testing.T) {
	req := "POST /x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 6\r\n\r\n"
	c := NewConn(3, nil, Options{})
	if n := c.Feed(event.C2S, []byte(req+"abc"), ref(1)); n != len(req)+3 {
		t.Fatalf("consumed %d", n)
	}
	if n := c.Feed(event.S2C, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\r\n\x81\x05hello"), ref(2)); n != 56 {
		t.Errorf("server consumed %d, want 56", n)
	}
	if n := c.Feed(event.C2S, []byte("def\x81\x85mask"), ref(3)); n != 3 {
		t.Errorf("client consumed %d, want 3", n)
	}
	if p, ok := c.Upgraded(); p != "websocket" || !ok {
		t.Errorf("Upgraded %q %v", p, ok)
	}
	// A declined upgrade: HTTP/1.1 goes on.
	c = NewConn(3, nil, Options{})
	c.Feed(event.C2S, []byte("GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"), ref(1))
	c.Feed(event.S2C, []byte(resp1), ref(2))
	if _, ok := c.Upgraded(); ok || c.Feed(event.C2S, []byte(get1), ref(3)) != len(get1) {
		t.Error("declined upgrade switched")
	}
}

func TestConnectTunnel(t *testing.T) {
	const hello = "\x16\x03\x01\x00\x05hello"
	c := NewConn(3, nil, Options{})
	req := "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
	resp := "HTTP/1.1 200 Connection established\r\n\r\n"
	c.Feed(event.C2S, []byte(req), ref(1))
	if n := c.Feed(event.S2C, []byte(resp+hello), ref(2)); n != len(resp) {
		t.Errorf("server consumed %d", n)
	}
	if n := c.Feed(event.C2S, []byte(hello), ref(3)); n != 0 {
		t.Errorf("client consumed %d", n)
	}
	if p, ok := c.Upgraded(); p != "CONNECT" || !ok {
		t.Errorf("Upgraded %q %v", p, ok)
	}
	// A refused CONNECT is not a tunnel.
	c = NewConn(3, nil, Options{})
	c.Feed(event.C2S, []byte(req), ref(1))
	c.Feed(event.S2C, []byte("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"), ref(2))
	if _, ok := c.Upgraded(); ok {
		t.Error("refused CONNECT switched")
	}
}

func TestHeaderTooLarge(t *testing.T) {
	big := "GET /big HTTP/1.1\r\nX-Big: " + strings.Repeat("x", 200) + "\r\n\r\n"
	c := check(t, Options{MaxHeader: 100}, []op{c2s(1, big+get1)}, []string{
		"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
	})
	anomalies(t, c, map[string]int{"header_too_large": 1, "resync": 1})
	if s := c.Summary(); s.LostRequests != 1 || s.Requests != 1 || s.Unanswered != 2 {
		t.Errorf("summary %+v", s)
	}
	// A start line alone too large.
	long := "GET /" + strings.Repeat("y", 200) + " HTTP/1.1\r\n\r\n"
	c = check(t, Options{MaxHeader: 100}, []op{c2s(1, long+get1)}, []string{"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0"})
	anomalies(t, c, map[string]int{"header_too_large": 1, "resync": 1})
}

func TestBadStartLine(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		anom     map[string]int
	}{
		{"garbage then request", "\x00\x01binary junk\r\nmore junk\r\n" + get1,
			[]string{"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0"}, map[string]int{"bad_request_line": 1, "resync": 1}},
		// A loose line followed by a start line: the loose one is dropped.
		{"HTTP/0.9", "GET /\r\n" + get1,
			[]string{"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0"}, map[string]int{"bad_request_line": 1}},
		// Loose request lines with header fields are malformed requests.
		{"space in target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n" + get1, []string{
			"f1 c2s request #1 head=f1 GET /a b HTTP/1.1 body=0 close",
			"f1 c2s request #2 head=f1 GET /a HTTP/1.1 body=0",
		}, map[string]int{"bad_request_line": 1}},
		{"no target", "OPTIONS HTTP/1.1\r\nHost: x\r\n\r\nGET/HTTP/1.1\r\n\r\nPUT\r\nHost: y\r\n\r\n", []string{
			"f1 c2s request #1 head=f1 OPTIONS HTTP/1.1  body=0 close",
			"f1 c2s request #2 head=f1 GET/HTTP/1.1   body=0 close",
			"f1 c2s request #3 head=f1 PUT   body=0 close",
		}, map[string]int{"bad_request_line": 3}},
		{"not loose: lower case, binary", "get / http/1.1\r\n\r\nPOST /\x01 HTTP/1.1\r\n\r\n" + get1,
			[]string{"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0"}, map[string]int{"bad_request_line": 1, "resync": 1}}, // the second is skipped while resynchronising
		{"leading empty lines", "\r\n\r\n" + get1,
			[]string{"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0"}, map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := check(t, Options{}, []op{c2s(1, tt.in)}, tt.want)
			anomalies(t, c, tt.anom)
		})
	}
}

func TestUnmatchedReply(t *testing.T) {
	c := check(t, Options{}, []op{s2c(1, resp1)}, []string{`f1 s2c response #1 head=f1 HTTP/1.1 200 "OK" req=0 body=5`})
	anomalies(t, c, map[string]int{"unmatched_HTTP_reply": 1})
}

func TestContentLengthMismatch(t *testing.T) {
	c := check(t, Options{}, []op{c2s(1, get1), s2c(2, resp1[:len(resp1)-2]), closeOp(3, event.S2C, false)}, []string{
		"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
		`f3 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=3 incomplete`,
	})
	anomalies(t, c, map[string]int{"content_length_mismatch": 1})
	c = check(t, Options{}, []op{c2s(1, "POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n"+get1)}, []string{
		"f1 c2s request #1 head=f1 POST / HTTP/1.1 body=0 incomplete",
		"f1 c2s request #2 head=f1 GET /a HTTP/1.1 body=0",
	})
	anomalies(t, c, map[string]int{"bad_content_length": 1, "resync": 1})
	c = check(t, Options{}, []op{c2s(1, "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc")}, []string{
		"f1 c2s request #1 head=f1 POST / HTTP/1.1 body=3",
	})
	anomalies(t, c, map[string]int{})
	c = check(t, Options{}, []op{c2s(1, "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")}, []string{
		"f1 c2s request #1 head=f1 POST / HTTP/1.1 body=1 chunked",
	})
	anomalies(t, c, map[string]int{"content_length_with_transfer_encoding": 1})
}

func TestGaps(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		want []string
		anom map[string]int
		lost [2]int
	}{
		{"inside a Content-Length body", []op{
			c2s(1, get1), s2c(2, resp1[:len(resp1)-4]), gap(3, event.S2C, 2), s2c(4, "lo"),
		}, []string{
			"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
			`f4 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=5 missed=2`,
		}, map[string]int{}, [2]int{}},
		{"ending a body exactly", []op{
			c2s(1, get1), s2c(2, resp1[:len(resp1)-4]), gap(3, event.S2C, 4),
		}, []string{
			"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
			`f3 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=5 missed=4`,
		}, map[string]int{}, [2]int{}},
		{"past a body, into the next response", []op{
			c2s(1, get1+get1+get1), s2c(2, resp1[:len(resp1)-4]), gap(3, event.S2C, 4+10), s2c(4, resp1[10:]+resp1),
		}, []string{
			"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
			"f1 c2s request #2 head=f1 GET /a HTTP/1.1 body=0",
			"f1 c2s request #3 head=f1 GET /a HTTP/1.1 body=0",
			`f3 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=5 missed=4`,
			`f4 s2c response #2 head=f4 HTTP/1.1 200 "OK" req=3 body=5`,
		}, map[string]int{"gap_in_header": 1, "resync": 1}, [2]int{0, 1}},
		{"a whole response lost", []op{
			c2s(1, get1+"HEAD /b HTTP/1.1\r\n\r\n"), gap(2, event.S2C, len(resp1)), s2c(3, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
		}, []string{
			"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
			"f1 c2s request #2 head=f1 HEAD /b HTTP/1.1 body=0",
			`f3 s2c response #1 head=f3 HTTP/1.1 200 "OK" req=2 body=0`, // HEAD: no body, as the queue stayed aligned
		}, map[string]int{"gap_in_header": 1, "resync": 1}, [2]int{0, 1}},
		{"inside a request head", []op{
			c2s(1, get1[:10]), gap(2, event.C2S, 10), c2s(3, get1[20:]+get1), s2c(4, resp1+resp1),
		}, []string{
			"f3 c2s request #1 head=f3 GET /a HTTP/1.1 body=0",
			`f4 s2c response #1 head=f4 HTTP/1.1 200 "OK" req=0 body=5`,
			`f4 s2c response #2 head=f4 HTTP/1.1 200 "OK" req=1 body=5`,
		}, map[string]int{"gap_in_header": 1, "resync": 1}, [2]int{1, 0}},
		{"inside chunk data", []op{
			c2s(1, get1), s2c(2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234"), gap(3, event.S2C, 3), s2c(4, "89\r\n0\r\n\r\n"),
		}, []string{
			"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
			`f4 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=10 chunked missed=3`,
		}, map[string]int{}, [2]int{}},
		{"past chunk data", []op{
			c2s(1, get1+get1), s2c(2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234"), gap(3, event.S2C, 30), s2c(4, "more\r\n0\r\n\r\n"+resp1),
		}, []string{
			"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
			"f1 c2s request #2 head=f1 GET /a HTTP/1.1 body=0",
			`f3 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=10 chunked missed=5 incomplete`,
			`f4 s2c response #2 head=f4 HTTP/1.1 200 "OK" req=2 body=5`,
		}, map[string]int{"gap_in_chunk_framing": 1, "resync": 1}, [2]int{}},
		{"request after a body, no line break", []op{
			c2s(1, "POST /p HTTP/1.1\r\nContent-Length: 3\r\n"), gap(2, event.C2S, 5), c2s(3, "\r\nabcGET /a HTTP/1.1\r\n\r\n"),
			c2s(4, "GET /b HTTP/1.1\r\n\r\n"),
		}, []string{
			"f3 c2s request #1 head=f3 GET /a HTTP/1.1 body=0",
			"f4 c2s request #2 head=f4 GET /b HTTP/1.1 body=0",
		}, map[string]int{"gap_in_header": 1, "resync": 1}, [2]int{1, 0}},
		{"garbage before a request inside a line", []op{
			c2s(1, get1), gap(2, event.C2S, 5), c2s(3, "x-y: GET\x00 zPOST /a HTTP/1.1\r\n\r\n"),
		}, []string{
			"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
			"f3 c2s request #2 head=f3 POST /a HTTP/1.1 body=0",
		}, map[string]int{"gap_in_header": 1, "resync": 1}, [2]int{1, 0}},
		{"in a body delimited by close", []op{
			c2s(1, get1), s2c(2, "HTTP/1.1 200 OK\r\n\r\nab"), gap(3, event.S2C, 100), s2c(4, "cd"), closeOp(5, event.S2C, false),
		}, []string{
			"f1 c2s request #1 head=f1 GET /a HTTP/1.1 body=0",
			`f5 s2c response #1 head=f2 HTTP/1.1 200 "OK" req=1 body=104 close missed=100`,
		}, map[string]int{}, [2]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := check(t, Options{}, tt.ops, tt.want)
			anomalies(t, c, tt.anom)
			if s := c.Summary(); s.LostRequests != tt.lost[0] || s.LostResponses != tt.lost[1] {
				t.Errorf("lost %d requests, %d responses; want %v", s.LostRequests, s.LostResponses, tt.lost)
			}
		})
	}
}

// TestNoProperPrefixCompletes: no proper prefix of a message, however cut,
// yields its event.
func TestNoProperPrefixCompletes(t *testing.T) {
	msgs := []struct {
		dir event.Dir
		s   string
	}{
		{event.C2S, get1},
		{event.C2S, "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"},
		{event.C2S, "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"},
		{event.S2C, resp1},
		{event.S2C, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n"},
		{event.S2C, "HTTP/1.1 204 No Content\r\n\r\n"},
	}
	for _, m := range msgs {
		for n := 0; n < len(m.s); n++ {
			ops := []op{c2s(1, get1), {kind: 'D', frame: 2, dir: m.dir, b: m.s[:n]}}
			if m.dir == event.C2S {
				ops = ops[1:]
			}
			for _, bytewise := range []bool{false, true} {
				_, got := run(Options{}, ops, bytewise)
				if m.dir == event.S2C {
					got = got[1:]
				}
				if len(got) != 0 {
					t.Fatalf("prefix %q of %q: events %q", m.s[:n], m.s, got)
				}
			}
		}
	}
}

func TestLineCheck(t *testing.T) {
	tests := []struct {
		resp bool
		line string
		ok   bool
	}{
		{false, "GET / HTTP/1.1", true},
		{false, "GET / HTTP/1.1\r", true},
		{false, "M-SEARCH * HTTP/1.1", true},
		{false, "GET http://x/y?z=%20 HTTP/1.0", true},
		{false, "GET / HTTP/1.1 ", false},
		{false, "GET  / HTTP/1.1", false},
		{false, "GET / HTTP/1.", false},
		{false, "GET / HTTP/11", false},
		{false, "GET / http/1.1", false},
		{false, "GET /", false},
		{false, " GET / HTTP/1.1", false},
		{false, "GET / HTTP/1.1\rx", false},
		{false, "GÉT / HTTP/1.1", false},
		{false, strings.Repeat("A", 33) + " / HTTP/1.1", false},
		{true, "HTTP/1.1 200 OK", true},
		{true, "HTTP/1.1 200", true},
		{true, "HTTP/1.1 200 ", true},
		{true, "HTTP/1.0 404 Not\tFound \xe9", true},
		{true, "HTTP/1.1 20 OK", false},
		{true, "HTTP/1.1 2000 OK", false},
		{true, "HTTP/1.1  200 OK", false},
		{true, "HTTP/1.1 200 OK\x00", false},
		{true, "ICY 200 OK", false},
	}
	for _, tt := range tests {
		var l lineCheck
		l.reset(tt.resp, false)
		ok := true
		for i := 0; i < len(tt.line) && ok; i++ {
			ok = l.feed(tt.line[i])
		}
		if ok && !l.complete() {
			ok = false
		}
		if ok != tt.ok {
			t.Errorf("%q (response %v): %v, want %v", tt.line, tt.resp, ok, tt.ok)
		}
	}
}

func TestParseChunkSize(t *testing.T) {
	tests := []struct {
		in   string
		n    int64
		okay bool
	}{
		{"0", 0, true},
		{"1a", 26, true},
		{"FF ; ext=1", 255, true},
		{"10;a;b=c", 16, true},
		{"7fffffffffffffff", 0, false},
		{"fffffffffffffff", 0xfffffffffffffff, true},
		{"", 0, false},
		{"x", 0, false},
		{"1 2", 0, false},
		{"-1", 0, false},
	}
	for _, tt := range tests {
		n, ok := parseChunkSize([]byte(tt.in))
		if n != tt.n || ok != tt.okay {
			t.Errorf("parseChunkSize(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.okay)
		}
	}
}

func TestCloseInsideHead(t *testing.T) {
	c := check(t, Options{}, []op{c2s(1, get1[:20]), closeOp(2, event.C2S, false)}, nil)
	anomalies(t, c, map[string]int{"partial_header": 1})
	if c.Feed(event.C2S, []byte(get1), ref(3)) != len(get1) {
		t.Error("Feed after Close should consume and drop")
	}
}

func TestMaxPending(t *testing.T) {
	c := NewConn(1, nil, Options{MaxPending: 2})
	c.Feed(event.C2S, []byte(get1+get1+get1), ref(1))
	if s := c.Summary(); s.Unanswered != 2 || s.Anomalies["too_many_pending"] != 1 {
		t.Errorf("summary %+v", s)
	}
}

// TestTargetRun checks that feeding a line as startLine does (a target's
// run at once through targetRun, every other byte through feed) leaves
// the same state and fails at the same byte as feeding it byte by byte,
// whatever the line, the kind of line checked, and the room left.
func TestTargetRun(t *testing.T) {
	pieces := []string{"GET", "get", "M-SEARCH", " ", "  ", "/", "/a?b=c", "*", "HTTP/1.1", "HTTP/1.0",
		"200", " OK", "\r", "\t", "\x7f", "\x00", "\xe9", "\xff", "x", "%20", "http://h/p"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b []byte
		for range 1 + rng.IntN(8) {
			b = append(b, pieces[rng.IntN(len(pieces))]...)
		}
		resp, upper := rng.IntN(4) == 0, rng.IntN(4) == 0
		room := len(b) + 1
		if rng.IntN(2) == 0 {
			room = rng.IntN(len(b) + 1)
		}
		var want, got lineCheck
		want.reset(resp, upper)
		got.reset(resp, upper)
		wantEnd, gotEnd := len(b), len(b)
		for j := range b {
			if j >= room {
				wantEnd = j
				break
			}
			if !want.feed(b[j]) {
				wantEnd = j + 1
				break
			}
		}
		for j := 0; j < len(b); {
			if j >= room {
				gotEnd = j
				break
			}
			if k := got.targetRun(b[j:min(len(b), room)]); k > 0 {
				j += k
				continue
			}
			if !got.feed(b[j]) {
				gotEnd = j + 1
				break
			}
			j++
		}
		if got != want || gotEnd != wantEnd {
			t.Fatalf("%q (response %v, upper %v, room %d): end %d state %+v, byte by byte %d %+v", b, resp, upper, room, gotEnd, got, wantEnd, want)
		}
	}
}
