package pack

import (
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// TestStoreLayout stores records of every size class, from a few bytes to
// several blocks, and reads each back from its Loc.
func TestStoreLayout(t *testing.T) {
	var s Store
	var e Encoder
	type rec struct {
		loc Loc
		n   int
	}
	var recs []rec
	sizes := []int{1, 300, 70000, 5, 200000, 65535, 7, 0, 40000, 40000, 40000}
	for i := range 2000 {
		sizes = append(sizes, i%700)
	}
	for i, n := range sizes {
		e.Reset(&s)
		e.Uint(uint64(i))
		e.String(strings.Repeat("x", n)) // inline past maxTableString
		loc, ok := s.Put(&e)
		if !ok {
			t.Fatalf("record %d (%d bytes) not stored", i, n)
		}
		recs = append(recs, rec{loc, n})
	}
	for i, r := range recs {
		d := s.Get(r.loc)
		if got := d.Uint(); got != uint64(i) {
			t.Fatalf("record %d read back as %d", i, got)
		}
		if got := d.String(); len(got) != r.n || strings.Count(got, "x") != r.n {
			t.Fatalf("record %d: string of %d bytes, want %d", i, len(got), r.n)
		}
	}
	if s.Size() > 4*1024*1024 {
		t.Errorf("store of %d bytes", s.Size())
	}
}

// TestTimes checks which timestamps a record keeps: UTC ones without a
// monotonic reading (the capture readers' kind), from year 1 to 9999
// and beyond, exactly; others make the record not storable, so that the
// caller keeps it in Go form.
func TestTimes(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    time.Time
		ok   bool
	}{
		{"zero", time.Time{}, true},
		{"unix epoch", time.Unix(0, 0).UTC(), true},
		{"capture", time.Unix(1700000000, 123456789).UTC(), true},
		{"before 1970", time.Unix(-5e9, 1).UTC(), true},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), true},
		{"past 9999", time.Date(12000, 1, 1, 0, 0, 0, 999999999, time.UTC), true},
		{"local", time.Unix(1700000000, 0).In(time.FixedZone("X", 3600)), false},
		{"local, monotonic", time.Now(), false},
	} {
		var s Store
		var e Encoder
		for _, base := range []time.Time{time.Unix(1700000000, 5).UTC(), tc.t} {
			e.Reset(&s)
			e.Ref(event.Ref{File: 2, Frame: 1 << 40, TS: base})
			e.Time(tc.t)
			loc, ok := s.Put(&e)
			if ok != tc.ok {
				t.Errorf("%s: stored %v, want %v", tc.name, ok, tc.ok)
				continue
			}
			if !ok {
				continue
			}
			d := s.Get(loc)
			if r := d.Ref(); r.File != 2 || r.Frame != 1<<40 || r.TS != base {
				t.Errorf("%s: ref read back as %+v", tc.name, r)
			}
			if got := d.Time(); got != tc.t {
				t.Errorf("%s: read back as %v, want %v", tc.name, got, tc.t)
			}
		}
	}
}
