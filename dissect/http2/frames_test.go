package http2

import (
	"fmt"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	xhttp2 "golang.org/x/net/http2"
)

// bytewise splits every chunk into one-byte chunks with the same Ref.
func bytewise(chunks []chunk) []chunk {
	var out []chunk
	for _, ch := range chunks {
		if ch.gap > 0 {
			out = append(out, ch)
			continue
		}
		for i := range ch.b {
			out = append(out, chunk{dir: ch.dir, b: ch.b[i : i+1], ref: ch.ref})
		}
	}
	return out
}

// summaryKey renders the parts of a summary that must not depend on how
// the input was split.
func summaryKey(s Summary) string {
	return fmt.Sprintf("%v %v %d %d %d %d %d %v %v %d %v", s.Frames, s.Anomalies, s.Streams, s.HeaderBlocks,
		s.HeaderBlocksUndecodable, s.HeaderFields, s.HeaderFieldsDecoded, s.LostBytes, s.SkippedBytes, s.Resyncs, len(s.Stalls))
}

// TestByteAtATime feeds the same input one byte per call and expects the
// same events, observer calls and summary, for a connection seen from its
// start, one seen mid-connection, and one with gaps.
func TestByteAtATime(t *testing.T) {
	cli, srv := conversation(t)
	base := interleave(cli, srv, conversationOrder)
	cases := []struct {
		name   string
		opts   Options
		chunks []chunk
	}{
		{"start", Options{}, base},
		{"mid", Options{MidConnection: true}, dropPrefix(base, event.C2S, 50)},
		{"mid-odd", Options{MidConnection: true}, dropPrefix(dropPrefix(base, event.C2S, 131), event.S2C, 7)},
		{"gaps", Options{}, withGap(withGap(base, 7, 3), 11, 200)},
		{"garbage", Options{MidConnection: true}, append([]chunk{{dir: event.S2C, b: []byte("\x00\x00\x05garbage!\x00\x00"), ref: ref(1)}}, base...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c1, r1 := run(t, tc.opts, tc.chunks)
			c2, r2 := run(t, tc.opts, bytewise(tc.chunks))
			wantLines(t, "events", r2.evs, r1.evs)
			wantLines(t, "observer", r2.obs, r1.obs)
			if a, b := summaryKey(c1.Summary()), summaryKey(c2.Summary()); a != b {
				t.Errorf("summary differs:\n chunks %s\n bytes  %s", a, b)
			}
			if len(r1.evs) < 10 {
				t.Errorf("only %d events", len(r1.evs))
			}
		})
	}
}

// dropPrefix removes the first n bytes of dir from chunks.
func dropPrefix(chunks []chunk, dir event.Dir, n int) []chunk {
	var out []chunk
	for _, ch := range chunks {
		if ch.dir == dir && n > 0 {
			if len(ch.b) <= n {
				n -= len(ch.b)
				continue
			}
			ch.b = ch.b[n:]
			n = 0
		}
		out = append(out, ch)
	}
	return out
}

// withGap replaces n bytes of chunk i, from its start, by a gap.
func withGap(chunks []chunk, i, n int) []chunk {
	out := append([]chunk(nil), chunks[:i]...)
	ch := chunks[i]
	n = min(n, len(ch.b))
	out = append(out, chunk{dir: ch.dir, gap: n, ref: ch.ref})
	if n < len(ch.b) {
		out = append(out, chunk{dir: ch.dir, b: ch.b[n:], ref: ch.ref})
	}
	return append(out, chunks[i+1:]...)
}

// TestProperPrefix checks that no proper prefix of a frame completes it:
// fed all but the last k bytes of a frame, a Conn emits no event for it.
func TestProperPrefix(t *testing.T) {
	cli, srv := conversation(t)
	for _, w := range []*wire{cli, srv} {
		b := w.bytes()
		dir := event.C2S
		if w == srv {
			dir = event.S2C
		}
		for i, s := range w.starts {
			e := len(b)
			if i+1 < len(w.starts) {
				e = w.starts[i+1]
			}
			for cut := s; cut < e; cut++ {
				r := &recorder{}
				c := NewConn(1, r, Options{Observer: r})
				c.Data(dir, b[:cut], ref(1))
				if len(r.evs) != i && !(dir == event.S2C && len(r.evs) == i) {
					t.Fatalf("%v frame %d: prefix of %d/%d bytes gave %d events, want %d: %v", dir, i, cut-s, e-s, len(r.evs), i, r.evs)
				}
				c.Data(dir, b[cut:e], ref(2))
				if len(r.evs) != i+1 || !strings.Contains(r.evs[i], "@2 ") {
					t.Fatalf("%v frame %d: completing it gave %v", dir, i, r.evs)
				}
			}
		}
	}
}

