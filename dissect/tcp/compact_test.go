package tcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
)

// captures returns the project's test captures and those of the shared
// corpus, when it is there.
func captures(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, g := range []string{"../../testdata/pcaps/*.pcap*", "../../../shared/corpus/*/*.pcap*", "../../../shared/corpus/*/*/*.pcap*"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if _, err := os.Stat("../../../shared/corpus"); err != nil {
		t.Log("../shared/corpus is absent: testing the project's captures only")
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Skip("no captures")
	}
	return files
}

// logger is a StreamHandler that logs what it is told, for comparing two
// runs.
type logger struct {
	id  event.ConnID
	log *[]string
}

func (l logger) Data(d event.Dir, b []byte, at event.Ref) {
	*l.log = append(*l.log, fmt.Sprintf("%d %s data %d %x @%d %v", l.id, d, len(b), Fingerprint(b), at.Frame, at.TS))
}
func (l logger) Gap(d event.Dir, n int, at event.Ref) {
	*l.log = append(*l.log, fmt.Sprintf("%d %s gap %d @%d %v", l.id, d, n, at.Frame, at.TS))
}
func (l logger) Close(d event.Dir, reset bool, at event.Ref) {
	*l.log = append(*l.log, fmt.Sprintf("%d %s close %v @%d %v", l.id, d, reset, at.Frame, at.TS))
}

func summaryJSON(t *testing.T, c *Conn) string {
	b, err := json.Marshal(&c.Summary)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// trackFile runs a tracker over a capture and returns a log of every
// segment's connection, direction and analysis, every handler call and
// every finished connection's summary. With handlers false no handler is
// created (so connections that carried payload are compact too).
func trackFile(t *testing.T, file string, base Options, compact, handlers bool, verify func(*Conn, []byte)) []string {
	t.Helper()
	r, err := capture.Open([]string{file}, capture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var log []string
	opts := base
	opts.OnStreamsDone = func(c *Conn) { log = append(log, "streams done "+summaryJSON(t, c)) }
	opts.OnFinish = func(c *Conn) { log = append(log, "finish "+summaryJSON(t, c)) }
	if handlers {
		opts.NewHandler = func(c *Conn) StreamHandler { return logger{c.ID, &log} }
	}
	tr := NewTracker(opts)
	tr.noCompact, tr.verify = !compact, verify
	if verify != nil {
		tr.verifyReplay = func(c, r *Conn) { checkReplay(t, c, r) }
		tr.verifyShape = func(c, r *Conn) { checkShape(t, c, r) }
	}
	dec := layer.NewDecoder()
	var seg layer.Segment
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		var e *event.Error
		if errors.As(err, &e) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if res, _ := dec.Decode(p.LinkType, p.Data, p.OrigLen, &seg); res.Kind != layer.KindTCP {
			continue
		}
		seg.Ref = p.Ref
		c, dir, a := tr.Add(&seg)
		log = append(log, fmt.Sprintf("%d: conn %d %s %s", p.Ref.Frame, c.ID, dir, a))
	}
	tr.Flush()
	return log
}

// checkReplay fails t unless r, made by replay, has c's summary and
// tracking state.
func checkReplay(t *testing.T, c, r *Conn) {
	t.Helper()
	replays++
	if !reflect.DeepEqual(r.Summary, c.Summary) {
		t.Errorf("conn %d: replayed summary\n%+v\nwant\n%+v", c.ID, r.Summary, c.Summary)
	}
	got, want := *r.state, *c.state
	if string(got.hist.b) != string(want.hist.b) {
		t.Errorf("conn %d: replayed history %q, want %q", c.ID, got.hist.b, want.hist.b)
	}
	got.hist.b, want.hist.b = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conn %d: replayed state\n%+v\nwant\n%+v", c.ID, got, want)
	}
}

// replays counts the connections checkReplay checked.
var replays int

// checkShape fails t unless c, a half finished from the summary of an
// earlier one of its shape (see finishHalf), has the summary r, the
// half made again by replay and finalized, has.
func checkShape(t *testing.T, c, r *Conn) {
	t.Helper()
	shaped++
	if !reflect.DeepEqual(c.Summary, r.Summary) {
		t.Errorf("conn %d: summary of its shape\n%+v\nwant\n%+v", c.ID, c.Summary, r.Summary)
	}
}

// shaped counts the halves checkShape checked.
var shaped int

// TestCompactSameAsFull: on every test and corpus capture, a tracker that
// keeps waiting connections compact classifies every segment, calls the
// handlers and summarises every connection exactly as one that never
// compacts, with handlers and without; and each encoding decodes into the
// state it was taken from.
func TestCompactSameAsFull(t *testing.T) {
	compacted := 0
	verify := func(c *Conn, enc []byte) {
		compacted++
		want := *c.state
		want.handler = nil
		// A decoded state does not know its first segment (the
		// encoding is not replayed).
		want.first, want.firstSet = firstSeg{}, false
		if c.handler != nil {
			want.handler = discard{}
		}
		for d := range want.streams {
			if want.streams[d].closed {
				want.streams[d].recent, want.streams[d].nrecent = [recentSegs]recentSeg{}, 0
			}
		}
		for d := range want.streams {
			want.streams[d].pend = nil
		}
		got := state{}
		dec := decoder{b: enc, base: c.LastTS}
		dec.state(&got, c.streamsDone)
		got.lastRef.Frame, got.lastRef.TS = c.LastFrame, c.LastTS
		if len(dec.b) != 0 {
			t.Errorf("conn %d: %d bytes left after decoding", c.ID, len(dec.b))
		}
		if len(want.hist.b) == 0 {
			want.hist.b = nil
		}
		if len(got.hist.b) == 0 {
			got.hist.b = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("conn %d: decoded\n%+v\nwant\n%+v", c.ID, got, want)
		}
	}
	// Small bounds and timeouts make compact connections be evicted,
	// timed out and handed over.
	tight := Options{MaxConns: 3, IdleTimeout: 2 * time.Second, ClosedTimeout: time.Second, StreamGrace: 100 * time.Millisecond}
	for _, f := range captures(t) {
		for _, c := range []struct {
			opts     Options
			handlers bool
		}{{Options{}, true}, {Options{}, false}, {tight, true}, {tight, false}} {
			want := trackFile(t, f, c.opts, false, c.handlers, nil)
			got := trackFile(t, f, c.opts, true, c.handlers, verify)
			if d := logDiff(got, want); d != "" {
				t.Errorf("%s (%+v, handlers %v): %s", f, c.opts, c.handlers, d)
			}
		}
	}
	if compacted == 0 {
		t.Error("no connection was compacted")
	}
	t.Logf("%d compactions and %d replays checked", compacted, replays)
}

// TestHalfKeepsEverySummaryField: a half keeps the summary fields
// summaryCounts and demote list, and demotable refuses a connection whose
// other fields are set. A field added to Summary must be added to one or
// the other.
func TestHalfKeepsEverySummaryField(t *testing.T) {
	if n := reflect.TypeFor[Summary]().NumField(); n != 34 {
		t.Errorf("Summary has %d fields, 34 when half.go was written: see that demote or demotable handles the new ones, then update this count", n)
	}
}

// TestSYNFloodKeepsHalves: unanswered SYNs are kept as halves once
// maxYoung newer ones came, and a SYN-ACK for one of them brings it back,
// with its SYN counted; a SYN-ACK for a young one finds it whole.
func TestSYNFloodKeepsHalves(t *testing.T) {
	var done []*Conn
	tr := NewTracker(Options{OnFinish: func(c *Conn) { done = append(done, c) }})
	const n = 100 + maxYoung
	for i := range n {
		s := toSegment(seg{dir: c2s, flags: syn}, uint64(i+1))
		s.Src = netip.AddrPortFrom(s.Src.Addr(), uint16(20000+i))
		tr.Add(&s)
	}
	if tr.hlist.n != 100 || tr.open.n != maxYoung || tr.Active() != n {
		t.Fatalf("%d halves, %d open connections, %d active; want 100, %d, %d", tr.hlist.n, tr.open.n, tr.Active(), maxYoung, n)
	}
	s := toSegment(seg{dir: s2c, flags: synack, ack: 1}, n+1)
	s.Dst = netip.AddrPortFrom(s.Dst.Addr(), 20007)
	c, dir, _ := tr.Add(&s)
	if c.ID != 7 || dir != s2c || c.SYNs != 1 || c.SYNACKs != 1 || tr.hlist.n != 99 || tr.open.n != maxYoung+1 {
		t.Errorf("SYN-ACK: conn %d %s, %d SYNs, %d SYN-ACKs; %d halves, %d open", c.ID, dir, c.SYNs, c.SYNACKs, tr.hlist.n, tr.open.n)
	}
	s = toSegment(seg{dir: s2c, flags: synack, ack: 1}, n+2)
	s.Dst = netip.AddrPortFrom(s.Dst.Addr(), 20000+n-1)
	c, _, _ = tr.Add(&s)
	if c.ID != n-1 || c.SYNs != 1 || c.SYNACKs != 1 || tr.hlist.n != 99 || tr.open.n != maxYoung+1 {
		t.Errorf("SYN-ACK to a young one: conn %d, %d SYNs, %d SYN-ACKs; %d halves, %d open", c.ID, c.SYNs, c.SYNACKs, tr.hlist.n, tr.open.n)
	}
	tr.Flush()
	if len(done) != n || done[0].ID != 0 || done[n-1].ID != n-1 || done[3].History != "S" || done[7].History != "Sh" || done[n-1].History != "Sh" {
		t.Errorf("finished %d connections, want %d in id order with their history", len(done), n)
	}
}

// BenchmarkCompactSYN encodes and decodes the state of an unanswered SYN,
// as demoting it to a half and promoting it back do.
func BenchmarkCompactSYN(b *testing.B) {
	tr := NewTracker(Options{})
	s := toSegment(seg{dir: c2s, flags: syn}, 1)
	c, _, _ := tr.Add(&s)
	st := tr.newState()
	b.ReportAllocs()
	for b.Loop() {
		e := encoder{b: tr.buf[:0], base: c.LastTS, ok: true}
		e.state(c.state)
		tr.buf = e.b
		d := decoder{b: e.b, base: c.LastTS}
		d.state(st, false)
	}
}

// TestReplayRandom: connections that one segment made, of every flag
// combination a demotable connection can have, window scale and file,
// demoted and made again by replay, have the summary and state they had
// (checkReplay).
func TestReplayRandom(t *testing.T) {
	replays, shaped = 0, 0
	flags := []layer.Flags{syn, syn, synack, ack, 0, syn | 0x40 | 0x80, psh, layer.URG, fin, rst, syn | layer.FIN}
	for seed := range uint64(3) {
		r := rand.New(rand.NewPCG(seed, 1))
		tr := NewTracker(Options{MaxConns: 300, IdleTimeout: 30 * time.Second, ClosedTimeout: 5 * time.Second, StreamGrace: time.Second})
		tr.verifyReplay = func(c, rc *Conn) { checkReplay(t, c, rc) }
		tr.verifyShape = func(c, rc *Conn) { checkShape(t, c, rc) }
		ts := time.Unix(1e9, 0)
		for frame := uint64(1); frame < 20000; frame++ {
			s := randomSegment(r, frame, &ts, flags)
			tr.Add(&s)
		}
		tr.Flush()
	}
	if replays < 1000 || shaped < 100 {
		t.Errorf("%d replays and %d halves finished by shape checked, want many", replays, shaped)
	}
}

// randomSegment returns a segment between few endpoints (either way, on
// two client addresses, 600 ports and two server ports), of one of flags
// and random numbers, window scale, file and payload of up to two
// bytes, at most 20 ms after *ts, which it advances.
func randomSegment(r *rand.Rand, frame uint64, ts *time.Time, flags []layer.Flags) layer.Segment {
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(2)), 1}), uint16(1000+r.IntN(600)))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 9, 9}), uint16(80+r.IntN(2)))
	if r.IntN(4) == 0 {
		src, dst = dst, src
	}
	*ts = ts.Add(time.Duration(r.IntN(20)) * time.Millisecond)
	s := layer.Segment{
		Ref: event.Ref{Frame: frame, TS: *ts, File: r.IntN(2)},
		Src: src, Dst: dst, Flags: flags[r.IntN(len(flags))],
		Seq: uint32(r.IntN(4)) * 1000, Ack: uint32(r.IntN(4)) * 1000,
		Win: uint16(r.IntN(3)) * 100, WScale: int8(r.IntN(20)) - 2,
	}
	if r.IntN(8) == 0 {
		s.PayloadLen = r.IntN(3)
		s.Payload = make([]byte, s.PayloadLen)
	}
	return s
}

