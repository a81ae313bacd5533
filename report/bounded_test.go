package report

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// TestSpillRunsMerge: records added far out of id order, with a buffer
// that holds a few of them, are written in several sorted runs and read
// back merged, every one once, in id order, on every pass.
func TestSpillRunsMerge(t *testing.T) {
	defer func(n int) { spillBuffer = n }(spillBuffer)
	spillBuffer = 100
	dir := t.TempDir()
	s, err := newSpill(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	const n = 1000
	for i := range n {
		id := event.ConnID((i * 7919) % n) // a permutation of 0..n-1
		// A record starts with its id, as encodeSpill writes it.
		s.add(id, fmt.Appendf(binary.AppendUvarint(nil, uint64(id)), "%c%d", byte(id%100), id))
	}
	for pass := range 2 {
		var got []event.ConnID
		err := s.each(func(id event.ConnID, b []byte) error {
			if want := fmt.Appendf(binary.AppendUvarint(nil, uint64(id)), "%c%d", byte(id%100), id); !bytes.Equal(b, want) {
				t.Fatalf("record %d: %q, want %q", id, b, want)
			}
			got = append(got, id)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n || !slices.IsSorted(got) || slices.Compact(got)[n-1] != n-1 {
			t.Fatalf("pass %d: %d records, sorted %v", pass, len(got), slices.IsSorted(got))
		}
	}
	if len(s.runs) < 2 {
		t.Errorf("%d runs; the test wants several", len(s.runs))
	}
	// The file has no name from the start.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spill directory holds %v", ents)
	}
}

// synthConn is a short HTTP/1.1 connection i from one client to one
// server, as analyze.Stream hands it over.
func synthConn(i int) *analyze.Conn {
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	ref := func(frame int, us int) *event.Ref {
		return &event.Ref{Frame: uint64(10*i + frame), TS: t0.Add(time.Duration(us) * time.Microsecond)}
	}
	c := &analyze.Conn{
		TCP: &tcp.Summary{ID: event.ConnID(i), Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), uint16(1024+i%60000)),
			Server: netip.MustParseAddrPort("10.0.0.2:80"), Proto: "http1", FirstFrame: uint64(10*i + 1), LastFrame: uint64(10*i + 9),
			FirstTS: t0, LastTS: t0.Add(900 * time.Microsecond), DurationMS: 0.9, SYNs: 1, SYNACKs: 1,
			ConnState: "SF", History: "ShADadFf", Close: tcp.CloseFINServer},
		SYNs: []event.Ref{*ref(1, 0)}, SYNACKs: []event.Ref{*ref(2, 10)},
		Records: &analyze.Records{Exchanges: []analyze.Exchange{{Proto: event.ProtoHTTP1, Seq: 1, Method: "GET", Path: "/x",
			Status: 200, Request: ref(4, 100), ResponseEnd: ref(6, 500)}}},
	}
	c.FIN[event.S2C] = ref(8, 800)
	return c
}

