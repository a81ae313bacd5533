package grpc

import (
	"encoding/hex"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
)

const sayHello = "/helloworld.Greeter/SayHello"

// unary is a complete unary call on stream 1: request HEADERS (frame 1),
// request message of 100 bytes (frame 2), response HEADERS (3), response
// message of 40 bytes (4), trailers (5).
func unary(extraReq ...string) []op {
	return []op{
		reqH(1, 1, sayHello, extraReq...),
		data(2, event.C2S, 1, msg(false, 100), true),
		respH(3, 1),
		data(4, event.S2C, 1, msg(false, 40), false),
		trailers(5, 1, "0"),
	}
}

var unaryWant = []string{
	"f2 c2s message s1 len=100 " + sayHello,
	"f4 s2c message s1 len=40 " + sayHello,
	"f5 s2c status s1 status=0 OK " + sayHello,
}

func TestUnaryCall(t *testing.T) {
	c, got := run(Options{}, unary("grpc-timeout", "1S", "grpc-encoding", "gzip"))
	diff(t, got, unaryWant)
	calls := c.Calls()
	if len(calls) != 1 {
		t.Fatalf("got %d calls, want 1", len(calls))
	}
	want := Call{
		Stream: 1, Method: sayHello, Service: "helloworld.Greeter", Name: "SayHello",
		Authority: "svc:50051", ContentType: "application/grpc", RequestEncoding: "gzip",
		RequestMessages: 1, ResponseMessages: 1, RequestBytes: 100, ResponseBytes: 40,
		HTTPStatus: 200, Status: 0, StatusName: "OK", ClientStatus: "OK",
		Timeout: time.Second, HasTimeout: true, Duration: 4 * time.Millisecond,
		Start: ref(1), End: ref(5), Ended: true,
	}
	if calls[0] != want {
		t.Errorf("call:\n got %+v\nwant %+v", calls[0], want)
	}
	if len(c.streams) != 0 {
		t.Errorf("%d streams still tracked after the call ended both ways", len(c.streams))
	}
	if a := c.Anomalies(); len(a) != 0 {
		t.Errorf("anomalies %v, want none", a)
	}
}

// TestMessageSplits feeds the same messages cut every way: at each byte,
// byte at a time, and several messages per delivery. The events are the
// same whatever the cuts (all pieces belong to one frame).
func TestMessageSplits(t *testing.T) {
	one := msg(false, 20)
	three := cat(msg(false, 3), msg(true, 0), msg(false, 7))
	tests := []struct {
		name   string
		pieces [][]byte
		want   []string
	}{
		{"whole", [][]byte{one}, []string{"f2 c2s message s1 len=20 " + sayHello}},
		{"byte at a time", bytewise(one), []string{"f2 c2s message s1 len=20 " + sayHello}},
		{"inside prefix", split(one, 1, 3, 4), []string{"f2 c2s message s1 len=20 " + sayHello}},
		{"at prefix end", split(one, 5), []string{"f2 c2s message s1 len=20 " + sayHello}},
		{"three in one", [][]byte{three}, []string{
			"f2 c2s message s1 len=3 " + sayHello,
			"f2 c2s message s1 len=0 compressed " + sayHello,
			"f2 c2s message s1 len=7 " + sayHello,
		}},
		{"three byte at a time", bytewise(three), []string{
			"f2 c2s message s1 len=3 " + sayHello,
			"f2 c2s message s1 len=0 compressed " + sayHello,
			"f2 c2s message s1 len=7 " + sayHello,
		}},
		{"three across cuts", split(three, 2, 9, 10, 14), []string{
			"f2 c2s message s1 len=3 " + sayHello,
			"f2 c2s message s1 len=0 compressed " + sayHello,
			"f2 c2s message s1 len=7 " + sayHello,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := append([]op{reqH(1, 1, sayHello)}, deliveries(2, event.C2S, 1, tt.pieces, true)...)
			_, got := run(Options{}, ops)
			diff(t, got, tt.want)
		})
	}
	// Every single cut point of three messages.
	for cut := 1; cut < len(three); cut++ {
		ops := append([]op{reqH(1, 1, sayHello)}, deliveries(2, event.C2S, 1, split(three, cut), true)...)
		_, got := run(Options{}, ops)
		if len(got) != 3 {
			t.Errorf("cut at %d: %d events, want 3: %q", cut, len(got), got)
		}
	}
}