// TestEncodeTimeFar checks that a time is encoded exactly whenever its
// distance from the base fits a time.Duration, however far both are
// from the Unix epoch (a pcapng interface's timestamp offset can put
// them past 2^62 seconds), and refused only when it does not.
func TestEncodeTimeFar(t *testing.T) {
	far := time.Unix(1<<62+5, 7)
	tests := []struct {
		name   string
		base   time.Time
		t      time.Time
		wantOK bool
	}{
		{"near", time.Unix(1_700_000_000, 5), time.Unix(1_700_000_003, 1), true},
		{"far from the epoch, near each other", far, far.Add(3*time.Second + 9), true},
		{"far before the epoch", time.Unix(-1<<62-5, 0), time.Unix(-1<<62-2, 3), true},
		{"at the edge of a Duration", time.Unix(0, 0), time.Unix(0, 0).Add(math.MaxInt64 - 1), true},
		{"centuries apart", time.Unix(0, 0), time.Unix(1<<40, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := encoder{base: tt.base, ok: true}
			e.time(tt.t)
			if e.ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", e.ok, tt.wantOK)
			}
			if !tt.wantOK {
				return
			}
			d := decoder{b: e.b, base: tt.base}
			if got := d.time(); !got.Equal(tt.t) {
				t.Errorf("decoded %v, want %v", got, tt.t)
			}
		})
	}
}

