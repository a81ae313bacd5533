package http1

import (
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// BenchmarkRequests measures a keep-alive exchange of a browser-sized
// request and a 1 KiB response, fed in one call per message.
func BenchmarkRequests(b *testing.B) {
	req := []byte("GET /static/app.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nAccept-Language: en-US,en;q=0.9\r\nConnection: keep-alive\r\n" +
		"Cookie: session=0123456789abcdef0123456789abcdef\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nDate: Mon, 30 Jun 2014 13:35:21 GMT\r\nServer: nginx\r\nContent-Type: application/javascript\r\n" +
		"Content-Length: 1024\r\nKeep-Alive: timeout=5, max=100\r\nConnection: keep-alive\r\n\r\n" + strings.Repeat("x", 1024))
	n := 0
	c := NewConn(1, event.SinkFunc(func(*event.Event) { n++ }), Options{})
	at := ref(1)
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		c.Feed(event.C2S, req, at)
		c.Feed(event.S2C, resp, at)
	}
	if n != 2*b.N {
		b.Fatalf("%d events for %d exchanges", n, b.N)
	}
}

// BenchmarkChunked measures a chunked response of 16 chunks of 1 KiB, fed
// in 1460-byte segments.
func BenchmarkChunked(b *testing.B) {
	req := []byte(get1)
	var sb strings.Builder
	sb.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 16 {
		sb.WriteString("400\r\n" + strings.Repeat("y", 1024) + "\r\n")
	}
	sb.WriteString("0\r\n\r\n")
	resp := []byte(sb.String())
	c := NewConn(1, nil, Options{})
	at := ref(1)
	b.SetBytes(int64(len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		c.Feed(event.C2S, req, at)
		for i := 0; i < len(resp); i += 1460 {
			c.Feed(event.S2C, resp[i:min(i+1460, len(resp))], at)
		}
	}
}

// TestBodyAllocs checks that body bytes cost no allocation: only a head
// does (its one string).
func TestBodyAllocs(t *testing.T) {
	c := NewConn(1, event.SinkFunc(func(*event.Event) {}), Options{})
	at := ref(1)
	c.Feed(event.C2S, []byte(get1), at)
	c.Feed(event.S2C, []byte("HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n"), at)
	body := make([]byte, 1460)
	if n := testing.AllocsPerRun(1000, func() { c.Feed(event.S2C, body, at) }); n != 0 {
		t.Errorf("%v allocations per body segment, want 0", n)
	}
	c.Feed(event.C2S, []byte(get1), at)
	c2 := NewConn(1, event.SinkFunc(func(*event.Event) {}), Options{})
	c2.Feed(event.C2S, []byte(get1), at)
	c2.Feed(event.S2C, []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), at)
	chunk := []byte("5a0\r\n" + strings.Repeat("z", 0x5a0) + "\r\n")
	if n := testing.AllocsPerRun(1000, func() { c2.Feed(event.S2C, chunk, at) }); n != 0 {
		t.Errorf("%v allocations per chunk, want 0", n)
	}
	// A whole exchange: one string per head.
	c3 := NewConn(1, event.SinkFunc(func(*event.Event) {}), Options{})
	req, resp := []byte(get1), []byte(resp1)
	if n := testing.AllocsPerRun(1000, func() { c3.Feed(event.C2S, req, at); c3.Feed(event.S2C, resp, at) }); n != 2 {
		t.Errorf("%v allocations per exchange, want 2", n)
	}
}
