package report

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// connsFixture returns n records with ids 0..n-1, in id order, of
// varying length (some with an HTTP/1 summary, some with controls and
// bidi overrides in a string, which the encoder escapes).
func connsFixture(n int) []ConnRecord {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := make([]ConnRecord, n)
	for i := range recs {
		s := &tcp.Summary{ID: event.ConnID(i), FirstFrame: uint64(i + 1), LastFrame: uint64(i + 7),
			FirstTS: t0.Add(time.Duration(i) * time.Millisecond), LastTS: t0.Add(time.Duration(i+3) * time.Millisecond),
			ConnState: "SF", History: "ShADadFf"}
		s.Packets.C2S, s.Packets.S2C = uint64(i%5), uint64(i%3)
		if i%7 == 3 {
			s.ConnState, s.History = "S0", "S"
			s.Anomalies = map[string]int{"bad\u202e\x01name": i}
		}
		recs[i] = ConnRecord{Summary: s}
		if i%4 == 1 {
			recs[i].HTTP1 = &http1.Summary{Requests: i % 9, Responses: i % 9}
		}
	}
	return recs
}

// sortedRef is the reference: every record kept to the end, sorted by
// id and written with WriteConnsJSON, as conns --json did before it
// streamed.
func sortedRef(t *testing.T, recs []ConnRecord) []byte {
	t.Helper()
	s := slices.Clone(recs)
	slices.SortFunc(s, func(a, b ConnRecord) int { return int(a.ID) - int(b.ID) })
	var b bytes.Buffer
	if err := WriteConnsJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// finishOrders are orders in which connections can finish, as
// permutations of ids 0..n-1.
func finishOrders(n int) map[string][]int {
	ids := func() []int {
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		return p
	}
	orders := map[string][]int{"in order": ids()}
	rev := ids()
	slices.Reverse(rev)
	orders["reversed"] = rev
	// One idle connection early in the capture holds every later one.
	idle := ids()
	orders["id 0 last"] = append(idle[1:], 0)
	// Two long-lived connections, the rest in order.
	two := []int{}
	for i := 0; i < n; i++ {
		if i != 2 && i != n/2 {
			two = append(two, i)
		}
	}
	orders["2 and n/2 last"] = append(two, n/2, 2)
	// Short connections overlapping: finishing within a window of 20.
	r := rand.New(rand.NewPCG(1, 2))
	win := ids()
	for i := range win {
		j := min(n-1, i+r.IntN(20))
		win[i], win[j] = win[j], win[i]
	}
	orders["window of 20"] = win
	shuf := ids()
	r.Shuffle(len(shuf), func(i, j int) { shuf[i], shuf[j] = shuf[j], shuf[i] })
	orders["shuffled"] = shuf
	return orders
}

// TestConnsWriterOrder feeds records in finishing orders that differ from
// id order and checks that the output is byte for byte the sorted-at-end
// reference, with the default caps, caps that force spills of one or a
// few records, and enough spills to merge runs; and that the records kept
// in memory never exceed the caps.
func TestConnsWriterOrder(t *testing.T) {
	const n = 1500
	recs := connsFixture(n)
	want := sortedRef(t, recs)
	caps := []struct {
		name            string
		records, nbytes int
	}{
		{"default", 0, 0},
		{"1 record", 1, 0},
		{"3 records", 3, 0}, // 500 runs for id 0 last: merged past maxConnsRuns
		{"50 records", 50, 0},
		{"2 KB", 0, 2000},
	}
	for name, order := range finishOrders(n) {
		for _, c := range caps {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				dir := t.TempDir()
				var out bytes.Buffer
				w := NewConnsWriter(&out)
				w.MaxWaiting, w.MaxWaitingBytes, w.TempDir = c.records, c.nbytes, dir
				for _, id := range order {
					if err := w.Add(&recs[id]); err != nil {
						t.Fatal(err)
					}
					k, b := w.Waiting()
					if c.records > 0 && k > c.records || c.nbytes > 0 && b > c.nbytes {
						t.Fatalf("after id %d: %d records (%d bytes) waiting in memory, caps %d records, %d bytes", id, k, b, c.records, c.nbytes)
					}
					if len(w.runs) > maxConnsRuns {
						t.Fatalf("after id %d: %d spilled runs open, want at most %d", id, len(w.runs), maxConnsRuns)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Errorf("output differs from the sorted reference: %s", firstDiff(out.Bytes(), want))
				}
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Errorf("spill files left behind: %v", left)
				}
			})
		}
	}
}

// TestConnsWriterStreams checks that a record is let go as soon as every
// lower id has been written: with connections finishing within a window,
// only the window waits.
func TestConnsWriterStreams(t *testing.T) {
	recs := connsFixture(10)
	w := NewConnsWriter(&bytes.Buffer{})
	for _, step := range []struct {
		id      int
		waiting int
	}{{1, 1}, {2, 2}, {0, 0}, {3, 0}, {5, 1}, {4, 0}, {9, 1}, {7, 2}, {6, 1}, {8, 0}} {
		if err := w.Add(&recs[step.id]); err != nil {
			t.Fatal(err)
		}
		if k, _ := w.Waiting(); k != step.waiting {
			t.Errorf("after id %d: %d waiting, want %d", step.id, k, step.waiting)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConnsWriterGaps checks that ids never added are skipped at Close,
// from memory and from spilled runs alike.
func TestConnsWriterGaps(t *testing.T) {
	all := connsFixture(40)
	var recs []ConnRecord
	for i, r := range all {
		if i%3 != 0 && i != 1 { // id 0 and 1 never come: everything waits
			recs = append(recs, r)
		}
	}
	want := sortedRef(t, recs)
	for _, cap := range []int{0, 1, 4} {
		var out bytes.Buffer
		w := NewConnsWriter(&out)
		w.MaxWaiting, w.TempDir = cap, t.TempDir()
		for i := len(recs) - 1; i >= 0; i-- {
			if err := w.Add(&recs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("cap %d: %s", cap, firstDiff(out.Bytes(), want))
		}
	}
}

// failWriter fails every write.
type failWriter struct{}

var errFail = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errFail }

// TestConnsWriterError checks that a write error reaches Add or Close and
// sticks.
func TestConnsWriterError(t *testing.T) {
	recs := connsFixture(3)
	w := NewConnsWriter(failWriter{})
	var err error
	for i := range recs {
		err = errors.Join(err, w.Add(&recs[i]))
	}
	err = errors.Join(err, w.Close())
	if !errors.Is(err, errFail) {
		t.Errorf("error %v, want %v", err, errFail)
	}
	if w.Add(&recs[0]) == nil {
		t.Error("Add after Close: no error")
	}
}

// firstDiff describes where got and want first differ.
func firstDiff(got, want []byte) string {
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := range max(len(gl), len(wl)) {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			return fmt.Sprintf("line %d:\ngot  %.200s\nwant %.200s", i+1, g, w)
		}
	}
	return "same lines"
}
