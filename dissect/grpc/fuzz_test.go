package grpc

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

// FuzzMessages reads its input twice:
//
//   - as a DATA byte stream of a call whose HEADERS were seen, delivered in
//     pieces whose sizes come from the first byte: the message events must
//     equal those of a reference parse of the whole stream, whatever the
//     cuts;
//   - as a script of observer calls (HEADERS, DATA, RST_STREAM, gaps,
//     Finish) on a few streams: nothing may panic, events stay in capture
//     order, lengths within bounds, records consistent with events.
func FuzzMessages(f *testing.F) {
	f.Add(cat([]byte{3}, msg(false, 4), msg(true, 0), msg(false, 9)))
	f.Add(cat([]byte{0}, realReq, realResp0, realResp1))
	f.Add([]byte{1, 0, 0, 0, 0, 200, 1, 2, 3})
	f.Add([]byte{7, 2, 0, 0, 0, 1, 'x'})
	f.Add([]byte("\x05{\"json\":true}"))
	f.Add([]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDifferential(t, in)
		checkScript(t, in)
	})
}

// refParse splits a message stream: the lengths and flags of its complete
// messages, up to the first invalid prefix.
func refParse(b []byte, maxLen int) (lens []int, comp []bool, bad bool) {
	for len(b) >= 5 {
		n := binary.BigEndian.Uint32(b[1:])
		if b[0] > 1 || uint64(n) > uint64(maxLen) {
			return lens, comp, true
		}
		if uint64(len(b)-5) < uint64(n) {
			break
		}
		lens = append(lens, int(n))
		comp = append(comp, b[0] == 1)
		b = b[5+n:]
	}
	return lens, comp, false
}

func checkDifferential(t *testing.T, in []byte) {
	if len(in) == 0 {
		return
	}
	const maxLen = 64
	step, payload := int(in[0]%8)+1, in[1:]
	var got []string
	c := NewConn(1, event.SinkFunc(func(e *event.Event) {
		if e.Type == "message" {
			got = append(got, fmt.Sprintf("%d/%v", e.Len, e.GRPC.Compressed))
		}
	}), Options{MaxMessage: maxLen})
	at := ref(1)
	c.Headers(event.C2S, 1, reqH(1, 1, sayHello).h, false, at)
	for i := 0; i < len(payload); i += step {
		c.Data(event.C2S, 1, payload[i:min(i+step, len(payload))], false, at)
	}
	lens, comp, bad := refParse(payload, maxLen)
	var want []string
	for i := range lens {
		want = append(want, fmt.Sprintf("%d/%v", lens[i], comp[i]))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("step %d: events %v, want %v", step, got, want)
	}
	a := c.Anomalies()
	if bad != (a["bad_message_flag"]+a["message_too_large"] == 1) {
		t.Fatalf("bad prefix %v but anomalies %v", bad, a)
	}
	if cl := c.Calls(); len(cl) != 1 || cl[0].RequestMessages != len(lens) {
		t.Fatalf("calls %+v, want %d request messages", cl, len(lens))
	}
}

// scriptHeaders are the HEADERS blocks a script picks from.
var scriptHeaders = []struct {
	dir event.Dir
	h   []event.Header
}{
	{event.C2S, reqH(0, 0, sayHello, "grpc-timeout", "3S").h},
	{event.C2S, hdrs(":method", "GET", ":path", "/", "accept", "text/html")},
	{event.C2S, []event.Header{{Name: ":method", Value: "POST"}, {Unknown: true, Index: 99}}},
	{event.S2C, respH(0, 0).h},
	{event.S2C, hdrs(":status", "200", "content-type", "text/html")},
	{event.S2C, trailers(0, 0, "0").h},
	{event.S2C, trailers(0, 0, "13", "grpc-message", "bad%20thing%").h},
	{event.S2C, trailers(0, 0, "x").h},
	{event.S2C, hdrs(":status", "200", "content-type", "application/grpc", "grpc-status", "16")},
	{event.S2C, hdrs(":status", "502")},
}

var scriptCodes = []http2.ErrCode{http2.ErrCodeCancel, http2.ErrCodeRefusedStream, http2.ErrCodeNo, http2.ErrCodeStreamClosed, 0x1234}

func checkScript(t *testing.T, in []byte) {
	const maxLen = 300
	var frames []uint64
	msgs := map[uint32]int{}
	c := NewConn(1, event.SinkFunc(func(e *event.Event) {
		if e.Proto != event.ProtoGRPC || e.GRPC == nil {
			t.Fatalf("event %+v", e)
		}
		frames = append(frames, e.Ref.Frame)
		if e.Type == "message" {
			if e.Len < 0 || e.Len > maxLen {
				t.Fatalf("message length %d", e.Len)
			}
			msgs[e.Stream]++
		}
	}), Options{MaxMessage: maxLen, MaxStreams: 6, AssumeGRPC: len(in) > 0 && in[0] == 0xA5})
	frame := uint64(0)
	for len(in) >= 3 {
		op, arg, arg2 := in[0], in[1], in[2]
		in = in[3:]
		frame++
		at := ref(frame)
		id := uint32(arg%8) + 1
		dir := event.Dir(op >> 7)
		end := op&0x40 != 0
		switch op % 6 {
		case 0, 1, 2: // DATA of up to 63 bytes
			n := min(int(arg2&63), len(in))
			c.Data(dir, id, in[:n], end, at)
			in = in[n:]
		case 3:
			hb := scriptHeaders[int(arg2)%len(scriptHeaders)]
			c.Headers(hb.dir, id, hb.h, end, at)
		case 4:
			c.Reset(dir, id, scriptCodes[int(arg2)%len(scriptCodes)], at)
		case 5:
			if arg2 == 0 {
				c.Finish(at)
			} else {
				c.Gap(dir, int(arg2), at)
			}
		}
		if len(c.streams) > 6 {
			t.Fatalf("%d streams tracked", len(c.streams))
		}
	}
	c.Finish(ref(frame + 1))
	for i := 1; i < len(frames); i++ {
		if frames[i] < frames[i-1] {
			t.Fatalf("events out of capture order: %v", frames)
		}
	}
	counted := map[uint32]int{}
	for _, cl := range c.Calls() {
		if cl.RequestMessages < 0 || cl.ResponseMessages < 0 || cl.Duration < 0 {
			t.Fatalf("call %+v", cl)
		}
		counted[cl.Stream] += cl.RequestMessages + cl.ResponseMessages
	}
	// Late frames after a call's end still give events and counts; a
	// stream id reused after it was forgotten adds a second record.
	for id, n := range msgs {
		if n > counted[id] {
			t.Fatalf("stream %d: %d message events but %d counted", id, n, counted[id])
		}
	}
}