// TestManyMessagesOneDelivery puts 500 messages in one DATA delivery.
func TestManyMessagesOneDelivery(t *testing.T) {
	var b []byte
	var want []string
	for i := range 500 {
		b = append(b, msg(i%3 == 0, i%17)...)
		w := "f2 s2c message s1 len=" + strconv.Itoa(i%17)
		if i%3 == 0 {
			w += " compressed"
		}
		want = append(want, w+" "+sayHello)
	}
	c, got := run(Options{}, []op{reqH(1, 1, sayHello), respH(2, 1), data(2, event.S2C, 1, b, false)})
	diff(t, got, want)
	if cl := c.Calls()[0]; cl.ResponseMessages != 500 || cl.Compressed != 167 {
		t.Errorf("response messages %d compressed %d, want 500 and 167", cl.ResponseMessages, cl.Compressed)
	}
}

// TestNoProperPrefixCompletes checks that no proper prefix of a message
// completes it, however it is delivered.
func TestNoProperPrefixCompletes(t *testing.T) {
	m := msg(true, 33)
	for n := 0; n < len(m); n++ {
		for _, pieces := range [][][]byte{{m[:n]}, bytewise(m[:n])} {
			_, got := run(Options{}, append([]op{reqH(1, 1, sayHello)}, deliveries(2, event.C2S, 1, pieces, false)...))
			if len(got) != 0 {
				t.Fatalf("prefix of %d bytes: events %q", n, got)
			}
		}
	}
}

func TestTrailersOnly(t *testing.T) {
	ops := []op{
		reqH(1, 3, "/pkg.Svc/Get"),
		data(2, event.C2S, 3, msg(false, 5), true),
		{kind: 'H', frame: 3, dir: event.S2C, stream: 3, end: true, h: hdrs(
			":status", "200", "content-type", "application/grpc",
			"grpc-status", "5", "grpc-message", "no%20such%20key%3A%20%E2%9C%93")},
	}
	c, got := run(Options{}, ops)
	diff(t, got, []string{
		"f2 c2s message s3 len=5 /pkg.Svc/Get",
		`f3 s2c status s3 status=5 NOT_FOUND "no such key: ✓" /pkg.Svc/Get`,
	})
	cl := c.Calls()[0]
	if !cl.TrailersOnly || cl.Status != 5 || cl.ClientStatus != "NOT_FOUND" || cl.StatusMessage != "no such key: ✓" || !cl.Ended {
		t.Errorf("call %+v", cl)
	}
}

// TestStatusWithoutGRPCStatus covers an HTTP error from a proxy and a
// response ending without trailers.
func TestStatusWithoutGRPCStatus(t *testing.T) {
	ops := []op{
		reqH(1, 1, sayHello),
		{kind: 'H', frame: 2, dir: event.S2C, stream: 1, end: true, h: hdrs(":status", "503", "content-type", "text/plain")},
		reqH(3, 3, sayHello),
		respH(4, 3),
		data(5, event.S2C, 3, msg(false, 1), true),
	}
	c, got := run(Options{}, ops)
	diff(t, got, []string{
		"f2 s2c status s1 status=-1 " + sayHello,
		"f5 s2c message s3 len=1 " + sayHello,
		"f5 s2c status s3 status=-1 " + sayHello,
	})
	calls := c.Calls()
	if calls[0].ClientStatus != "UNAVAILABLE" || calls[0].TrailersOnly || calls[1].ClientStatus != "INTERNAL" {
		t.Errorf("client statuses %q %q (trailers-only %v), want UNAVAILABLE, INTERNAL", calls[0].ClientStatus, calls[1].ClientStatus, calls[0].TrailersOnly)
	}
	if a := c.Anomalies(); a["missing_grpc_status"] != 2 {
		t.Errorf("anomalies %v", a)
	}
}

