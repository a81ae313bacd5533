package http1

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ref(frame uint64) event.Ref {
	return event.Ref{Frame: frame, TS: t0.Add(time.Duration(frame) * time.Millisecond)}
}

// op is one scripted call: Feed ('D'), Gap ('G') or Close ('C').
type op struct {
	kind  byte
	frame uint64
	dir   event.Dir
	b     string
	n     int
	reset bool
}

func c2s(frame uint64, s string) op { return op{kind: 'D', frame: frame, dir: event.C2S, b: s} }
func s2c(frame uint64, s string) op { return op{kind: 'D', frame: frame, dir: event.S2C, b: s} }

func gap(frame uint64, dir event.Dir, n int) op {
	return op{kind: 'G', frame: frame, dir: dir, n: n}
}

func closeOp(frame uint64, dir event.Dir, reset bool) op {
	return op{kind: 'C', frame: frame, dir: dir, reset: reset}
}

// play runs ops on c; with bytewise, each Feed is split into one-byte
// calls. It returns what Feed consumed per direction.
func play(c *Conn, ops []op, bytewise bool) (consumed [2]int) {
	for _, o := range ops {
		at := ref(o.frame)
		switch o.kind {
		case 'D':
			if !bytewise {
				consumed[o.dir] += c.Feed(o.dir, []byte(o.b), at)
				continue
			}
			for i := 0; i < len(o.b); i++ {
				consumed[o.dir] += c.Feed(o.dir, []byte{o.b[i]}, at)
			}
		case 'G':
			c.Gap(o.dir, o.n, at)
		case 'C':
			c.Close(o.dir, o.reset, at)
		}
	}
	return consumed
}

// run plays ops on a new Conn and returns it with its events, one line
// each.
func run(opts Options, ops []op, bytewise bool) (*Conn, []string) {
	var got []string
	c := NewConn(3, event.SinkFunc(func(e *event.Event) { got = append(got, evString(e)) }), opts)
	play(c, ops, bytewise)
	return c, got
}

// evString renders an event: frame, direction, type, seq, head frame,
// start line, body and flags. Headers are left out (see evHeaders).
func evString(e *event.Event) string {
	h := e.HTTP1
	var b strings.Builder
	fmt.Fprintf(&b, "f%d %s %s #%d head=f%d", e.Ref.Frame, e.Dir, e.Type, h.Seq, h.HeadFrame)
	if e.Proto != event.ProtoHTTP1 || e.Conn != 3 || e.Len != int(h.BodyLen) {
		fmt.Fprintf(&b, " BAD(proto %s conn %d len %d)", e.Proto, e.Conn, e.Len)
	}
	if e.Type == "request" {
		fmt.Fprintf(&b, " %s %s %s", h.Method, h.Target, h.Version)
	} else {
		fmt.Fprintf(&b, " %s %d %q req=%d", h.Version, h.Status, h.Reason, h.Request)
	}
	fmt.Fprintf(&b, " body=%d", h.BodyLen)
	if h.Chunked {
		b.WriteString(" chunked")
	}
	if !h.KeepAlive {
		b.WriteString(" close")
	}
	if h.Missed != 0 {
		fmt.Fprintf(&b, " missed=%d", h.Missed)
	}
	if h.Incomplete {
		b.WriteString(" incomplete")
	}
	if h.KeepAliveTimeout != 0 || h.KeepAliveMax != 0 {
		fmt.Fprintf(&b, " ka=%d/%d", h.KeepAliveTimeout, h.KeepAliveMax)
	}
	for _, t := range h.Trailers {
		fmt.Fprintf(&b, " trailer[%s=%s]", t.Name, t.Value)
	}
	return b.String()
}

func diff(t *testing.T, got, want []string) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("event %d:\n got %q\nwant %q\n(all got:\n%s)", i, g, w, strings.Join(got, "\n"))
			return
		}
	}
}

func anomalies(t *testing.T, c *Conn, want map[string]int) {
	t.Helper()
	got := c.Summary().Anomalies
	if len(got) != len(want) {
		t.Errorf("anomalies %v, want %v", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("anomalies %v, want %v", got, want)
			return
		}
	}
}

const (
	get1  = "GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
	resp1 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
)