// TestParserTable walks every index of the frame parser table, gaps
// included: each type yields an event named for it, and the unknown ones
// are skipped by length and counted.
func TestParserTable(t *testing.T) {
	known := 0
	for i := 0; i < 256; i++ {
		ft := FrameType(i)
		if specFor(ft) == nil {
			t.Fatalf("type %d has no parser", i)
		}
		name := ft.String()
		if ft.Known() {
			known++
			if strings.HasPrefix(name, "UNKNOWN") {
				t.Errorf("known type %d named %s", i, name)
			}
		} else if name != fmt.Sprintf("UNKNOWN_0x%02x", i) {
			t.Errorf("type %d named %s", i, name)
		}
		w := newWire(t, false)
		w.settings()
		// A payload of the length the type requires, on a stream it
		// allows.
		payload := make([]byte, 8)
		id := uint32(1)
		switch ft {
		case FramePriority:
			payload = []byte{0, 0, 0, 3, 16}
		case FrameRSTStream, FrameWindowUpdate:
			payload = []byte{0, 0, 0, 1}
		case FrameSettings:
			payload, id = nil, 0
		case FramePing, FrameGoAway, FrameOrigin, FramePriorityUpdate:
			id = 0
		case FramePushPromise:
			payload = []byte{0, 0, 0, 2, 0x82}
		case FrameHeaders:
			payload = []byte{0x88}
		}
		var f Flags
		if ft == FrameHeaders || ft == FramePushPromise {
			f = FlagEndHeaders
		}
		w.raw(ft, f, id, payload)
		w.settings()
		r := &recorder{}
		c := NewConn(1, r, Options{})
		c.Data(event.S2C, w.bytes(), ref(1))
		if len(r.evs) != 3 || !strings.Contains(r.evs[1], " "+name+" ") || !strings.Contains(r.evs[2], "SETTINGS") {
			t.Errorf("type %d: events %v", i, r.evs)
		}
		a := c.Summary().Anomalies
		if !ft.Known() && a["unknown_frame_type"] != 1 || ft.Known() && ft != FrameContinuation && len(a) != 0 || ft == FrameContinuation && a["continuation_unexpected"] != 1 {
			t.Errorf("type %s: anomalies %v", name, a)
		}
	}
	if known != 13 {
		t.Errorf("%d known types, want 13", known)
	}
}

func TestFlagNames(t *testing.T) {
	tests := []struct {
		t    FrameType
		f    Flags
		want string
	}{
		{FrameData, 0, ""},
		{FrameData, FlagEndStream | FlagPadded, "END_STREAM|PADDED"},
		{FrameHeaders, 0x2d, "END_STREAM|END_HEADERS|PADDED|PRIORITY"},
		{FrameSettings, FlagAck, "ACK"},
		{FramePing, FlagAck | 0x80, "ACK|0x80"},
		{FrameRSTStream, 0x1, "0x01"},
		{FrameContinuation, FlagEndHeaders, "END_HEADERS"},
		{FramePushPromise, FlagEndHeaders | FlagPadded, "END_HEADERS|PADDED"},
		{0x33, 0x3, "0x03"},
	}
	for _, tc := range tests {
		if got := tc.t.FlagNames(tc.f); got != tc.want {
			t.Errorf("%v.FlagNames(%#x) = %q, want %q", tc.t, tc.f, got, tc.want)
		}
	}
	if !(FlagEndStream | FlagPadded).Has(FlagPadded) || Flags(FlagPadded).Has(FlagEndStream|FlagPadded) {
		t.Error("Has")
	}
	for code, want := range map[ErrCode]string{0: "NO_ERROR", 8: "CANCEL", 0xd: "HTTP_1_1_REQUIRED", 0xe: "UNKNOWN_0xe"} {
		if code.String() != want {
			t.Errorf("%d: %s", code, code)
		}
	}
	for id, want := range map[SettingID]string{1: "SETTINGS_HEADER_TABLE_SIZE", 8: "SETTINGS_ENABLE_CONNECT_PROTOCOL", 9: "SETTINGS_NO_RFC7540_PRIORITIES", 7: "UNKNOWN_0x7"} {
		if id.String() != want {
			t.Errorf("%d: %s", id, id)
		}
	}
}

