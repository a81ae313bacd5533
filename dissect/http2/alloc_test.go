package http2

import (
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	xhttp2 "golang.org/x/net/http2"
)

type nopObserver struct{}

func (nopObserver) Headers(event.Dir, uint32, []event.Header, bool, event.Ref) {}
func (nopObserver) Data(event.Dir, uint32, []byte, bool, event.Ref)            {}
func (nopObserver) Reset(event.Dir, uint32, ErrCode, event.Ref)                {}
func (nopObserver) Gap(event.Dir, int, event.Ref)                              {}

// dataConn returns a Conn with stream 1 open and a run of n DATA frames of
// size bytes each (every other one padded), for the server to send.
func dataConn(t testing.TB, n, size int) (*Conn, []byte, *int) {
	cli, srv := newWire(t, true), newWire(t, false)
	cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1<<31 - 1})
	cli.windowUpdate(0, 1<<31-1-65535)
	cli.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/")
	srv.settings()
	srv.headers(1, false, ":status", "200")
	var events int
	c := NewConn(1, event.SinkFunc(func(e *event.Event) { events++ }), Options{Observer: nopObserver{}})
	c.Data(event.C2S, cli.bytes(), ref(1))
	c.Data(event.S2C, srv.bytes(), ref(2))
	run := newWire(t, false)
	payload := make([]byte, size)
	for i := range n {
		if i%2 == 0 {
			run.check(run.fr.WriteData(1, false, payload))
		} else {
			run.check(run.fr.WriteDataPadded(1, false, payload[:size-8], make([]byte, 7)))
		}
	}
	return c, run.bytes(), &events
}

// TestDataAllocs proves that the DATA path allocates nothing: a run of
// DATA frames, whole or split across packets, with windows tracked and an
// observer and a sink attached.
func TestDataAllocs(t *testing.T) {
	c, run, events := dataConn(t, 64, 1000)
	at := ref(3)
	n := testing.AllocsPerRun(50, func() { c.Data(event.S2C, run, at) })
	if n != 0 {
		t.Errorf("whole frames: %v allocations per run", n)
	}
	n = testing.AllocsPerRun(50, func() {
		for i := 0; i < len(run); i += 700 {
			c.Data(event.S2C, run[i:min(i+700, len(run))], at)
		}
	})
	if n != 0 {
		t.Errorf("split frames: %v allocations per run", n)
	}
	if *events < 64*100 {
		t.Errorf("%d events", *events)
	}
	if len(c.Summary().Anomalies) != 0 {
		t.Errorf("anomalies %v", c.Summary().Anomalies)
	}
}
