package http2

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	xhttp2 "golang.org/x/net/http2"
)

// TestMidConnectionAtBoundary starts the capture at a frame boundary after
// some dynamic-table inserts: the fields that refer to the entries not
// seen are Unknown with their index, the rest decode, and entries inserted
// since are used exactly.
func TestMidConnectionAtBoundary(t *testing.T) {
	w := newWire(t, true).settings()
	w.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/one", "user-agent", "ua/1")
	start := w.buf.Len()
	w.headers(3, true, ":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/two", "user-agent", "ua/1")
	w.headers(5, true, ":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/two", "user-agent", "ua/1")
	c, r := run(t, Options{MidConnection: true}, []chunk{
		{dir: event.C2S, b: w.bytes()[start:], ref: ref(5)},
	})
	want := []string{
		// Stream 1 left :authority a.example at 64, :path /one at 63 and
		// user-agent ua/1 at 62; stream 3 inserts :path /two in front
		// (62), which stream 5 uses, while the others stay unknown.
		"c2s @5 HEADERS s=3 len=9 flags=END_STREAM|END_HEADERS hdrs=[:method=GET :scheme=http ?64 :path=/two ?63]",
		"c2s @5 HEADERS s=5 len=5 flags=END_STREAM|END_HEADERS hdrs=[:method=GET :scheme=http ?65 :path=/two ?63]",
	}
	wantLines(t, "events", r.evs, want)
	s := c.Summary()
	if s.HeaderFields != 10 || s.HeaderFieldsDecoded != 6 || s.HeaderBlocksUndecodable != 0 || s.SkippedBytes.C2S != 0 {
		t.Errorf("summary %+v", s)
	}
	// The stream records have what could be decoded, and nothing wrong.
	st := c.Streams()
	if len(st) != 2 || st[0].Path != "/two" || st[0].Authority != "" || st[0].Method != "GET" {
		t.Errorf("streams %+v", st)
	}
}

