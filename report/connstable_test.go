package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestConnsTableStream checks the streamed conns table: in any finish
// order, a table within the sample is byte for byte WriteConnsTable's
// (the box-drawing table of every row), and a longer one prints every
// row once, in id order, holding no more than the sample.
func TestConnsTableStream(t *testing.T) {
	for _, n := range []int{0, 9, 40} {
		recs := connsFixture(n)
		var ref bytes.Buffer
		if err := WriteConnsTable(&ref, recs); err != nil {
			t.Fatal(err)
		}
		orders := map[string][]int{"none": nil}
		if n > 0 {
			orders = finishOrders(n)
		}
		for name, order := range orders {
			for _, sample := range []int{n, n + 1, 1000} {
				if sample == 0 {
					continue
				}
				var got bytes.Buffer
				w := newConnsTableWriter(&got, sample)
				w.MaxWaiting = 3 // spill too
				for _, i := range order {
					if err := w.Add(&recs[i]); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if got.String() != ref.String() {
					t.Errorf("n=%d %s sample %d: streamed table differs:\n%s\nwant:\n%s", n, name, sample, got.String(), ref.String())
				}
			}
		}
	}

	// Past the sample: every row once, in order, and the held rows are
	// dropped once printed.
	const n, sample = 300, 16
	recs := connsFixture(n)
	var got bytes.Buffer
	w := newConnsTableWriter(&got, sample)
	for i := range recs {
		if err := w.Add(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(got.String(), "\n"), "\n")
	if len(lines) != n+4 {
		t.Fatalf("%d lines, want %d rows, 3 rules and the header", len(lines), n)
	}
	for i, l := range lines[3 : n+3] {
		if !strings.HasPrefix(l, fmt.Sprintf("│ %d ", i)) {
			t.Fatalf("row %d is %q", i, l)
		}
	}
	// The id and frame columns have room for the ids to come: every row
	// as wide as the header.
	for i, l := range lines {
		if utf8.RuneCountInString(l) != utf8.RuneCountInString(lines[0]) {
			t.Fatalf("line %d is %d wide, the top rule %d: %q", i, utf8.RuneCountInString(l), utf8.RuneCountInString(lines[0]), l)
		}
	}
	if !strings.HasPrefix(lines[n+3], "└") {
		t.Errorf("last line %q, want the bottom rule", lines[n+3])
	}
}
