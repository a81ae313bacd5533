package http2

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	xhttp2 "golang.org/x/net/http2"
)

// copyEvent deep-copies an event for later comparison.
func copyEvent(e *event.Event) event.Event {
	x := *e
	if e.HTTP2 != nil {
		d := *e.HTTP2
		d.Headers = append([]event.Header(nil), d.Headers...)
		for _, p := range []**int64{&d.StreamWindowBefore, &d.StreamWindowAfter, &d.ConnWindowBefore, &d.ConnWindowAfter} {
			if *p != nil {
				v := **p
				*p = &v
			}
		}
		x.HTTP2 = &d
	}
	return x
}

type keeper struct{ evs []event.Event }

func (k *keeper) Event(e *event.Event) { k.evs = append(k.evs, copyEvent(e)) }

// grpcLike builds a client and a server direction: n calls, each a
// request with varying metadata (dynamic-table inserts and references),
// random request and response messages over DATA frames, and trailers;
// chunks hold one frame each and interleave the two directions.
func grpcLike(t testing.TB, n int, seed int64) ([]chunk, *wire, *wire) {
	rnd := rand.New(rand.NewSource(seed))
	cli, srv := newWire(t, true), newWire(t, false)
	cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1 << 20})
	srv.settings(xhttp2.Setting{ID: xhttp2.SettingMaxFrameSize, Val: 1 << 14}, xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 32768})
	order := []event.Dir{event.C2S, event.C2S, event.S2C}
	cli.settingsAck()
	srv.settingsAck()
	order = append(order, event.C2S, event.S2C)
	payload := func(k int) []byte {
		b := make([]byte, k)
		rnd.Read(b)
		if rnd.Intn(3) == 0 {
			for i := range b[:k/2] {
				b[i] = 0
			}
		}
		return b
	}
	for i := range n {
		id := uint32(2*i + 1)
		cli.headers(id, false, ":method", "POST", ":scheme", "http", ":authority", "svc.local:50051",
			":path", fmt.Sprintf("/pkg.Svc/Method%d", i%3), "content-type", "application/grpc", "te", "trailers",
			"x-request-id", fmt.Sprintf("req-%d", rnd.Intn(5)), "grpc-timeout", "1S")
		order = append(order, event.C2S)
		for k := rnd.Intn(3) + 1; k > 0; k-- {
			cli.mark()
			cli.check(cli.fr.WriteData(id, k == 1, payload(rnd.Intn(3000))))
			order = append(order, event.C2S)
		}
		srv.headers(id, false, ":status", "200", "content-type", "application/grpc", "x-server", fmt.Sprintf("s%d", rnd.Intn(3)))
		order = append(order, event.S2C)
		for k := rnd.Intn(4) + 1; k > 0; k-- {
			srv.mark()
			if rnd.Intn(4) == 0 {
				srv.check(srv.fr.WriteDataPadded(id, false, payload(rnd.Intn(16000)), make([]byte, rnd.Intn(40))))
			} else {
				srv.check(srv.fr.WriteData(id, false, payload(rnd.Intn(16384))))
			}
			order = append(order, event.S2C)
			if rnd.Intn(3) == 0 {
				cli.windowUpdate(id, uint32(rnd.Intn(20000)+1))
				cli.windowUpdate(0, uint32(rnd.Intn(40000)+1))
				order = append(order, event.C2S, event.C2S)
			}
		}
		srv.headers(id, true, "grpc-status", fmt.Sprint(rnd.Intn(3)), "grpc-message", fmt.Sprintf("m%d", rnd.Intn(2)))
		order = append(order, event.S2C)
		if rnd.Intn(5) == 0 {
			srv.mark()
			srv.check(srv.fr.WritePing(false, [8]byte{byte(i)}))
			cli.mark()
			cli.check(cli.fr.WritePing(true, [8]byte{byte(i)}))
			order = append(order, event.S2C, event.C2S)
		}
	}
	cc := split(event.C2S, cli.bytes(), cli.starts, 0)
	sc := split(event.S2C, srv.bytes(), srv.starts, 0)
	var out []chunk
	for _, d := range order {
		if d == event.C2S {
			out, cc = append(out, cc[0]), cc[1:]
		} else {
			out, sc = append(out, sc[0]), sc[1:]
		}
	}
	if len(cc)+len(sc) != 0 {
		t.Fatalf("order leaves %d+%d frames", len(cc), len(sc))
	}
	for i := range out {
		out[i].ref = ref(uint64(i + 1))
	}
	return out, cli, srv
}

func runKeep(opts Options, chunks []chunk) (*Conn, []event.Event) {
	k := &keeper{}
	c := NewConn(1, k, opts)
	for _, ch := range chunks {
		if ch.gap > 0 {
			c.Gap(ch.dir, ch.gap, ch.ref)
		} else {
			c.Data(ch.dir, ch.b, ch.ref)
		}
	}
	c.Close(event.C2S, false, ref(1<<20))
	c.Close(event.S2C, false, ref(1<<20))
	return c, k.evs
}