// gapCase scripts a direction with a gap.
// TestGaps puts a gap inside a DATA payload (skipped, the framing holds),
// inside a header block (the block is undecodable, the framing holds),
// inside a frame header and across a frame boundary (resynchronised).
func TestGaps(t *testing.T) {
	build := func() *wire {
		w := serverStart(t)
		w.headers(1, false, ":status", "200", "x-big", strings.Repeat("b", 300))
		w.data(1, false, 1000)
		w.headers(1, true, "grpc-status", "0")
		w.headers(3, false, ":status", "200", "x-big", strings.Repeat("b", 300))
		return w
	}
	w := build()
	b := w.bytes()
	hdr1, data1, tr1 := w.starts[1], w.starts[2], w.starts[3]
	tests := []struct {
		name      string
		at, n     int // gap of n bytes from offset at
		wantEvs   []string
		wantObs   []string
		anomalies string
	}{
		{
			name: "inside DATA payload",
			at:   data1 + 9 + 100, n: 500,
			wantEvs: []string{
				"s2c @1 SETTINGS s=0 len=0",
				"s2c @1 HEADERS s=1 len=234 flags=END_HEADERS hdrs=[:status=200 x-big=" + strings.Repeat("b", 300) + "]",
				"s2c @3 DATA s=1 len=1000 sw=->- cw=65535>64535 lost=500",
				"s2c @3 HEADERS s=1 len=12 flags=END_STREAM|END_HEADERS hdrs=[grpc-status=0]",
				"s2c @3 HEADERS s=3 len=2 flags=END_HEADERS hdrs=[:status=200 x-big=" + strings.Repeat("b", 300) + "]",
			},
			wantObs: []string{
				"s2c headers s=1 end=false [:status=200 x-big=" + strings.Repeat("b", 300) + "] @1",
				"s2c data s=1 n=100 end=false",
				"s2c gap n=500 @2",
				"s2c data s=1 n=400 end=false",
				"s2c headers s=1 end=true [grpc-status=0] @3",
				"s2c headers s=3 end=false [:status=200 x-big=" + strings.Repeat("b", 300) + "] @3",
			},
		},
		{
			name: "inside a header block",
			at:   hdr1 + 9 + 10, n: 20,
			wantEvs: []string{
				"s2c @1 SETTINGS s=0 len=0",
				"s2c @3 HEADERS s=1 len=234 flags=END_HEADERS undecodable lost=20",
				"s2c @3 DATA s=1 len=1000 sw=->- cw=65535>64535",
				"s2c @3 HEADERS s=1 len=12 flags=END_STREAM|END_HEADERS hdrs=[grpc-status=0]",
				// The table is unknown since the lost block: x-big's name
				// is in it.
				"s2c @3 HEADERS s=3 len=2 flags=END_HEADERS hdrs=[:status=200 ?63]",
			},
			wantObs: []string{
				"s2c headers s=1 end=false <nil> @3",
				"s2c data s=1 n=1000 end=false",
				"s2c headers s=1 end=true [grpc-status=0] @3",
				"s2c headers s=3 end=false [:status=200 ?63] @3",
			},
		},
		{
			name: "inside a frame header",
			at:   data1 + 3, n: 4,
			wantEvs: []string{
				"s2c @1 SETTINGS s=0 len=0",
				"s2c @1 HEADERS s=1 len=234 flags=END_HEADERS hdrs=[:status=200 x-big=" + strings.Repeat("b", 300) + "]",
				// Resynchronised on the trailers. The lost bytes might
				// have held a header block, so the table is unknown.
				"s2c @3 HEADERS s=1 len=12 flags=END_STREAM|END_HEADERS hdrs=[grpc-status=0]",
				"s2c @3 HEADERS s=3 len=2 flags=END_HEADERS hdrs=[:status=200 ?63]",
			},
			wantObs: []string{
				"s2c headers s=1 end=false [:status=200 x-big=" + strings.Repeat("b", 300) + "] @1",
				"s2c gap n=4 @2",
				"s2c headers s=1 end=true [grpc-status=0] @3",
				"s2c headers s=3 end=false [:status=200 ?63] @3",
			},
		},
		{
			name: "across a frame boundary",
			at:   tr1 - 10, n: 12,
			wantEvs: []string{
				"s2c @1 SETTINGS s=0 len=0",
				"s2c @1 HEADERS s=1 len=234 flags=END_HEADERS hdrs=[:status=200 x-big=" + strings.Repeat("b", 300) + "]",
				"s2c @2 DATA s=1 len=1000 sw=->- cw=65535>64535 lost=10",
				"s2c @3 HEADERS s=3 len=2 flags=END_HEADERS hdrs=[:status=200 ?63]",
			},
			wantObs: []string{
				"s2c headers s=1 end=false [:status=200 x-big=" + strings.Repeat("b", 300) + "] @1",
				"s2c data s=1 n=990 end=false",
				"s2c gap n=10 @2",
				"s2c gap n=2 @2",
				"s2c headers s=3 end=false [:status=200 ?63] @3",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chunks := []chunk{
				{dir: event.S2C, b: b[:tc.at], ref: ref(1)},
				{dir: event.S2C, gap: tc.n, ref: ref(2)},
				{dir: event.S2C, b: b[tc.at+tc.n:], ref: ref(3)},
			}
			_, r := run(t, Options{}, chunks)
			wantLines(t, "events", r.evs, tc.wantEvs)
			wantLines(t, "observer", r.obs, tc.wantObs)
			_, r2 := run(t, Options{}, bytewise(chunks))
			wantLines(t, "bytewise", r2.evs, r.evs)
		})
	}
}

