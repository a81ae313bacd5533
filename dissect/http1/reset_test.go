package http1

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// resetScripts are connections that leave a Conn in different states:
// mid-message, resynchronising, switched, with a long request queue,
// with anomalies, grown buffers and trailers.
var resetScripts = []struct {
	name string
	opts Options
	ops  []op
}{
	{"exchange", Options{}, []op{c2s(1, get1), s2c(2, resp1), closeOp(3, event.S2C, false), closeOp(4, event.C2S, false)}},
	{"close", Options{}, []op{c2s(1, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
		s2c(2, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nKeep-Alive: timeout=5, max=9\r\n\r\nok")}},
	{"unanswered", Options{}, []op{c2s(1, get1+get1+"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")}},
	{"mid head", Options{}, []op{c2s(1, "GET /a HTTP/1.1\r\nHost: exa"), s2c(2, "HTTP/1.1 200 OK\r\nTransfer-")}},
	{"chunked trailers", Options{}, []op{c2s(1, get1), s2c(2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n")}},
	{"mid chunk", Options{}, []op{c2s(1, get1), s2c(2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234")}},
	{"many fields", Options{}, []op{c2s(1, "GET /many HTTP/1.1\r\n"+strings.Repeat("X-A: 0123456789012345678901234567890123456789\r\n", 40)+"\r\n"),
		s2c(2, "HTTP/1.1 204 No Content\r\n"+strings.Repeat("Y: z\r\n", 30)+"\r\n")}},
	{"pipelined", Options{}, []op{c2s(1, strings.Repeat(get1, 100)), s2c(2, strings.Repeat(resp1, 30))}},
	{"gap resync", Options{}, []op{c2s(1, get1[:20]), gap(2, event.C2S, 7), c2s(3, "junk\r\n"+get1), s2c(4, "HTTP/1.1 2"), gap(5, event.S2C, 3)}},
	{"bad lines", Options{}, []op{c2s(1, "\x00\x01binary\r\nGET /a HTTP/1.1\r\nHost: x\r\n folded\r\nbad line\r\n\r\n"), s2c(2, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nbody")}},
	{"small heads", Options{MaxHeader: 100, MaxPending: 2}, []op{c2s(1, "GET /"+strings.Repeat("a", 200)+" HTTP/1.1\r\n\r\n"+get1+get1+get1)}},
	{"h2c", Options{}, []op{c2s(1, "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"),
		s2c(2, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n\x00\x00\x00\x04"), c2s(3, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")}},
	{"connect", Options{}, []op{c2s(1, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), s2c(2, "HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01"), c2s(3, "\x16\x03\x01\x00")}},
	{"reset mid body", Options{}, []op{c2s(1, get1), s2c(2, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"), closeOp(3, event.S2C, true)}},
	{"empty", Options{}, nil},
}

// connState renders everything a Conn shows of a connection: its events
// (headers included), what Feed consumed, its summary and upgrade.
func connState(c *Conn, ops []op, events []string) string {
	consumed := play(c, ops, false)
	var b strings.Builder
	for _, e := range events {
		b.WriteString(e + "\n")
	}
	s := c.Summary()
	proto, ok := c.Upgraded()
	fields, settings, at := c.UpgradeRequest()
	fmt.Fprintf(&b, "consumed %v\nsummary %+v\nupgraded %q %v\nupgrade request %v %q %v\n", consumed, s, proto, ok, fields, settings, at)
	return b.String()
}

// TestResetLeavesNothing feeds a connection A to a Conn, resets it and
// feeds B: the result must be what a new Conn makes of B, for every pair
// of scripts, and nothing of A may stay reachable.
func TestResetLeavesNothing(t *testing.T) {
	var events []string
	sink := event.SinkFunc(func(e *event.Event) {
		s := evString(e)
		for _, h := range e.HTTP1.Headers {
			s += fmt.Sprintf(" [%s: %s]", h.Name, h.Value)
		}
		events = append(events, s)
	})
	for _, b := range resetScripts {
		events = nil
		fresh := NewConn(3, sink, b.opts)
		want := connState(fresh, b.ops, nil)
		want = strings.Join(events, "\n") + "\n" + want
		for _, a := range resetScripts {
			c := NewConn(7, sink, a.opts)
			play(c, a.ops, false)
			c.Reset(3, sink, b.opts)
			events = nil
			got := connState(c, b.ops, nil)
			got = strings.Join(events, "\n") + "\n" + got
			if got != want {
				t.Errorf("%s after %s:\n got %s\nwant %s", b.name, a.name, got, want)
			}
		}
	}
}

// TestResetDropsReferences checks that a reset Conn holds no string, field
// or request of the connection before: a pooled Conn must not keep a
// finished connection's heads alive.
func TestResetDropsReferences(t *testing.T) {
	for _, a := range resetScripts {
		c := NewConn(7, event.SinkFunc(func(*event.Event) {}), a.opts)
		play(c, a.ops, false)
		c.Reset(3, nil, Options{})
		for i, f := range c.fields {
			if f != (event.Header{}) {
				t.Errorf("%s: field %d kept: %+v", a.name, i, f)
			}
		}
		for i, p := range c.queue.a[:cap(c.queue.a)] {
			if !reflect.ValueOf(p).IsZero() {
				t.Errorf("%s: queue entry %d kept: %+v", a.name, i, p)
			}
		}
		fresh := NewConn(3, nil, Options{})
		c.heads, c.fields, c.queue.a = fresh.heads, fresh.fields, fresh.queue.a
		for d := range c.half {
			c.half[d].buf, c.half[d].msg.headers = fresh.half[d].buf, fresh.half[d].msg.headers
		}
		if !reflect.DeepEqual(c, fresh) {
			t.Errorf("%s: reset Conn differs from a new one:\n%+v\n%+v", a.name, c, fresh)
		}
	}
}

// TestResetAllocs checks that a reset Conn parses a short exchange with
// one allocation per head, as a Conn's second exchange does.
func TestResetAllocs(t *testing.T) {
	c := NewConn(1, event.SinkFunc(func(*event.Event) {}), Options{})
	req, resp := []byte(get1), []byte(resp1)
	at := ref(1)
	n := testing.AllocsPerRun(1000, func() {
		c.Reset(1, event.SinkFunc(func(*event.Event) {}), Options{})
		c.Feed(event.C2S, req, at)
		c.Feed(event.S2C, resp, at)
		c.Close(event.C2S, false, at)
		c.Close(event.S2C, false, at)
	})
	if n != 2 {
		t.Errorf("%v allocations per reset connection, want 2", n)
	}
}
