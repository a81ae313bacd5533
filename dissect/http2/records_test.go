package http2

import (
	"testing"

	"github.com/h2scope/h2scope/dissect/event"

	"github.com/h2scope/h2scope/internal/pack/packtest"
)

// FuzzRecordRoundTrip fills every field of stream records from the input
// and checks that a closed stream's record reads back exactly from its
// encoded form (also after a late frame reopened it).
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), []byte("GET /path\x00\x01"))
	f.Add([]byte("\x80\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"), []byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		packtest.RoundTrip[srec](t, a, b, a)
	})
}

// TestClosedStreamsEncoded checks that a connection keeps only its open
// streams' records in Go form: closed ones are encoded as they close, and
// a late frame on a closed stream (DATA after both END_STREAMs, counted on
// its record) is folded back into the encoded record.
func TestClosedStreamsEncoded(t *testing.T) {
	const n = 1000
	cli, srv := newWire(t, true), newWire(t, false)
	cli.settings()
	srv.settings()
	c := NewConn(1, nil, Options{})
	c.Data(event.C2S, cli.bytes(), utcRef(1))
	c.Data(event.S2C, srv.bytes(), utcRef(2))
	for i := range n {
		id := uint32(2*i + 1)
		cli, srv := newWire(t, false), newWire(t, false)
		cli.headers(id, false, ":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/svc/Call").data(id, true, 10)
		srv.headers(id, false, ":status", "200").data(id, false, 20).headers(id, true, "grpc-status", "0")
		c.Data(event.C2S, cli.bytes(), utcRef(uint64(3+2*i)))
		c.Data(event.S2C, srv.bytes(), utcRef(uint64(4+2*i)))
	}
	late := newWire(t, false).data(1, false, 5)
	c.Data(event.S2C, late.bytes(), utcRef(3+2*n))
	for i := range n {
		if !c.recs.Frozen(i) {
			t.Fatalf("record %d of a closed stream kept in Go form", i)
		}
	}
	st := c.Streams()
	if len(st) != n {
		t.Fatalf("%d streams, want %d", len(st), n)
	}
	if got := st[0].DataBytes.S2C; got != 25 {
		t.Errorf("stream 1: %d bytes from the server, want 25 (20 + 5 late)", got)
	}
	if s := st[n-1]; s.Path != "/svc/Call" || s.Status != 200 || s.GRPCStatus == nil || *s.GRPCStatus != 0 ||
		s.ServerEnd == nil || s.ServerEnd.Frame != 2+2*n || s.DataBytes.C2S != 10 {
		t.Errorf("last stream read back as %+v", s)
	}
}

// utcRef is ref in UTC, as the capture readers make timestamps (records
// with other locations are kept in Go form).
func utcRef(n uint64) event.Ref {
	r := ref(n)
	r.TS = r.TS.UTC()
	return r
}
