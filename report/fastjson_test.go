package report

import (
	"bytes"
	"context"
	"math"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// TestRecordJSONFast checks appendRecordJSON against encoding/json
// (through the report's encoder) on every connection of the project's
// and the corpus's captures, and on summaries made to hit its edges:
// byte-identical where it answers, declining where it cannot be.
func TestRecordJSONFast(t *testing.T) {
	var files []string
	for _, g := range []string{"../testdata/pcaps/*.pcap*", "../testdata/pcaps/*/*.pcap*", "../../shared/corpus/*/*.pcap*", "../../shared/corpus/*/*/*.pcap*"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	fast, slow, packed := 0, 0, 0
	check := func(name string, rec ConnRecord) {
		t.Helper()
		var want bytes.Buffer
		err := newJSONEncoder(&want).Encode(&rec)
		got, ok := appendRecordJSON(nil, &rec)
		if err != nil {
			if ok {
				t.Errorf("%s: encoding/json refuses connection %d (%v), the fast path wrote %s", name, rec.ID, err, got)
			}
			return
		}
		if !ok {
			slow++
			return
		}
		fast++
		w := bytes.TrimSuffix(want.Bytes(), []byte("\n"))
		if !bytes.Equal(got, w) {
			t.Errorf("%s: connection %d:\n got %s\nwant %s", name, rec.ID, got, w)
		}
		// Packed in a spill record, it reads back as the same JSON.
		var e enc
		if !packRecord(&e, &rec) {
			if rec.FirstTS.Location() == time.UTC && rec.LastTS.Location() == time.UTC {
				t.Errorf("%s: connection %d: not packed", name, rec.ID)
			}
			return
		}
		packed++
		h := headOf(&rec)
		var se enc
		encodeSpillHead(&se, &h, e.b)
		sr, err := decodeSpill(se.b)
		if err != nil {
			t.Fatalf("%s: connection %d: %v", name, rec.ID, err)
		}
		if got, err := sr.appendJSON(nil); err != nil || !bytes.Equal(got, w) {
			t.Errorf("%s: connection %d unpacked (%v):\n got %s\nwant %s", name, rec.ID, err, got, w)
		}
	}
	for _, f := range files {
		_, err := dissect.Run(context.Background(), []string{f}, dissect.Options{Dissect: true, OnConn: func(c *tcp.Conn, app *dissect.App) {
			s := c.Summary
			check(f, NewConnRecord(&s, app))
			check(f, NewConnRecord(&s, nil)) // the bare TCP record of every connection
		}})
		if err != nil {
			continue // a corrupt test capture: its connections were checked
		}
	}
	// Edges: float formats, null pointers, odd years, strings to escape.
	one, zero, rtt, zeroRTT, minus := 3, 0, 12.625, 0.0, -1
	for _, s := range []tcp.Summary{
		{DurationMS: 1e-7}, {DurationMS: 2e21}, {DurationMS: 123456.789012}, {DurationMS: math.SmallestNonzeroFloat64},
		{FirstTS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, {History: "S\x1b"}, {ConnState: `a"b`},
		{WindowScale: tcp.WindowScale{C2S: &one}}, {Proto: "http2", ClientGuessed: true},
		// Packed numbers: a last frame below the first, wrapping
		// around, negative counts, a zero RTT and window scale.
		{FirstFrame: 10, LastFrame: 3, Retransmissions: -2, KeepAlives: math.MinInt, SYNACKs: math.MaxInt,
			HandshakeRTTMS: &zeroRTT, WindowScale: tcp.WindowScale{S2C: &minus}},
		{FirstFrame: math.MaxUint64, LastFrame: 0, MissedBytes: math.MaxUint64, Packets: event.Pair{S2C: 1}},
		{WindowScale: tcp.WindowScale{C2S: &zero, S2C: &one}, HandshakeRTTMS: &rtt, DurationMS: 0.1 + 0.2, SYNs: 2, SYNACKs: 1,
			Retransmissions: 1, KeepAlives: 12, MissedBytes: 1 << 40, StreamBytes: event.Pair{C2S: 5, S2C: 1 << 33},
			FirstTS: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC), LastTS: time.Date(2026, 5, 6, 7, 8, 10, 0, time.UTC),
			FirstFrame: 1, LastFrame: 99, ConnState: "SF", History: "ShADadFf", Close: tcp.CloseFINClient},
	} {
		s.Client, s.Server = netip.MustParseAddrPort("[2001:db8::1%eth0]:443"), netip.MustParseAddrPort("10.0.0.1:80")
		check("edge", NewConnRecord(&s, nil))
	}
	// HTTP/1 summaries with every field set, and with strings or
	// anomalies the fast path leaves to encoding/json.
	for _, h := range []http1.Summary{
		{Requests: 3, Responses: 4, Interim: 1, Unanswered: 1, LostRequests: 2, LostResponses: 5, MaxPipelined: 2, KeepAlive: true,
			CloseRequestedBy: "server", CloseRequestedFrame: 77, KeepAliveTimeout: 5, KeepAliveMax: 100, Upgrade: "h2c", UpgradeFrame: 9},
		{Requests: -1, MaxPipelined: math.MaxInt, KeepAliveMax: math.MinInt, CloseRequestedBy: "client", UpgradeFrame: math.MaxUint64},
		{}, {Upgrade: `web\socket`}, {CloseRequestedBy: "cliént"}, {Anomalies: map[string]int{"bare_lf": 2}},
	} {
		s := tcp.Summary{Client: netip.MustParseAddrPort("10.0.0.2:5000"), Server: netip.MustParseAddrPort("10.0.0.1:80"), Proto: "http1"}
		check("http1 edge", NewConnRecord(&s, &dissect.App{HTTP1: &h}))
	}
	if fast == 0 {
		t.Fatal("the fast path never answered")
	}
	if packed == 0 {
		t.Fatal("no record was packed")
	}
	t.Logf("%d records written by the fast path (%d packed), %d by encoding/json", fast, packed, slow)
}
