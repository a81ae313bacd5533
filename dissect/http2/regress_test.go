package http2

import (
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	xhttp2 "golang.org/x/net/http2"
)

// TestRegressionWindowsOpenedOutOfStep: a stream opened by the client
// while the server's direction was still looking for a frame boundary got
// known windows, though the server's DATA on it had been skipped; its
// windows must stay unknown.
func TestRegressionWindowsOpenedOutOfStep(t *testing.T) {
	cli := newWire(t, false).settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1000})
	cli.headers(3, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/")
	srv := newWire(t, false)
	srv.data(3, false, 300) // cut: the capture holds its last 50 bytes
	for range 4 {
		srv.data(3, false, 100)
	}
	tail := srv.bytes()[srv.starts[1]-50:]
	_, r := run(t, Options{MidConnection: true}, []chunk{
		{dir: event.C2S, b: cli.bytes(), ref: ref(1)},
		{dir: event.S2C, b: tail, ref: ref(2)},
	})
	for _, e := range r.evs {
		if strings.Contains(e, "sw=") && !strings.Contains(e, "sw=->-") {
			t.Errorf("window known: %s", e)
		}
	}
	if len(r.evs) != 6 {
		t.Errorf("events %v", r.evs)
	}
}

// TestRegressionZeroPadding: runs of zero bytes (padding) read as empty
// DATA frames, which resynchronisation took for frame boundaries.
func TestRegressionZeroPadding(t *testing.T) {
	w := newWire(t, false)
	w.mark()
	w.check(w.fr.WriteDataPadded(1, false, []byte("abc"), make([]byte, 200)))
	for range 4 {
		w.headers(1, false, ":status", "200")
	}
	for cut := 10; cut < 200; cut += 17 {
		_, r := run(t, Options{MidConnection: true}, []chunk{{dir: event.S2C, b: w.bytes()[cut:], ref: ref(1)}})
		if len(r.evs) != 4 || !strings.Contains(r.evs[0], "HEADERS") {
			t.Errorf("cut %d: %v", cut, r.evs)
		}
	}
}

// TestRegressionSettingsPayloadChain: inside a SETTINGS payload, bytes
// read as a 4-byte DATA frame ending exactly where the next real frame
// starts; the two chains converge, and the real one, which starts the
// packet, must win (seen on sv/dns-over-http2-post mid-connection).
func TestRegressionSettingsPayloadChain(t *testing.T) {
	w := newWire(t, false)
	// Payload bytes 5-13 read 00 00 04 00 00 00 00 00 05: DATA, length 4,
	// stream 5, whose end is the SETTINGS frame's end.
	w.settings(xhttp2.Setting{ID: 3, Val: 0x100}, xhttp2.Setting{ID: 4, Val: 0}, xhttp2.Setting{ID: 5, Val: 16384})
	w.windowUpdate(0, 1<<20)
	for range 4 {
		w.headers(1, false, ":status", "200", "x-pad", strings.Repeat("p", 20))
	}
	if fh, _ := ParseFrameHeader(w.bytes()[14:]); fh.Type != FrameData || fh.Length != 4 || fh.StreamID != 5 {
		t.Fatalf("crafted header is %v", fh)
	}
	chunks := split(event.S2C, w.bytes(), w.starts, 1)
	_, r := run(t, Options{MidConnection: true}, chunks)
	if len(r.evs) != 6 || !strings.HasPrefix(r.evs[0], "s2c @1 SETTINGS s=0 len=18") {
		t.Errorf("events %v", r.evs)
	}
	// Where packets start does not depend on how their bytes are split
	// into calls.
	_, r2 := run(t, Options{MidConnection: true}, bytewise(chunks))
	wantLines(t, "bytewise", r2.evs, r.evs)
}
