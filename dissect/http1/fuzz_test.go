package http1

import (
	"reflect"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// script turns fuzz input into scripted calls. Each call starts with a
// control byte: bit 7 the direction, bits 5-6 the kind (0-1 data, 2 gap,
// 3 close, reset when bit 4), bits 0-4 a length (data bytes taken from the
// input, or gap size).
func script(in []byte) []op {
	var ops []op
	frame := uint64(0)
	for len(in) > 0 {
		ctl := in[0]
		in = in[1:]
		frame++
		dir := event.Dir(ctl >> 7)
		n := int(ctl & 0x1f)
		switch (ctl >> 5) & 3 {
		case 0, 1:
			n = min(n*3+1, len(in))
			ops = append(ops, op{kind: 'D', frame: frame, dir: dir, b: string(in[:n])})
			in = in[n:]
		case 2:
			ops = append(ops, gap(frame, dir, n+1))
		case 3:
			ops = append(ops, closeOp(frame, dir, ctl&0x10 != 0))
		}
	}
	return ops
}

// encode is the inverse of script for data calls, to build seeds.
func encode(ops []op) []byte {
	var out []byte
	for _, o := range ops {
		switch o.kind {
		case 'D':
			b := o.b
			for len(b) > 0 {
				n := min(len(b), 31*3+1)
				// Pick the control length so that n*3+1 >= chunk.
				k := (n - 1 + 2) / 3
				take := min(len(b), k*3+1)
				out = append(out, byte(o.dir)<<7|byte(k))
				out = append(out, b[:take]...)
				b = b[take:]
			}
		case 'G':
			out = append(out, byte(o.dir)<<7|2<<5|byte(o.n-1)&0x1f)
		case 'C':
			out = append(out, byte(o.dir)<<7|3<<5)
		}
	}
	return out
}

// FuzzHTTP1 plays scripted conversations whole and byte at a time: the
// events and summaries must be identical, Feed must consume all it is
// given until a switch, and state must stay bounded.
func FuzzHTTP1(f *testing.F) {
	seeds := [][]op{
		{c2s(1, get1), s2c(2, resp1)},
		{c2s(1, get1+get1), s2c(2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\nA: b\r\n\r\n"), s2c(3, resp1)},
		{c2s(1, "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"), s2c(2, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00\x00\x04"), c2s(3, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")},
		{c2s(1, "CONNECT h:443 HTTP/1.1\r\n\r\n"), s2c(2, "HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01"), c2s(3, "\x16\x03\x01")},
		{c2s(1, get1), s2c(2, "HTTP/1.0 200 OK\r\n\r\nbody"), gap(3, event.S2C, 7), closeOp(4, event.S2C, false)},
		{c2s(1, "POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nabc"), gap(2, event.C2S, 30), c2s(3, "xGET / HTTP/1.1\r\n\r\n")},
		{c2s(1, "OPTIONS\r\nHost: x\r\n\r\nGET /\r\nGET / HTTP/1.1\r\n\r\n"), s2c(2, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n")},
	}
	for _, s := range seeds {
		f.Add(encode(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ops := script(in)
		opts := Options{MaxHeader: 200, MaxPending: 8, Exchanges: true}
		var evs [2][]string
		var convs [2]*Conn
		for i, bytewise := range []bool{false, true} {
			c := NewConn(3, event.SinkFunc(func(e *event.Event) {
				h := e.HTTP1
				if h.BodyLen < h.Missed || h.Missed < 0 || h.Seq <= 0 {
					t.Fatalf("event %s", evString(e))
				}
				evs[i] = append(evs[i], evString(e))
			}), opts)
			convs[i] = c
			for _, o := range ops {
				at := ref(o.frame)
				switch o.kind {
				case 'D':
					pieces := []string{o.b}
					if bytewise {
						pieces = pieces[:0]
						for j := 0; j < len(o.b); j++ {
							pieces = append(pieces, o.b[j:j+1])
						}
					}
					for _, p := range pieces {
						n := c.Feed(o.dir, []byte(p), at)
						if n < 0 || n > len(p) || n < len(p) && c.half[o.dir].st != stSwitched {
							t.Fatalf("Feed consumed %d of %d, state %d", n, len(p), c.half[o.dir].st)
						}
					}
				case 'G':
					c.Gap(o.dir, o.n, at)
				case 'C':
					c.Close(o.dir, o.reset, at)
				}
				for d := range c.half {
					if len(c.half[d].buf) > opts.MaxHeader+4<<10 {
						t.Fatalf("buffer of %d bytes", len(c.half[d].buf))
					}
				}
				if c.queue.len() > opts.MaxPending {
					t.Fatalf("%d pending requests", c.queue.len())
				}
			}
		}
		if !reflect.DeepEqual(evs[0], evs[1]) {
			t.Fatalf("events differ byte at a time:\n%q\n%q", evs[0], evs[1])
		}
		if s0, s1 := convs[0].Summary(), convs[1].Summary(); !reflect.DeepEqual(s0, s1) {
			t.Fatalf("summaries differ byte at a time:\n%+v\n%+v", s0, s1)
		}
		x0, d0 := convs[0].Exchanges()
		x1, d1 := convs[1].Exchanges()
		if !reflect.DeepEqual(x0, x1) || d0 != d1 {
			t.Fatalf("exchanges differ byte at a time:\n%+v\n%+v", x0, x1)
		}
		if s := convs[0].Summary(); len(x0)+d0 > s.Requests {
			t.Fatalf("%d exchanges for %d requests", len(x0)+d0, s.Requests)
		}
		for i, x := range x0 {
			if x.Seq <= 0 || i > 0 && x.Seq <= x0[i-1].Seq || x.Answered && x.Status < 200 && x.Status != 101 {
				t.Fatalf("exchange %d: %s", i, exString(x))
			}
		}
	})
}

// TestFuzzCrashLimitOrder is the regression test for fuzz input
// testdata/fuzz/FuzzHTTP1/0a6668340d54250f: a start line longer than
// MaxHeader whose first bad byte lies past the limit was reported as
// bad_request_line when the line came in one call but header_too_large
// byte at a time. The limit is now checked at the byte that crosses it,
// before that byte is validated, however the stream is cut.
func TestFuzzCrashLimitOrder(t *testing.T) {
	line := "000000000 " + strings.Repeat("0", 200) + " 0\r\n\r\n" + get1
	for _, cut := range []int{1, 7, 49, len(line)} {
		var ops []op
		for i := 0; i < len(line); i += cut {
			ops = append(ops, c2s(uint64(i/cut+1), line[i:min(i+cut, len(line))]))
		}
		c, got := run(Options{MaxHeader: 200}, ops, false)
		if len(got) != 1 || !strings.Contains(got[0], "GET /a") {
			t.Errorf("cut %d: events %q", cut, got)
		}
		anomalies(t, c, map[string]int{"header_too_large": 1, "resync": 1})
	}
	// The same at the limits of a header line and of a chunk-size line.
	hdr := "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 300) + "HTTP/1.1 200 OK\r\n\r\n"
	chunk := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 5000) + "HTTP/1.1 204 No\r\n\r\n"
	for _, cut := range []int{1, 3, 64, 1 << 20} {
		for _, conv := range [][2]string{{hdr, ""}, {get1 + get1, chunk}} {
			var ops []op
			for i := 0; i < len(conv[0]); i += cut {
				ops = append(ops, c2s(1, conv[0][i:min(i+cut, len(conv[0]))]))
			}
			for i := 0; i < len(conv[1]); i += cut {
				ops = append(ops, s2c(2, conv[1][i:min(i+cut, len(conv[1]))]))
			}
			_, want := run(Options{MaxHeader: 200}, ops, true)
			_, got := run(Options{MaxHeader: 200}, ops, false)
			diff(t, got, want)
		}
	}
}
