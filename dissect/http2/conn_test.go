package http2

import (
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	xhttp2 "golang.org/x/net/http2"
)

// conversation builds a client and a server stream exercising every frame
// type, each frame in its own packet.
func conversation(t testing.TB) (cli, srv *wire) {
	cli = newWire(t, true)
	srv = newWire(t, false)
	cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 100}, xhttp2.Setting{ID: xhttp2.SettingEnablePush, Val: 1})
	srv.settings(xhttp2.Setting{ID: xhttp2.SettingMaxConcurrentStreams, Val: 250}, xhttp2.Setting{ID: 0x8, Val: 1}, xhttp2.Setting{ID: 0x9, Val: 1}, xhttp2.Setting{ID: 0x77, Val: 3})
	srv.settingsAck()
	cli.settingsAck()
	cli.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "example.com", ":path", "/upload", "content-type", "application/grpc")
	cli.data(1, false, 10)
	cli.mark()
	cli.check(cli.fr.WriteDataPadded(1, true, []byte("hello"), make([]byte, 7)))
	cli.mark()
	cli.check(cli.fr.WritePriority(3, xhttp2.PriorityParam{StreamDep: 1, Weight: 15}))
	srv.headers(1, false, ":status", "200", "content-type", "application/grpc")
	srv.data(1, false, 150)
	srv.windowUpdate(0, 0)
	cli.windowUpdate(1, 100)
	cli.windowUpdate(0, 1000)
	srv.data(1, false, 40)
	srv.mark()
	srv.check(srv.fr.WritePushPromise(xhttp2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: srv.block(":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", "/style.css"), EndHeaders: true}))
	srv.headers(1, true, "grpc-status", "0", "grpc-message", "ok")
	srv.mark()
	srv.check(srv.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	cli.mark()
	cli.check(cli.fr.WritePing(true, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	cli.mark()
	cli.check(cli.fr.WriteRSTStream(2, xhttp2.ErrCodeCancel))
	srv.raw(FrameAltSvc, 0, 0, []byte{0, 3, 'a', '.', 'b'})
	srv.raw(FrameOrigin, 0, 0, []byte{0, 1, 'x'})
	cli.raw(FramePriorityUpdate, 0, 0, []byte{0, 0, 0, 3, 'u', '=', '1'})
	cli.raw(0x21, 0xff, 5, []byte("grease"))
	srv.mark()
	srv.check(srv.fr.WriteGoAway(1, xhttp2.ErrCodeNo, []byte("bye")))
	srv.mark()
	srv.check(srv.fr.WriteRSTStream(9, 0x1234))
	return cli, srv
}

// interleave orders the two directions' frames as a capture would: each
// chunk is one frame (the preface is its own chunk), and the order is
// given as a string of 'c' and 's'.
func interleave(cli, srv *wire, order string) []chunk {
	cc := split(event.C2S, cli.bytes(), cli.starts, 0)
	sc := split(event.S2C, srv.bytes(), srv.starts, 0)
	var out []chunk
	for _, o := range order {
		if o == 'c' {
			out, cc = append(out, cc[0]), cc[1:]
		} else {
			out, sc = append(out, sc[0]), sc[1:]
		}
	}
	out = append(append(out, cc...), sc...)
	for i := range out {
		out[i].ref = ref(uint64(i + 1))
	}
	return out
}

const conversationOrder = "ccsscccccsssccsssscccc"

func TestEveryFrameType(t *testing.T) {
	cli, srv := conversation(t)
	c, r := run(t, Options{}, interleave(cli, srv, conversationOrder))
	want := []string{
		"c2s @1 PREFACE s=0 len=24",
		"c2s @2 SETTINGS s=0 len=12 SETTINGS_INITIAL_WINDOW_SIZE=100 SETTINGS_ENABLE_PUSH=1",
		"s2c @3 SETTINGS s=0 len=24 SETTINGS_MAX_CONCURRENT_STREAMS=250 SETTINGS_ENABLE_CONNECT_PROTOCOL=1 SETTINGS_NO_RFC7540_PRIORITIES=1 UNKNOWN_0x77=3",
		"s2c @4 SETTINGS s=0 len=0 flags=ACK",
		"c2s @5 SETTINGS s=0 len=0 flags=ACK",
		"c2s @6 HEADERS s=1 len=32 flags=END_HEADERS hdrs=[:method=POST :scheme=http :authority=example.com :path=/upload content-type=application/grpc]",
		"c2s @7 DATA s=1 len=10 sw=65535>65525 cw=65535>65525",
		"c2s @8 DATA s=1 len=13 flags=END_STREAM|PADDED pad=7 sw=65525>65512 cw=65525>65512",
		"c2s @9 PRIORITY s=3 len=5",
		"s2c @10 HEADERS s=1 len=14 flags=END_HEADERS hdrs=[:status=200 content-type=application/grpc]",
		"s2c @11 DATA s=1 len=150 sw=100>-50 cw=65535>65385",
		"s2c @12 WINDOW_UPDATE s=0 len=4",
		"c2s @13 WINDOW_UPDATE s=1 len=4 inc=100",
		"c2s @14 WINDOW_UPDATE s=0 len=4 inc=1000",
		"s2c @15 DATA s=1 len=40 sw=50>10 cw=66385>66345",
		"s2c @16 PUSH_PROMISE s=1 len=25 flags=END_HEADERS hdrs=[:method=GET :scheme=http :authority=example.com :path=/style.css] promised=2",
		"s2c @17 HEADERS s=1 len=26 flags=END_STREAM|END_HEADERS hdrs=[grpc-status=0 grpc-message=ok]",
		"s2c @18 PING s=0 len=8 ping=0102030405060708",
		"c2s @19 PING s=0 len=8 flags=ACK ping=0102030405060708",
		"c2s @20 RST_STREAM s=2 len=4 err=CANCEL",
		"c2s @21 PRIORITY_UPDATE s=0 len=7",
		"c2s @22 UNKNOWN_0x21 s=5 len=6 flags=0xff",
		"s2c @23 ALTSVC s=0 len=5",
		"s2c @24 ORIGIN s=0 len=3",
		"s2c @25 GOAWAY s=0 len=11 err=NO_ERROR last=1 debug=\"bye\"",
		"s2c @26 RST_STREAM s=9 len=4 err=UNKNOWN_0x1234",
	}
	wantLines(t, "events", r.evs, want)
	wantObs := []string{
		"c2s headers s=1 end=false [:method=POST :scheme=http :authority=example.com :path=/upload content-type=application/grpc] @6",
		"c2s data s=1 n=10 end=false",
		"c2s data s=1 n=5 end=true",
		"s2c headers s=1 end=false [:status=200 content-type=application/grpc] @10",
		"s2c data s=1 n=150 end=false",
		"s2c data s=1 n=40 end=false",
		"s2c headers s=1 end=true [grpc-status=0 grpc-message=ok] @17",
		"c2s reset s=2 CANCEL @20",
		"s2c reset s=9 UNKNOWN_0x1234 @26",
	}
	wantLines(t, "observer", r.obs, wantObs)
	s := c.Summary()
	wantAnoms := map[string]int{"window_update_zero": 1, "unknown_frame_type": 1, "flow_control_exceeded": 1}
	if len(s.Anomalies) != len(wantAnoms) {
		t.Errorf("anomalies %v, want %v", s.Anomalies, wantAnoms)
	}
	for k, v := range wantAnoms {
		if s.Anomalies[k] != v {
			t.Errorf("anomalies %v, want %v", s.Anomalies, wantAnoms)
		}
	}
	if !s.Preface || s.Streams != 3 || s.HeaderBlocks != 4 || s.HeaderFields != 13 || s.HeaderFieldsDecoded != 13 {
		t.Errorf("summary %+v", s)
	}
	if s.Frames.C2S["DATA"] != 2 || s.Frames.S2C["SETTINGS"] != 2 || s.Frames.C2S["UNKNOWN_0x21"] != 1 {
		t.Errorf("frames %+v", s.Frames)
	}
	st := c.Streams()
	if len(st) != 3 {
		t.Fatalf("streams %+v", st)
	}
	s1 := st[0]
	if s1.ID != 1 || s1.Method != "POST" || s1.Path != "/upload" || s1.Authority != "example.com" || s1.Status != 200 ||
		s1.ContentType != "application/grpc" || s1.GRPCStatus == nil || *s1.GRPCStatus != 0 || s1.GRPCMessage != "ok" ||
		!s1.ServerTrailers || s1.ClientTrailers || s1.ClientEnd == nil || s1.ClientEnd.Frame != 8 || s1.ServerEnd == nil ||
		s1.ServerEnd.Frame != 17 || s1.FirstHeaders == nil || s1.FirstHeaders.Frame != 6 || s1.DataBytes != (Counts{C2S: 15, S2C: 190}) ||
		s1.DataFrames != (Counts{C2S: 2, S2C: 2}) || s1.Pushes != 1 || s1.Initiator != "client" {
		t.Errorf("stream 1: %+v", s1)
	}
	// The server's stream window went to -50 at frame 11 and back above
	// zero with the WINDOW_UPDATE at frame 13.
	if len(s1.Stalls) != 1 || s1.Stalls[0].Start.Frame != 11 || s1.Stalls[0].End == nil || s1.Stalls[0].End.Frame != 13 ||
		s1.Stalls[0].EndedBy != "WINDOW_UPDATE" || s1.Stalls[0].MinWindow != -50 || s1.Stalls[0].Dir != event.S2C {
		t.Errorf("stream 1 stalls: %+v", s1.Stalls)
	}
	s2 := st[1]
	if s2.ID != 2 || s2.Initiator != "server" || s2.PushedBy != 1 || s2.PushPromise == nil || s2.PushPromise.Frame != 16 ||
		s2.Path != "/style.css" || s2.Reset == nil || s2.Reset.Code != ErrCodeCancel || s2.Reset.Dir != event.C2S {
		t.Errorf("stream 2: %+v", s2)
	}
	if st[2].ID != 9 || st[2].Reset == nil || st[2].Reset.Code != 0x1234 {
		t.Errorf("stream 9: %+v", st[2])
	}
	if len(s.GoAways) != 1 || s.GoAways[0].Debug != "bye" || s.GoAways[0].Code != ErrCodeNo {
		t.Errorf("goaways %+v", s.GoAways)
	}
}