// TestHalfShapeRandom: halves of one segment, of a few shapes but with
// sequence and acknowledgement numbers and windows that change their
// analysis, evicted past MaxConns, timed out and flushed, are finished
// from the summary of their shape (finishHalf) with the summary replay
// gives them (checkShape), and everything the callbacks and Add's
// callers see is what a tracker that replays every half shows.
func TestHalfShapeRandom(t *testing.T) {
	shaped = 0
	flags := []layer.Flags{syn, syn, syn, synack, ack, 0, psh, layer.URG}
	nums := []uint32{0, 1, 1000, ^uint32(0)}
	run := func(seed uint64, noShape bool) (log []string) {
		r := rand.New(rand.NewPCG(seed, 3))
		opts := Options{MaxConns: 400, IdleTimeout: 3 * time.Second, ClosedTimeout: time.Second, StreamGrace: 100 * time.Millisecond}
		opts.OnStreamsDone = func(c *Conn) { log = append(log, "streams done "+summaryJSON(t, c)) }
		opts.OnFinish = func(c *Conn) { log = append(log, "finish "+summaryJSON(t, c)) }
		tr := NewTracker(opts)
		tr.noShape = noShape
		if !noShape {
			tr.verifyShape = func(c, rc *Conn) { checkShape(t, c, rc) }
		}
		ts := time.Unix(1e9, 0)
		for frame := uint64(1); frame < 20000; frame++ {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(4))}), uint16(1000+r.IntN(3000)))
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 9, 9}), uint16(80+r.IntN(2)*3000))
			if r.IntN(3) == 0 {
				src, dst = dst, src
			}
			ts = ts.Add(time.Duration(r.IntN(5)) * time.Millisecond)
			s := layer.Segment{
				Ref: event.Ref{Frame: frame, TS: ts, File: r.IntN(2)}, Src: src, Dst: dst,
				Flags: flags[r.IntN(len(flags))], Seq: nums[r.IntN(len(nums))], Ack: nums[r.IntN(len(nums))],
				Win: uint16(r.IntN(2)) * 100, WScale: int8(r.IntN(2))*8 - 1,
			}
			c, dir, a := tr.Add(&s)
			log = append(log, fmt.Sprintf("%d: conn %d %s %s", frame, c.ID, dir, a))
		}
		tr.Flush()
		return log
	}
	for seed := range uint64(3) {
		got, want := run(seed, false), run(seed, true)
		if d := logDiff(got, want); d != "" {
			t.Fatalf("seed %d: %s", seed, d)
		}
	}
	if shaped < 1000 {
		t.Errorf("%d halves finished by shape, want many", shaped)
	}
	t.Logf("%d halves finished by shape", shaped)
}