// serverStart returns a server direction beginning with SETTINGS.
func serverStart(t testing.TB) *wire { return newWire(t, false).settings() }

// feedS2C runs one server direction through a Conn started at the
// connection's start.
func feedS2C(t *testing.T, opts Options, b []byte) (*Conn, *recorder) {
	return run(t, opts, []chunk{{dir: event.S2C, b: b, ref: ref(1)}})
}

func TestContinuation(t *testing.T) {
	w := serverStart(t)
	blk := w.block(":status", "200", "content-type", "text/plain", "x-long", strings.Repeat("v", 40))
	w.mark()
	w.check(w.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:3], EndStream: true}))
	w.mark()
	w.check(w.fr.WriteContinuation(1, false, blk[3:10]))
	w.mark()
	w.check(w.fr.WriteContinuation(1, true, blk[10:]))
	// A block cut short by another frame: CONTINUATION missing.
	w.mark()
	w.check(w.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 3, BlockFragment: w.block(":status", "204")[:1]}))
	w.data(3, true, 1)
	// A CONTINUATION nobody asked for.
	w.mark()
	w.check(w.fr.WriteContinuation(5, true, []byte{0x88}))
	w.headers(7, true, ":status", "404")
	c, r := feedS2C(t, Options{}, w.bytes())
	want := []string{
		"s2c @1 SETTINGS s=0 len=0",
		"s2c @1 HEADERS s=1 len=3 flags=END_STREAM",
		"s2c @1 CONTINUATION s=1 len=7",
		fmt.Sprintf("s2c @1 CONTINUATION s=1 len=%d flags=END_HEADERS hdrs=[:status=200 content-type=text/plain x-long=%s]", len(blk)-10, strings.Repeat("v", 40)),
		"s2c @1 HEADERS s=3 len=1",
		"s2c @1 DATA s=3 len=1 flags=END_STREAM sw=->- cw=65535>65534",
		"s2c @1 CONTINUATION s=5 len=1 flags=END_HEADERS",
		// The unexpected CONTINUATION made the table unknown, but :status
		// 404 is in the static table.
		"s2c @1 HEADERS s=7 len=1 flags=END_STREAM|END_HEADERS hdrs=[:status=404]",
	}
	wantLines(t, "events", r.evs, want)
	a := c.Summary().Anomalies
	if a["continuation_missing"] != 1 || a["continuation_unexpected"] != 1 || len(a) != 2 {
		t.Errorf("anomalies %v", a)
	}
	if s := c.Summary(); s.HeaderBlocks != 3 || s.HeaderBlocksUndecodable != 1 {
		t.Errorf("blocks %d, undecodable %d", s.HeaderBlocks, s.HeaderBlocksUndecodable)
	}
}

// TestClientEmptyFrames counts the client's empty DATA, HEADERS and
// CONTINUATION frames without END_STREAM (the empty frames flood,
// CVE-2019-9518), and not an empty DATA ending a stream, an empty
// HEADERS with END_STREAM, or the server's.
func TestClientEmptyFrames(t *testing.T) {
	for _, tt := range []struct {
		name string
		dir  event.Dir
		add  func(w *wire)
		want int
	}{
		{"empty DATA", event.C2S, func(w *wire) { w.data(1, false, 0).data(1, false, 0) }, 2},
		{"empty DATA ending the stream", event.C2S, func(w *wire) { w.data(1, true, 0) }, 0},
		{"empty HEADERS and CONTINUATION", event.C2S, func(w *wire) {
			w.raw(FrameHeaders, 0, 1, nil)
			w.raw(FrameContinuation, FlagEndHeaders, 1, w.block(":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a"))
			w.raw(FrameHeaders, FlagEndStream|FlagEndHeaders, 3, w.block(":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a"))
		}, 1},
		{"the server's empty DATA", event.S2C, func(w *wire) { w.data(1, false, 0) }, 0},
	} {
		w := newWire(t, tt.dir == event.C2S)
		w.settings()
		if tt.dir == event.C2S {
			w.headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/", ":authority", "a")
		} else {
			w.headers(1, false, ":status", "200")
		}
		tt.add(w)
		c := NewConn(1, &recorder{}, Options{})
		c.Data(tt.dir, w.bytes(), ref(1))
		if got := c.Summary().Anomalies["client_empty_frames"]; got != tt.want {
			t.Errorf("%s: client_empty_frames %d, want %d (anomalies %v)", tt.name, got, tt.want, c.Summary().Anomalies)
		}
	}
}