// TestResync: garbage before the frames, and an oversized frame, are
// skipped and counted.
func TestResync(t *testing.T) {
	w := serverStart(t)
	w.headers(1, false, ":status", "200")
	for range 3 {
		w.data(1, false, 100)
	}
	frames := w.bytes()[w.starts[1]:]
	t.Run("garbage", func(t *testing.T) {
		in := append([]byte("\x00\x00\x04\x08\x00\x00\x00\x00\x01junk-junk\x00\x00\x00\x00\x00"), frames...)
		c, r := run(t, Options{MidConnection: true}, []chunk{{dir: event.S2C, b: in, ref: ref(1)}})
		want := []string{
			"s2c @1 HEADERS s=1 len=1 flags=END_HEADERS hdrs=[:status=200]",
			"s2c @1 DATA s=1 len=100",
			"s2c @1 DATA s=1 len=100",
			"s2c @1 DATA s=1 len=100",
		}
		wantLines(t, "events", r.evs, want)
		if s := c.Summary(); s.SkippedBytes.S2C != 23 || s.Anomalies["resync_skipped_bytes"] != 23 {
			t.Errorf("summary %+v", s)
		}
	})
	t.Run("frame too large", func(t *testing.T) {
		// An oversized DATA frame is kept, its length trusted; an
		// oversized frame of an unknown type means the framing is lost.
		over := []byte{0, 0x40, 0x01, 0, 0, 0, 0, 0, 1}
		over = append(over, make([]byte, 0x4001)...)
		junk := []byte{0, 0x40, 0x01, 0x42, 0, 0, 0, 0, 1}
		in := append(append(append(append([]byte(nil), w.bytes()[:w.starts[1]]...), over...), junk...), frames...)
		c, r := run(t, Options{}, []chunk{{dir: event.S2C, b: in, ref: ref(1)}})
		want := []string{
			"s2c @1 SETTINGS s=0 len=0",
			"s2c @1 DATA s=1 len=16385 sw=->- cw=65535>49150",
			"s2c @1 HEADERS s=1 len=1 flags=END_HEADERS hdrs=[:status=200]",
			"s2c @1 DATA s=1 len=100",
			"s2c @1 DATA s=1 len=100",
			"s2c @1 DATA s=1 len=100",
		}
		wantLines(t, "events", r.evs, want)
		if s := c.Summary(); s.Anomalies["frame_too_large"] != 2 || s.Resyncs != 1 || s.SkippedBytes.S2C != 0 {
			t.Errorf("summary %+v", s)
		}
	})
	t.Run("preface missing", func(t *testing.T) {
		c, r := run(t, Options{}, []chunk{{dir: event.C2S, b: append([]byte("PRI * HTTP/1.1\r\n"), frames...), ref: ref(1)}})
		if len(r.evs) != 4 || c.Summary().Anomalies["preface_missing"] != 1 {
			t.Errorf("events %v, summary %+v", r.evs, c.Summary())
		}
	})
	t.Run("not http2", func(t *testing.T) {
		c, r := run(t, Options{}, []chunk{
			{dir: event.S2C, b: []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), ref: ref(1)},
		})
		if a := c.Summary().Anomalies; len(r.evs) != 0 || a["settings_not_first"] != 1 || a["resync_skipped_bytes"] != 57 {
			t.Errorf("events %v, summary %+v", r.evs, c.Summary())
		}
	})
}