// TestNamedConnectionsCapped: a finding naming 300 connections puts the
// first DefaultPerFinding of them (and those its evidence cites) in the
// report, with their timelines, and counts the rest; --connections all
// holds all 300 and none holds none; the capture still counts 300.
func TestNamedConnectionsCapped(t *testing.T) {
	const n = 300
	in := &analyze.Input{Stats: dissect.Stats{Packets: 9 * n}}
	var ids []event.ConnID
	for i := range n {
		in.Conns = append(in.Conns, synthConn(i))
		ids = append(ids, event.ConnID(i))
	}
	res := analyze.Result{Findings: []analyze.Finding{{Kind: analyze.KindReconnectChurn, Severity: analyze.Warning,
		Summary: "churn", Connections: ids, Metrics: map[string]any{},
		Evidence: []analyze.Evidence{{Frame: 2501, Conn: 250, What: "a late one"}}}}}
	for _, sel := range []string{ConnsNamed, ConnsAll, ConnsNone} {
		b := NewBuilder(Redaction{})
		b.Connections = sel
		b.SpillDir = t.TempDir()
		for _, c := range in.Conns {
			b.Add(c)
		}
		for _, c := range in.Conns {
			b.Done(c)
		}
		r := b.Report([]string{"synth.pcap"}, &analyze.Input{Stats: in.Stats}, res)
		var out bytes.Buffer
		if err := r.WriteJSON(&out); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Included string `json:"connections_included"`
			Captures []struct {
				Connections int `json:"connections"`
			} `json:"captures"`
			Connections []struct {
				ID event.ConnID `json:"id"`
			} `json:"connections"`
			Findings []struct {
				Connections []event.ConnID `json:"connections"`
				Omitted     int            `json:"connections_omitted"`
			} `json:"findings"`
			Timelines []struct {
				Conn   event.ConnID      `json:"conn"`
				Events []json.RawMessage `json:"events"`
			} `json:"timelines"`
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		var want []event.ConnID
		omitted := 0
		// The finding lists the connections the report holds.
		switch sel {
		case ConnsNamed:
			want = append(slices.Clone(ids[:DefaultPerFinding]), 250)
			omitted = n - DefaultPerFinding - 1
		case ConnsAll:
			want = ids
		case ConnsNone:
			want, omitted = []event.ConnID{}, n
		}
		var conns, tls []event.ConnID
		for _, c := range got.Connections {
			conns = append(conns, c.ID)
		}
		for _, tl := range got.Timelines {
			tls = append(tls, tl.Conn)
			if len(tl.Events) != 5 { // SYN, SYN-ACK, request, response, FIN
				t.Errorf("%s: timeline %d has %d events", sel, tl.Conn, len(tl.Events))
			}
		}
		if got.Included != sel || got.Captures[0].Connections != n || !slices.Equal(conns, want) || !slices.Equal(tls, want) ||
			got.Findings[0].Omitted != omitted || !slices.Equal(got.Findings[0].Connections, want) {
			t.Errorf("%s: included %q, capture counts %d, connections %v, timelines %v, omitted %d; want %v, %d omitted",
				sel, got.Included, got.Captures[0].Connections, conns, tls, got.Findings[0].Omitted, want, omitted)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(b.SpillDir); len(ents) != 0 {
			t.Errorf("%s: the spill directory holds %v", sel, ents)
		}
		// Once the Builder is closed, the report cannot read its
		// connections back: an error, not a short report.
		if sel == ConnsAll {
			if err := r.WriteJSON(&bytes.Buffer{}); err == nil {
				t.Errorf("%s: WriteJSON after Close: no error", sel)
			}
		}
	}
}

// liveHeap returns the bytes of live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// builderHeap adds n connections to a Builder (Add when the application
// part ends, Done when the connection finishes, a few hundred
// connections later) and returns the live heap growth with every
// connection finished, before Report.
func builderHeap(t *testing.T, n int) uint64 {
	b := NewBuilder(Redaction{})
	b.SpillDir = t.TempDir()
	defer b.Close()
	before := liveHeap()
	const open = 500 // connections between Add and Done
	var live [open]*analyze.Conn
	for i := range n + open {
		if j := i - open; j >= 0 {
			b.Done(live[j%open]) // the Conn Add got, carrying its SinkTag
		}
		if i < n {
			live[i%open] = synthConn(i)
			b.Add(live[i%open])
		}
	}
	after := liveHeap()
	runtime.KeepAlive(b)
	if open := len(b.pending) - len(b.freeSlots); b.folds.conns != n || open != 0 {
		t.Fatalf("%d connections finished, %d pending", b.folds.conns, open)
	}
	return after - min(after, before)
}

// TestBuilderMemoryBounded: what a Builder keeps in memory does not grow
// with the connections finished (they are in the spill file): the live
// heap after 4N connections is within a small constant of that after N.
func TestBuilderMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 250,000 connections")
	}
	const n = 50_000
	small, large := builderHeap(t, n), builderHeap(t, 4*n)
	t.Logf("live heap growth: %d connections %.1f MB, %d connections %.1f MB", n, float64(small)/1e6, 4*n, float64(large)/1e6)
	// The spill's write buffer (spillBuffer) and the pool counts are the
	// constants; one byte more per connection would be 150 KB.
	if large > small+uint64(spillBuffer)/2+1<<20 || large > uint64(2*spillBuffer)+4<<20 {
		t.Errorf("live heap grows with the connections: %d after %d, %d after %d", small, n, large, 4*n)
	}
}

// TestDecodedRecordsRender: the records a Builder's report reads back
// from the spill file's JSON (decodeConnRecord) give the renderers what
// the records themselves give, on every committed capture: the TCP
// summary, the labels, the gRPC status counts.
func TestDecodedRecordsRender(t *testing.T) {
	caps, err := filepath.Glob("../testdata/pcaps/*.pcapng")
	if err != nil || len(caps) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	for _, f := range caps {
		_, in, err := analyze.Run(context.Background(), []string{f}, dissect.Options{}, analyze.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range in.Conns {
			rec := NewConnRecord(c.TCP, c.App)
			var b bytes.Buffer
			if err := newJSONEncoder(&b).Encode(&rec); err != nil {
				t.Fatal(err)
			}
			got, err := decodeConnRecord(b.Bytes())
			if err != nil {
				t.Fatalf("%s: connection %d: %v", f, c.ID(), err)
			}
			if !reflect.DeepEqual(got.Summary, rec.Summary) || !reflect.DeepEqual(got.GRPC, rec.GRPC) ||
				got.protoLabel() != rec.protoLabel() || got.clientLabel() != rec.clientLabel() ||
				newHTMLConnRow(&got) != newHTMLConnRow(&rec) || connFailed(&got, nil) != connFailed(&rec, nil) {
				t.Errorf("%s: connection %d decodes as\n%+v\nwant\n%+v", f, c.ID(), got, rec)
			}
		}
	}
}

// TestNamedConnectionsTotalCap: many findings, each naming many
// connections, share the cap on the report's connections: evidence
// first, then each finding's first, second, ... connection in turn.
func TestNamedConnectionsTotalCap(t *testing.T) {
	var fs []Finding
	for i := range 50 {
		var f Finding
		for j := range 300 {
			f.Connections = append(f.Connections, event.ConnID(i*1000+j))
		}
		f.Evidence = []analyze.Evidence{{Conn: event.ConnID(i*1000 + 299)}}
		fs = append(fs, f)
	}
	in := namedConns(fs, 0, 0)
	if len(in) != DefaultMaxConnections {
		t.Fatalf("%d connections, want %d", len(in), DefaultMaxConnections)
	}
	for i := range 50 {
		// 50 evidence, then 39 rounds of 50, then 0..49 of round 39... :
		// (2000-50)/50 = 39 connections of each finding.
		for j := range 300 {
			id := event.ConnID(i*1000 + j)
			if want := j < 39 || j == 299; in[id] != want {
				t.Fatalf("connection %d of finding %d: in the report %v", j, i, in[id])
			}
		}
	}
	if in := namedConns(fs[:2], 0, 0); len(in) != 2*DefaultPerFinding+2 {
		t.Errorf("two findings: %d connections, want %d", len(in), 2*DefaultPerFinding+2)
	}
}
