package grpc

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

// t0 is the capture time of frame 0 in scripted tests; frame N is N
// milliseconds later.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ref(frame uint64) event.Ref {
	return event.Ref{Frame: frame, TS: t0.Add(time.Duration(frame) * time.Millisecond)}
}

// op is one scripted observer call.
type op struct {
	kind   byte // 'H' headers, 'D' data, 'R' reset, 'G' gap, 'F' finish
	frame  uint64
	dir    event.Dir
	stream uint32
	h      []event.Header
	b      []byte
	end    bool
	code   http2.ErrCode
	n      int
}

func hdrs(kv ...string) []event.Header {
	h := make([]event.Header, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, event.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

// reqH returns request HEADERS for a gRPC call to path, plus extra fields.
func reqH(frame uint64, stream uint32, path string, extra ...string) op {
	kv := append([]string{":method", "POST", ":scheme", "http", ":path", path,
		":authority", "svc:50051", "content-type", "application/grpc", "te", "trailers"}, extra...)
	return op{kind: 'H', frame: frame, dir: event.C2S, stream: stream, h: hdrs(kv...)}
}

// respH returns response HEADERS (no END_STREAM).
func respH(frame uint64, stream uint32, extra ...string) op {
	kv := append([]string{":status", "200", "content-type", "application/grpc"}, extra...)
	return op{kind: 'H', frame: frame, dir: event.S2C, stream: stream, h: hdrs(kv...)}
}

// trailers returns trailers with END_STREAM.
func trailers(frame uint64, stream uint32, status string, extra ...string) op {
	kv := append([]string{"grpc-status", status}, extra...)
	return op{kind: 'H', frame: frame, dir: event.S2C, stream: stream, h: hdrs(kv...), end: true}
}

func data(frame uint64, dir event.Dir, stream uint32, b []byte, end bool) op {
	return op{kind: 'D', frame: frame, dir: dir, stream: stream, b: b, end: end}
}

// msg returns a length-prefixed message with n payload bytes.
func msg(compressed bool, n int) []byte {
	b := make([]byte, 5+n)
	if compressed {
		b[0] = 1
	}
	binary.BigEndian.PutUint32(b[1:], uint32(n))
	for i := range n {
		b[5+i] = byte('a' + i%26)
	}
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// run plays ops on a new Conn and returns it with the events it sent,
// one line each.
func run(opts Options, ops []op) (*Conn, []string) {
	var got []string
	c := NewConn(7, event.SinkFunc(func(e *event.Event) { got = append(got, evString(e)) }), opts)
	play(c, ops)
	return c, got
}

func play(c *Conn, ops []op) {
	for _, o := range ops {
		at := ref(o.frame)
		switch o.kind {
		case 'H':
			c.Headers(o.dir, o.stream, o.h, o.end, at)
		case 'D':
			c.Data(o.dir, o.stream, o.b, o.end, at)
		case 'R':
			c.Reset(o.dir, o.stream, o.code, at)
		case 'G':
			c.Gap(o.dir, o.n, at)
		case 'F':
			c.Finish(at)
		}
	}
}

// evString renders the fields of an event that the tests check.
func evString(e *event.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "f%d %s %s s%d", e.Ref.Frame, e.Dir, e.Type, e.Stream)
	if e.Proto != event.ProtoGRPC || e.Conn != 7 {
		fmt.Fprintf(&b, " BAD(proto %s conn %d)", e.Proto, e.Conn)
	}
	g := e.GRPC
	switch e.Type {
	case "message":
		fmt.Fprintf(&b, " len=%d", e.Len)
		if g.Compressed {
			b.WriteString(" compressed")
		}
		if g.Status != -1 {
			fmt.Fprintf(&b, " BAD(status %d)", g.Status)
		}
	case "status":
		fmt.Fprintf(&b, " status=%d", g.Status)
		if e.Error != "" {
			b.WriteString(" " + e.Error)
		}
		if g.Message != "" {
			fmt.Fprintf(&b, " %q", g.Message)
		}
	}
	if g.Method != "" {
		b.WriteString(" " + g.Method)
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
			t.Errorf("event %d:\n got %q\nwant %q\n(all got: %q)", i, g, w, got)
			return
		}
	}
}

// split cuts b into pieces at the given offsets.
func split(b []byte, cuts ...int) [][]byte {
	var out [][]byte
	last := 0
	for _, c := range cuts {
		out = append(out, b[last:c])
		last = c
	}
	return append(out, b[last:])
}

// bytewise returns b as one-byte pieces.
func bytewise(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// deliveries returns one DATA op per piece, all in frame f, END_STREAM on
// the last when end.
func deliveries(f uint64, dir event.Dir, stream uint32, pieces [][]byte, end bool) []op {
	var ops []op
	for i, p := range pieces {
		ops = append(ops, data(f, dir, stream, p, end && i == len(pieces)-1))
	}
	return ops
}
