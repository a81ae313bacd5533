package http2_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// pcaps holds the generated captures and their truth files.
const pcaps = "../../testdata/pcaps"

// stallKey identifies a stall across two captures of the same packets:
// frame numbers differ, timestamps do not.
type stallKey struct {
	dir        event.Dir
	stream     uint32
	start, end time.Time
	by         string
}

func keyOf(x http2.Stall) stallKey {
	k := stallKey{dir: x.Dir, stream: x.Stream, start: x.Start.TS, by: x.EndedBy}
	if x.End != nil {
		k.end = x.End.TS
	}
	return k
}

func (k stallKey) String() string {
	return fmt.Sprintf("%v s=%d %s-%s %s", k.dir, k.stream, k.start.Format("15:04:05.000000"), k.end.Format("15:04:05.000000"), k.by)
}

// windowStalls is what one capture says about one HTTP/2 connection's
// stalls: the stalls kept, by window, and how many were dropped past the
// bound, by stream (0 for the connection).
type windowStalls struct {
	kept    map[[2]uint32][]http2.Stall // by {dir, stream}
	dropped map[uint32]int
	// data holds the timestamps of the DATA frames dissected.
	data map[time.Time]bool
}

// captureStalls runs the whole pipeline over a generated capture holding
// one HTTP/2 connection.
func captureStalls(t *testing.T, name string) windowStalls {
	t.Helper()
	path := filepath.Join(pcaps, name+".pcapng")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("capture absent: %v", err)
	}
	w := windowStalls{kept: map[[2]uint32][]http2.Stall{}, dropped: map[uint32]int{}, data: map[time.Time]bool{}}
	n := 0
	_, err := dissect.Run(context.Background(), []string{path}, dissect.Options{
		Dissect: true,
		Sink: event.SinkFunc(func(e *event.Event) {
			if e.Proto == event.ProtoHTTP2 && e.Type == "DATA" {
				w.data[e.Ref.TS] = true
			}
		}),
		OnConn: func(_ *tcp.Conn, a *dissect.App) {
			if a == nil || a.HTTP2 == nil {
				return
			}
			n++
			w.dropped[0] += a.HTTP2.StallsDropped
			for _, x := range a.HTTP2.Stalls {
				k := [2]uint32{uint32(x.Dir), 0}
				w.kept[k] = append(w.kept[k], x)
			}
			for _, st := range a.Streams {
				for _, x := range st.Stalls {
					k := [2]uint32{uint32(x.Dir), st.ID}
					w.kept[k] = append(w.kept[k], x)
				}
				w.dropped[st.ID] += st.StallsDropped
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%s: %d HTTP/2 connections", name, n)
	}
	return w
}

// TestInferredStallsMatchFullCapture compares the stalls inferred on
// h2c-large-slow-midstream, a cut of h2c-large-slow that starts inside
// the upload (no SETTINGS, no earlier WINDOW_UPDATE: no window is known),
// with the stalls measured on the whole capture: every inferred stall is
// a real one (same sender, window, start and end, matched by timestamp),
// and every real stall whose DATA frame the cut dissects is inferred.
func TestInferredStallsMatchFullCapture(t *testing.T) {
	full := captureStalls(t, "h2c-large-slow")
	mid := captureStalls(t, "h2c-large-slow-midstream")
	real := map[stallKey]bool{}
	for _, xs := range full.kept {
		for _, x := range xs {
			if x.Inferred {
				t.Errorf("full capture: inferred stall %v", keyOf(x))
			}
			real[keyOf(x)] = true
		}
	}
	found := map[stallKey]bool{}
	total, matched := 0, 0
	for w, xs := range mid.kept {
		for _, x := range xs {
			total++
			k := keyOf(x)
			switch {
			case !x.Inferred:
				t.Errorf("cut: stall %v not inferred (no window is known)", k)
			case x.MinWindow != 0:
				t.Errorf("cut: stall %v with MinWindow %d", k, x.MinWindow)
			case !real[k]:
				t.Errorf("cut: inferred stall %v is not a stall of the full capture", k)
			default:
				matched++
				found[k] = true
			}
		}
		if len(xs) > 0 && mid.dropped[w[1]] != full.dropped[w[1]] {
			t.Errorf("stream %d: %d stalls dropped in the cut, %d in the full capture", w[1], mid.dropped[w[1]], full.dropped[w[1]])
		}
	}
	missed := 0
	for w, xs := range full.kept {
		for _, x := range xs {
			k := keyOf(x)
			if !mid.data[k.start] || found[k] {
				continue
			}
			if len(mid.kept[w]) >= 64 {
				continue // past the cut's bound
			}
			missed++
			t.Errorf("real stall %v, whose DATA frame the cut dissects, not inferred", k)
		}
	}
	t.Logf("cut: %d stalls inferred, %d of them real; %d real stalls visible in the cut missed", total, matched, missed)
	if total == 0 {
		t.Fatal("no stall inferred on the cut")
	}
}