// TestSettingsInitialWindow changes SETTINGS_INITIAL_WINDOW_SIZE while a
// stream is open: its window moves by the difference (RFC 9113 §6.9.2),
// which here opens and then ends a stall.
func TestSettingsInitialWindow(t *testing.T) {
	cli, srv := newWire(t, true), newWire(t, false)
	cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1000})
	srv.settings()
	cli.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/")
	srv.headers(1, false, ":status", "200")
	srv.data(1, false, 600)
	cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 500}) // 400 - 500: -100
	srv.data(1, false, 0)
	cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 2000}) // -100 + 1500
	srv.data(1, true, 1400)
	chunks := interleave(cli, srv, "ccsccsscs")
	c, r := run(t, Options{}, chunks)
	want := []string{
		"c2s @1 PREFACE s=0 len=24",
		"c2s @2 SETTINGS s=0 len=6 SETTINGS_INITIAL_WINDOW_SIZE=1000",
		"s2c @3 SETTINGS s=0 len=0",
		"c2s @4 HEADERS s=1 len=6 flags=END_STREAM|END_HEADERS hdrs=[:method=GET :scheme=http :authority=x :path=/]",
		"c2s @5 SETTINGS s=0 len=6 SETTINGS_INITIAL_WINDOW_SIZE=500",
		"s2c @6 HEADERS s=1 len=1 flags=END_HEADERS hdrs=[:status=200]",
		"s2c @7 DATA s=1 len=600 sw=500>-100 cw=65535>64935",
		"c2s @8 SETTINGS s=0 len=6 SETTINGS_INITIAL_WINDOW_SIZE=2000",
		"s2c @9 DATA s=1 len=0 sw=1400>1400 cw=64935>64935",
		"s2c @10 DATA s=1 len=1400 flags=END_STREAM sw=1400>0 cw=64935>63535",
	}
	wantLines(t, "events", r.evs, want)
	st := c.Streams()[0]
	if len(st.Stalls) != 1 || st.Stalls[0].Start.Frame != 7 || st.Stalls[0].End.Frame != 8 || st.Stalls[0].EndedBy != "SETTINGS" || st.Stalls[0].MinWindow != -100 {
		t.Errorf("stalls %+v", st.Stalls)
	}
	if a := c.Summary().Anomalies; a["flow_control_exceeded"] != 1 {
		t.Errorf("anomalies %v", a)
	}
}

func TestPadding(t *testing.T) {
	w := serverStart(t)
	w.mark()
	w.check(w.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: w.block(":status", "200"), EndHeaders: true, PadLength: 5,
		Priority: xhttp2.PriorityParam{StreamDep: 0, Weight: 200, Exclusive: true}}))
	w.mark()
	w.check(w.fr.WriteDataPadded(1, false, []byte("abc"), make([]byte, 255)))
	w.mark()
	w.check(w.fr.WriteDataPadded(1, false, nil, []byte{}))
	w.raw(FrameData, FlagPadded, 1, []byte{9, 'a', 'b'})                  // pad length 9 > 2
	w.raw(FrameHeaders, FlagPadded|FlagEndHeaders, 1, []byte{4, 0x88, 0}) // pad 4 > 2
	w.raw(FrameData, FlagPadded|FlagEndStream, 1, []byte{0})
	c, r := feedS2C(t, Options{}, w.bytes())
	want := []string{
		"s2c @1 SETTINGS s=0 len=0",
		"s2c @1 HEADERS s=1 len=12 flags=END_HEADERS|PADDED|PRIORITY hdrs=[:status=200] pad=5",
		"s2c @1 DATA s=1 len=259 flags=PADDED pad=255 sw=->- cw=65535>65276",
		"s2c @1 DATA s=1 len=1 flags=PADDED sw=->- cw=65276>65275",
		"s2c @1 DATA s=1 len=3 flags=PADDED pad=9 sw=->- cw=65275>65272",
		"s2c @1 HEADERS s=1 len=3 flags=END_HEADERS|PADDED undecodable pad=4",
		"s2c @1 DATA s=1 len=1 flags=END_STREAM|PADDED sw=->- cw=65272>65271",
	}
	wantLines(t, "events", r.evs, want)
	wantObs := []string{
		"s2c headers s=1 end=false [:status=200] @1",
		"s2c data s=1 n=3 end=false",
		"s2c headers s=1 end=false <nil> @1",
		"s2c data s=1 n=0 end=true",
	}
	wantLines(t, "observer", r.obs, wantObs)
	if a := c.Summary().Anomalies; a["bad_padding"] != 2 {
		t.Errorf("anomalies %v", a)
	}
	if st := c.Streams()[0]; st.DataBytes.S2C != 3 || st.DataFrames.S2C != 4 {
		t.Errorf("stream %+v", st)
	}
}