func eqPtr(a, b *int64) bool { return a == nil || b != nil && *a == *b }

// checkAgainst verifies that every event of part is an event of full
// (the same frame: direction and Ref identify it) with nothing wrong in
// it: decoded header fields and known windows equal the full run's. It
// returns how many events of full are missing from part, per direction,
// counting only frames whose chunk index is at least from[dir].
func checkAgainst(t *testing.T, name string, full, part []event.Event, from [2]uint64) (missing [2]int) {
	t.Helper()
	type key struct {
		dir   event.Dir
		frame uint64
	}
	idx := make(map[key]*event.Event)
	for i := range full {
		if full[i].Type != "PREFACE" {
			idx[key{full[i].Dir, full[i].Ref.Frame}] = &full[i]
		}
	}
	got := make(map[key]bool)
	for i := range part {
		p := &part[i]
		k := key{p.Dir, p.Ref.Frame}
		f := idx[k]
		if f == nil || f.Type != p.Type || f.Stream != p.Stream || f.Len != p.Len || f.Bits != p.Bits || f.Error != p.Error {
			t.Errorf("%s: invented event %s (real: %v)", name, fmtEvent(p), f != nil && fmtEvent(f) != "")
			continue
		}
		got[k] = true
		pd, fd := p.HTTP2, f.HTTP2
		if pd == nil {
			continue
		}
		if fd == nil {
			fd = &event.HTTP2{}
		}
		if pd.HeadersUndecodable {
			if len(pd.Headers) != 0 {
				t.Errorf("%s: undecodable block with headers: %s", name, fmtEvent(p))
			}
		} else if pd.Headers != nil {
			if len(pd.Headers) != len(fd.Headers) {
				t.Errorf("%s: %d fields, want %d: %s vs %s", name, len(pd.Headers), len(fd.Headers), fmtEvent(p), fmtEvent(f))
			}
			for j := range min(len(pd.Headers), len(fd.Headers)) {
				if h := pd.Headers[j]; !h.Unknown && h != fd.Headers[j] {
					t.Errorf("%s: wrong header %v, want %v in %s", name, h, fd.Headers[j], fmtEvent(p))
				}
			}
		}
		if !eqPtr(pd.StreamWindowBefore, fd.StreamWindowBefore) || !eqPtr(pd.StreamWindowAfter, fd.StreamWindowAfter) ||
			!eqPtr(pd.ConnWindowBefore, fd.ConnWindowBefore) || !eqPtr(pd.ConnWindowAfter, fd.ConnWindowAfter) {
			t.Errorf("%s: wrong windows %s, want %s", name, fmtEvent(p), fmtEvent(f))
		}
		if pd.Padding != fd.Padding || pd.WindowIncrement != fd.WindowIncrement || pd.PingData != fd.PingData {
			t.Errorf("%s: wrong detail %s, want %s", name, fmtEvent(p), fmtEvent(f))
		}
	}
	for k := range idx {
		if !got[k] && k.frame >= from[k.dir] {
			missing[k.dir]++
		}
	}
	return missing
}

// TestMidConnection drops the first N bytes of each direction, for many
// N, and checks that the dissection synchronises on the next frame
// boundary, invents no frame, and never reports a wrong header or window.
func TestMidConnection(t *testing.T) {
	chunks, cli, srv := grpcLike(t, 40, 1)
	_, full := runKeep(Options{}, chunks)
	if len(full) < 300 {
		t.Fatalf("only %d events", len(full))
	}
	// frameAt returns the Ref of the first frame of dir starting at or
	// after byte n.
	frameAt := func(w *wire, dir event.Dir, n int) uint64 {
		seen := 0
		for _, ch := range chunks {
			if ch.dir != dir {
				continue
			}
			if seen >= n {
				return ch.ref.Frame
			}
			seen += len(ch.b)
		}
		return 1 << 30
	}
	var undecodable, unknown, decoded int
	step := 499
	if testing.Short() {
		step = 4999
	}
	for _, dir := range []event.Dir{event.C2S, event.S2C} {
		w := cli
		if dir == event.S2C {
			w = srv
		}
		for n := 1; n < len(w.bytes())-2000; n += step {
			part := dropPrefix(chunks, dir, n)
			c, evs := runKeep(Options{MidConnection: true}, part)
			from := [2]uint64{}
			from[dir] = frameAt(w, dir, n)
			name := fmt.Sprintf("%v-%d", dir, n)
			if m := checkAgainst(t, name, full, evs, from); m[0]+m[1] > 0 {
				t.Errorf("%s: %v frames missed after the drop point", name, m)
			}
			s := c.Summary()
			undecodable += s.HeaderBlocksUndecodable
			unknown += s.HeaderFields - s.HeaderFieldsDecoded
			decoded += s.HeaderFieldsDecoded
		}
	}
	t.Logf("undecodable blocks %d, unknown fields %d, decoded %d", undecodable, unknown, decoded)
	if unknown == 0 || decoded == 0 {
		t.Errorf("expected both unknown and decoded fields")
	}
}