func TestResetMapping(t *testing.T) {
	tests := []struct {
		code string
		by   event.Dir
		want string
	}{
		{"CANCEL", event.C2S, "CANCELLED"},
		{"CANCEL", event.S2C, "CANCELLED"},
		{"REFUSED_STREAM", event.S2C, "UNAVAILABLE"},
		{"NO_ERROR", event.S2C, "INTERNAL"},
		{"PROTOCOL_ERROR", event.S2C, "INTERNAL"},
		{"INTERNAL_ERROR", event.S2C, "INTERNAL"},
		{"FLOW_CONTROL_ERROR", event.C2S, "INTERNAL"},
		{"SETTINGS_TIMEOUT", event.C2S, "INTERNAL"},
		{"STREAM_CLOSED", event.S2C, ""},
		{"FRAME_SIZE_ERROR", event.S2C, "INTERNAL"},
		{"COMPRESSION_ERROR", event.S2C, "INTERNAL"},
		{"CONNECT_ERROR", event.S2C, "INTERNAL"},
		{"ENHANCE_YOUR_CALM", event.S2C, "RESOURCE_EXHAUSTED"},
		{"INADEQUATE_SECURITY", event.S2C, "PERMISSION_DENIED"},
		{"HTTP_1_1_REQUIRED", event.S2C, "INTERNAL"},
		{"UNKNOWN_0x42", event.S2C, "UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.code+"/"+tt.by.String(), func(t *testing.T) {
			ops := []op{
				reqH(1, 1, sayHello, "grpc-timeout", "2m"),
				data(2, event.C2S, 1, msg(false, 10)[:8], false), // partial message
				{kind: 'R', frame: 9, dir: tt.by, stream: 1, code: errCodeNamed(tt.code)},
				data(10, event.S2C, 1, msg(false, 3), false), // in flight: ignored
			}
			c, got := run(Options{}, ops)
			diff(t, got, nil)
			cl := c.Calls()[0]
			by := "client"
			if tt.by == event.S2C {
				by = "server"
			}
			// The call's 2 ms deadline passed before the client's CANCEL:
			// that client saw DEADLINE_EXCEEDED.
			wantClient := tt.want
			if tt.code == "CANCEL" && tt.by == event.C2S {
				wantClient = "DEADLINE_EXCEEDED"
			}
			if !cl.Reset || cl.ResetBy != by || cl.ResetCode != tt.code || cl.ResetStatus != tt.want ||
				cl.ClientStatus != wantClient || cl.Status != -1 || !cl.Ended || cl.End != ref(9) ||
				cl.Duration != 8*time.Millisecond || !cl.OverTimeout || cl.LostMessages != 1 {
				t.Errorf("call %+v", cl)
			}
		})
	}
}

// TestCancelBeforeDeadline: a client CANCEL well before the call's
// deadline, or on a call without one, is CANCELLED for the client.
func TestCancelBeforeDeadline(t *testing.T) {
	for _, timeout := range []string{"100m", ""} {
		req := reqH(1, 1, sayHello)
		if timeout != "" {
			req = reqH(1, 1, sayHello, "grpc-timeout", timeout)
		}
		c, _ := run(Options{}, []op{req, {kind: 'R', frame: 9, dir: event.C2S, stream: 1, code: http2.ErrCodeCancel}})
		if cl := c.Calls()[0]; cl.ClientStatus != "CANCELLED" {
			t.Errorf("timeout %q: client status %s", timeout, cl.ClientStatus)
		}
	}
}

// TestResetAfterTrailers: an RST_STREAM after the status does not change
// the status the client saw.
func TestResetAfterTrailers(t *testing.T) {
	ops := append(unary()[:4], trailers(5, 1, "0"), op{kind: 'R', frame: 6, dir: event.S2C, stream: 1, code: http2.ErrCodeNo})
	ops[1].end = false // the client did not half-close: the stream stays
	c, _ := run(Options{}, ops)
	cl := c.Calls()[0]
	if !cl.Reset || cl.ResetCode != "NO_ERROR" || cl.ResetStatus != "" || cl.ClientStatus != "OK" || cl.End != ref(5) {
		t.Errorf("call %+v", cl)
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"1S", time.Second, true},
		{"100m", 100 * time.Millisecond, true},
		{"5H", 5 * time.Hour, true},
		{"3M", 3 * time.Minute, true},
		{"250u", 250 * time.Microsecond, true},
		{"99999999n", 99999999, true},
		{"0S", 0, true},
		{"99999999H", maxDuration, true}, // saturates as grpc-go does
		{"99999999M", 99999999 * time.Minute, true},
		{"123456789S", 0, false}, // 9 digits
		{"S", 0, false},
		{"", 0, false},
		{"10", 0, false},
		{"10s", 0, false},
		{"-1S", 0, false},
		{"+1S", 0, false},
		{"1.5S", 0, false},
		{" 1S", 0, false},
		{"1 S", 0, false},
	}
	for _, tt := range tests {
		d, ok := parseTimeout(tt.v)
		if d != tt.want || ok != tt.ok {
			t.Errorf("parseTimeout(%q) = %v, %v; want %v, %v", tt.v, d, ok, tt.want, tt.ok)
		}
	}
	c, _ := run(Options{}, []op{reqH(1, 1, sayHello, "grpc-timeout", "10s")})
	if cl := c.Calls()[0]; cl.HasTimeout || c.Anomalies()["bad_grpc_timeout"] != 1 {
		t.Errorf("bad timeout: call %+v anomalies %v", cl, c.Anomalies())
	}
}

func TestDecodeMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"a%20b", "a b"},
		{"%E2%9C%93", "✓"},
		{"100%", "100%"},
		{"%zz%4", "%zz%4"},
		{"%4a%4A", "JJ"},
		{"%FF", "\uFFFD"},
		{"%", "%"},
	}
	for _, tt := range tests {
		if got := decodeMessage(tt.in); got != tt.want {
			t.Errorf("decodeMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := make([]byte, 5000)
	for i := range long {
		long[i] = 'x'
	}
	if got := decodeMessage(string(long)); len(got) != maxStatusMessage {
		t.Errorf("long message kept %d bytes, want %d", len(got), maxStatusMessage)
	}
}

func TestContentType(t *testing.T) {
	for v, want := range map[string]bool{
		"application/grpc":               true,
		"application/grpc+proto":         true,
		"application/grpc+json":          true,
		"application/grpc;charset=utf-8": true,
		"Application/GRPC":               true,
		"application/grpc-web":           false,
		"application/grpc-web+proto":     false,
		"application/grpcx":              false,
		"application/json":               false,
		"application/grp":                false,
		"":                               false,
	} {
		if got := isGRPCContentType(v); got != want {
			t.Errorf("isGRPCContentType(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestCodeString(t *testing.T) {
	if Canceled.String() != "CANCELLED" || Unauthenticated.String() != "UNAUTHENTICATED" ||
		DeadlineExceeded.String() != "DEADLINE_EXCEEDED" || Code(17).String() != "Code(17)" || Code(-1).String() != "Code(-1)" {
		t.Error("code names")
	}
	for c := OK; c <= Unauthenticated; c++ {
		if c.String() == "" || c.String()[0] == 'C' && c != Canceled {
			t.Errorf("code %d has name %q", c, c.String())
		}
	}
}

func TestNonGRPCStreamIgnored(t *testing.T) {
	ops := []op{
		{kind: 'H', frame: 1, dir: event.C2S, stream: 1, end: true, h: hdrs(":method", "GET", ":path", "/index.html", ":authority", "x")},
		{kind: 'H', frame: 2, dir: event.S2C, stream: 1, h: hdrs(":status", "200", "content-type", "application/octet-stream")},
		data(3, event.S2C, 1, msg(false, 10), true), // looks like gRPC, but the headers say not
	}
	c, got := run(Options{}, ops)
	diff(t, got, nil)
	if len(c.Calls()) != 0 || len(c.streams) != 0 {
		t.Errorf("calls %v, %d streams", c.Calls(), len(c.streams))
	}
	// AssumeGRPC forces it: the stream start was seen, so messages are
	// parsed from the first byte.
	ops[1].h = hdrs(":status", "200")
	c, got = run(Options{AssumeGRPC: true}, ops)
	diff(t, got, []string{"f3 s2c message s1 len=10 /index.html", "f3 s2c status s1 status=-1 /index.html"})
}

// TestResponseSaysGRPC: a request whose HEADERS lack the content-type is
// still gRPC when the response says so.
func TestResponseSaysGRPC(t *testing.T) {
	ops := []op{
		{kind: 'H', frame: 1, dir: event.C2S, stream: 1, h: hdrs(":method", "POST", ":path", sayHello)},
		data(2, event.C2S, 1, msg(false, 4), true),
		respH(3, 1),
		data(4, event.S2C, 1, msg(false, 6), false),
		trailers(5, 1, "4", "grpc-message", "deadline"),
	}
	c, got := run(Options{}, ops)
	diff(t, got, []string{
		"f4 s2c message s1 len=6 " + sayHello,
		`f5 s2c status s1 status=4 DEADLINE_EXCEEDED "deadline" ` + sayHello,
	})
	if cl := c.Calls()[0]; cl.Heuristic || cl.ContentType != "application/grpc" || cl.RequestMessages != 0 {
		t.Errorf("call %+v", cl)
	}
}

func TestMessageTooLarge(t *testing.T) {
	big := []byte{0, 0, 0x40, 0, 1} // 4 MiB + 1
	ops := []op{
		reqH(1, 1, sayHello),
		data(2, event.C2S, 1, big, false),
		data(3, event.C2S, 1, msg(false, 2), true), // not parsed any more
		respH(4, 1),
		data(5, event.S2C, 1, msg(false, 2), false), // the other direction still is
		trailers(6, 1, "8"),
	}
	c, got := run(Options{}, ops)
	diff(t, got, []string{
		"f5 s2c message s1 len=2 " + sayHello,
		"f6 s2c status s1 status=8 RESOURCE_EXHAUSTED " + sayHello,
	})
	if c.Anomalies()["message_too_large"] != 1 {
		t.Errorf("anomalies %v", c.Anomalies())
	}
	// Exactly the limit is fine.
	ops[1].b = []byte{0, 0, 0, 0, 9}
	ops[2].b = make([]byte, 9)
	_, got = run(Options{MaxMessage: 9}, ops[:3])
	diff(t, got, []string{"f3 c2s message s1 len=9 " + sayHello})
}

func TestBadFlag(t *testing.T) {
	ops := []op{reqH(1, 1, sayHello), data(2, event.C2S, 1, cat(msg(false, 1), []byte{2, 0, 0, 0, 1, 'x'}, msg(false, 1)), true)}
	c, got := run(Options{}, ops)
	diff(t, got, []string{"f2 c2s message s1 len=1 " + sayHello})
	if c.Anomalies()["bad_message_flag"] != 1 {
		t.Errorf("anomalies %v", c.Anomalies())
	}
}

// TestGapMidMessage: a gap loses the partial message; the stream resumes
// on the next delivery that chains to its end, and a stream that was
// between messages resumes the same way.
func TestGapMidMessage(t *testing.T) {
	m := msg(false, 50)
	ops := []op{
		reqH(1, 1, sayHello),
		reqH(1, 3, "/pkg.Svc/Other"),
		data(2, event.C2S, 1, m[:20], false),
		data(2, event.C2S, 3, msg(false, 2), false),
		{kind: 'G', frame: 3, dir: event.C2S, n: 1000},
		data(4, event.C2S, 1, m[30:], false),           // the rest of the lost message: a bad prefix, skipped
		data(5, event.C2S, 1, msg(false, 7), false),    // resynchronised
		data(5, event.C2S, 1, msg(false, 8), false),    // in sync
		data(6, event.C2S, 3, msg(true, 4)[:3], false), // probing across deliveries
		data(7, event.C2S, 3, msg(true, 4)[3:], false),
		data(8, event.C2S, 3, msg(false, 1), true),
	}
	c, got := run(Options{}, ops)
	diff(t, got, []string{
		"f2 c2s message s3 len=2 /pkg.Svc/Other",
		"f5 c2s message s1 len=7 " + sayHello,
		"f5 c2s message s1 len=8 " + sayHello,
		// Stream 3 confirms on the delivery that completes its message.
		"f7 c2s message s3 len=4 compressed /pkg.Svc/Other",
		"f8 c2s message s3 len=1 /pkg.Svc/Other",
	})
	if c.Anomalies()["message_lost"] != 1 {
		t.Errorf("anomalies %v", c.Anomalies())
	}
	calls := c.Calls()
	if calls[0].LostMessages != 1 || calls[0].Gaps != 1 || calls[0].RequestMessages != 2 {
		t.Errorf("stream 1: %+v", calls[0])
	}
	if calls[1].LostMessages != 0 || calls[1].RequestMessages != 3 || calls[1].Compressed != 1 || calls[1].RequestBytes != 7 {
		t.Errorf("stream 3: %+v", calls[1])
	}
}

// Real gRPC DATA payloads from grpc-go-pro/Server Streaming.pcapng (frames
// 17 and 23; tshark -d tcp.port==50051,http2 -e http2.data.data).
var (
	realReq   = mustHex("00000000090a07436c656d656e74")
	realResp0 = mustHex("00000000190a1748656c6c6f20436c656d656e742c206e756d6265722030")
	realResp1 = mustHex("00000000190a1748656c6c6f20436c656d656e742c206e756d6265722031")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestHeuristic feeds streams whose HEADERS were not captured.
func TestHeuristic(t *testing.T) {
	json := []byte(`{"name":"Clement","n":[1,2,3]}`)
	html := []byte("<!DOCTYPE html><html><body>hi</body></html>")
	tests := []struct {
		name string
		ops  []op
		want []string
		grpc bool
	}{
		{"real gRPC", []op{
			data(17, event.C2S, 1, realReq, true),
			data(23, event.S2C, 1, realResp0, false),
			data(23, event.S2C, 1, realResp1, false),
			trailers(24, 1, "0"),
		}, []string{
			"f17 c2s message s1 len=9",
			"f23 s2c message s1 len=25",
			"f23 s2c message s1 len=25",
			"f24 s2c status s1 status=0 OK",
		}, true},
		{"real gRPC, two messages in one delivery", []op{
			data(23, event.S2C, 1, cat(realResp0, realResp1), false),
		}, []string{"f23 s2c message s1 len=25", "f23 s2c message s1 len=25"}, true},
		{"real gRPC split across segments", []op{
			data(22, event.S2C, 1, realResp0[:12], false),
			data(23, event.S2C, 1, cat(realResp0[12:], realResp1), false),
		}, []string{"f23 s2c message s1 len=25", "f23 s2c message s1 len=25"}, true},
		{"message completed before the decision", []op{
			data(22, event.S2C, 1, cat(realResp0, realResp1[:12]), false),
			data(23, event.S2C, 1, realResp1[12:], false),
		}, []string{"f23 s2c message s1 len=25"}, true}, // the first is counted, without an event
		{"grpc-status alone says gRPC", []op{
			data(2, event.S2C, 1, realResp0[:12], false), // undecided
			trailers(3, 1, "14", "grpc-message", "unavailable"),
		}, []string{`f3 s2c status s1 status=14 UNAVAILABLE "unavailable"`}, true},
		{"JSON", []op{data(2, event.S2C, 1, json, true)}, nil, false},
		{"HTML", []op{data(2, event.S2C, 1, html[:10], false), data(3, event.S2C, 1, html[10:], true)}, nil, false},
		{"JSON after a valid-looking request", []op{
			data(2, event.C2S, 1, []byte{0, 0, 0, 0, 3, 'a'}, false), // undecided: ends mid-message
			data(3, event.S2C, 1, json, true),
		}, nil, false},
		{"END_STREAM mid-message", []op{
			data(2, event.C2S, 1, []byte{0, 0, 0, 0, 30, 'a', 'b'}, true),
			data(3, event.S2C, 1, realResp0, false),
		}, nil, false},
		{"flag 2", []op{data(2, event.S2C, 1, []byte{2, 0, 0, 0, 1, 'x'}, false)}, nil, false},
		{"length too large", []op{data(2, event.S2C, 1, []byte{0, 0, 0x40, 0, 1, 'x'}, false)}, nil, false},
		{"binary body not chaining", []op{
			data(2, event.S2C, 1, cat([]byte{0, 0, 0, 0, 2, 9, 9}, []byte{0x89, 'P', 'N', 'G'}), false),
		}, nil, false},
		{"later stream unaffected by a rejected one", []op{
			data(2, event.S2C, 1, json, true),
			data(3, event.S2C, 3, realResp0, false),
		}, []string{"f3 s2c message s3 len=25"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := run(Options{}, tt.ops)
			diff(t, got, tt.want)
			calls := c.Calls()
			if tt.grpc != (len(calls) == 1) {
				t.Fatalf("calls %+v, want gRPC %v", calls, tt.grpc)
			}
			if tt.grpc && (!calls[0].MidStream || calls[0].Heuristic == (tt.name == "grpc-status alone says gRPC")) {
				t.Errorf("call %+v", calls[0])
			}
		})
	}
}

// TestHeuristicCounts: a message completed before the decision has no
// event but is counted.
func TestHeuristicCounts(t *testing.T) {
	c, got := run(Options{}, []op{
		data(22, event.S2C, 1, cat(realResp0, realResp1[:12]), false),
		data(23, event.S2C, 1, realResp1[12:], false),
		data(24, event.S2C, 1, cat(realResp0, realResp1), false),
	})
	diff(t, got, []string{"f23 s2c message s1 len=25", "f24 s2c message s1 len=25", "f24 s2c message s1 len=25"})
	if cl := c.Calls()[0]; cl.ResponseMessages != 4 || cl.ResponseBytes != 100 || !cl.Heuristic {
		t.Errorf("call %+v", cl)
	}
}

func TestAssumeGRPCMidStream(t *testing.T) {
	// A capture that starts inside a message: the first delivery fails,
	// the next one resynchronises.
	ops := []op{
		data(2, event.S2C, 1, []byte("tail of a message"), false),
		data(3, event.S2C, 1, realResp0, false),
	}
	_, got := run(Options{}, ops)
	diff(t, got, nil)
	c, got := run(Options{AssumeGRPC: true}, ops)
	diff(t, got, []string{"f3 s2c message s1 len=25"})
	if cl := c.Calls()[0]; !cl.Heuristic {
		t.Errorf("call %+v", cl)
	}
}

func TestFinish(t *testing.T) {
	ops := []op{
		reqH(1, 1, sayHello, "grpc-timeout", "1m"),
		data(2, event.C2S, 1, msg(false, 9)[:7], false),
		{kind: 'F', frame: 50},
	}
	c, _ := run(Options{}, ops)
	cl := c.Calls()[0]
	if cl.Ended || cl.End != ref(50) || cl.Duration != 49*time.Millisecond || !cl.OverTimeout || cl.LostMessages != 1 {
		t.Errorf("call %+v", cl)
	}
	if len(c.streams) != 0 || c.Anomalies()["truncated_message"] != 1 {
		t.Errorf("streams %d anomalies %v", len(c.streams), c.Anomalies())
	}
}

func TestLimits(t *testing.T) {
	var ops []op
	for id := uint32(1); id < 40; id += 2 {
		ops = append(ops, reqH(uint64(id), id, sayHello))
	}
	c, _ := run(Options{MaxStreams: 5, MaxCalls: 3}, ops)
	if len(c.Calls()) != 3 || len(c.streams) != 5 {
		t.Errorf("%d calls, %d streams", len(c.Calls()), len(c.streams))
	}
	a := c.Anomalies()
	if a["too_many_streams"] != 15 || a["calls_not_recorded"] != 2 {
		t.Errorf("anomalies %v", a)
	}
	// Frames for a recently closed stream do not reopen it.
	c, got := run(Options{}, append(unary(), data(9, event.S2C, 1, msg(false, 1), false)))
	diff(t, got, unaryWant)
	if len(c.streams) != 0 || len(c.Calls()) != 1 {
		t.Errorf("late DATA reopened the stream")
	}
}

func TestUndecodableHeaders(t *testing.T) {
	// HPACK state lost: content-type unknown, so DATA shape decides.
	ops := []op{
		{kind: 'H', frame: 1, dir: event.C2S, stream: 1, h: []event.Header{
			{Name: ":method", Value: "POST"}, {Name: ":path", Value: sayHello}, {Unknown: true, Index: 70}}},
		data(2, event.C2S, 1, msg(false, 3), true),
	}
	c, got := run(Options{}, ops)
	diff(t, got, []string{"f2 c2s message s1 len=3 " + sayHello})
	if cl := c.Calls()[0]; !cl.Heuristic || cl.MidStream || cl.Method != sayHello {
		t.Errorf("call %+v", cl)
	}
}

func TestCallsIsACopy(t *testing.T) {
	c, _ := run(Options{}, unary())
	a := c.Calls()
	a[0].Method = "x"
	if c.Calls()[0].Method != sayHello || !slices.Equal(c.Calls(), c.Calls()) {
		t.Error("Calls shares its records")
	}
}

// TestUndecodableTrailers: trailers whose HPACK block could not be decoded
// (h nil) end the call with an unknown status, not a missing one.
func TestUndecodableTrailers(t *testing.T) {
	ops := append(unary()[:4], op{kind: 'H', frame: 5, dir: event.S2C, stream: 1, end: true})
	c, got := run(Options{}, ops)
	diff(t, got, append(unaryWant[:2:2], "f5 s2c status s1 status=-1 "+sayHello))
	if cl := c.Calls()[0]; cl.ClientStatus != "" || cl.Status != -1 || !cl.Ended || len(c.Anomalies()) != 0 {
		t.Errorf("call %+v anomalies %v", cl, c.Anomalies())
	}
}

// errCodeNamed returns the HTTP/2 error code String names name
// ("CANCEL", "UNKNOWN_0x42").
func errCodeNamed(name string) http2.ErrCode {
	for c := range http2.ErrCode(256) {
		if c.String() == name {
			return c
		}
	}
	panic("no HTTP/2 error code named " + name)
}