// TestUpgrade dissects an h2c upgrade: the server's first frames answer
// the HTTP/1.1 request on stream 1.
func TestUpgrade(t *testing.T) {
	var sb bytes.Buffer
	fr := xhttp2.NewFramer(&sb, nil)
	if err := fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 100}); err != nil {
		t.Fatal(err)
	}
	hs := base64.RawURLEncoding.EncodeToString(sb.Bytes()[9:])
	cli, srv := newWire(t, true), newWire(t, false)
	cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 100})
	srv.settings()
	srv.headers(1, false, ":status", "200", "content-type", "text/html")
	srv.data(1, true, 150)
	srv.settingsAck()
	c, r := run(t, Options{Upgrade: true, UpgradeSettings: hs, UpgradeRequest: []event.Header{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/"}}},
		interleave(cli, srv, "sssccs"))
	want := []string{
		"s2c @1 SETTINGS s=0 len=0",
		"s2c @2 HEADERS s=1 len=10 flags=END_HEADERS hdrs=[:status=200 content-type=text/html]",
		"s2c @3 DATA s=1 len=150 flags=END_STREAM sw=100>-50 cw=65535>65385",
		"c2s @4 PREFACE s=0 len=24",
		"c2s @5 SETTINGS s=0 len=6 SETTINGS_INITIAL_WINDOW_SIZE=100",
		"s2c @6 SETTINGS s=0 len=0 flags=ACK",
	}
	wantLines(t, "events", r.evs, want)
	st := c.Streams()
	if len(st) != 1 || !st[0].Upgrade || st[0].Method != "GET" || st[0].Status != 200 || st[0].ClientEnd == nil || st[0].ServerEnd == nil {
		t.Errorf("streams %+v", st)
	}
	if s := c.Summary(); !s.Upgrade || !s.Preface || len(s.Anomalies) != 1 || s.Anomalies["flow_control_exceeded"] != 1 {
		t.Errorf("summary %+v", s)
	}
}

// TestMaxStreams bounds the records kept.
func TestMaxStreams(t *testing.T) {
	w := newWire(t, true).settings()
	for i := range 10 {
		w.headers(uint32(2*i+1), true, ":method", "GET", ":path", "/")
	}
	c, _ := run(t, Options{MaxStreams: 4}, []chunk{{dir: event.C2S, b: w.bytes(), ref: ref(1)}})
	s := c.Summary()
	if s.Streams != 10 || s.StreamsDropped != 6 || len(c.Streams()) != 4 {
		t.Errorf("streams %d dropped %d records %d", s.Streams, s.StreamsDropped, len(c.Streams()))
	}
}

// TestErrorCodeRead checks HasCode on RST_STREAM and GOAWAY events: set
// with the code when the frame is whole, unset (no code, no name) when
// the capture lost part of its payload.
func TestErrorCodeRead(t *testing.T) {
	w := serverStart(t)
	w.headers(1, false, ":status", "200")
	w.mark()
	w.check(w.fr.WriteRSTStream(1, xhttp2.ErrCodeCancel))
	w.mark()
	w.check(w.fr.WriteRSTStream(1, xhttp2.ErrCodeRefusedStream))
	w.mark()
	w.check(w.fr.WriteGoAway(1, xhttp2.ErrCodeEnhanceYourCalm, nil))
	b := w.bytes()
	rst2 := w.starts[len(w.starts)-2]
	type got struct {
		typ     string
		code    uint32
		hasCode bool
		name    string
	}
	var evs []got
	c := NewConn(7, event.SinkFunc(func(e *event.Event) {
		if e.Type == "RST_STREAM" || e.Type == "GOAWAY" {
			evs = append(evs, got{e.Type, e.Code, e.HasCode, e.Error})
		}
	}), Options{})
	// The second RST_STREAM loses its last payload byte to a gap.
	c.Data(event.S2C, b[:rst2+9+3], ref(1))
	c.Gap(event.S2C, 1, ref(2))
	c.Data(event.S2C, b[rst2+9+4:], ref(3))
	want := []got{
		{"RST_STREAM", uint32(ErrCodeCancel), true, "CANCEL"},
		{"RST_STREAM", 0, false, ""},
		{"GOAWAY", uint32(ErrCodeEnhanceYourCalm), true, "ENHANCE_YOUR_CALM"},
	}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Errorf("events %+v, want %+v", evs, want)
	}
}
