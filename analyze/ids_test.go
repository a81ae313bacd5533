package analyze

import (
	"encoding/json"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

func TestResolveText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no marker", "no marker"},
		{"on connection " + connText(7), "on connection 7"},
		{connText(0) + " and " + connText(4294967295), "0 and 4294967295"},
		// Not markers: left as they are.
		{"\uE000", "\uE000"},
		{"\uE000\uE001", "\uE000\uE001"},
		{"\uE00012", "\uE00012"},
		{"\uE00012x\uE001", "\uE00012x\uE001"},
		{"\uE00099999999999\uE001", "\uE00099999999999\uE001"},
		{"a\uE000" + connText(3), "a\uE0003"},
	}
	for _, tt := range tests {
		if got := resolveText(tt.in, nil); got != tt.want {
			t.Errorf("resolveText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestFinalIDs checks that a finding built with provisional IDs (first
// frames) reads, once resolved, as one built with final IDs (ranks).
func TestFinalIDs(t *testing.T) {
	ids := dissect.NewConnIDs([]event.ConnID{97, 10, 42})
	prov := Finding{Summary: "GOAWAY on connection " + connText(42), Connections: []event.ConnID{10, 97},
		Streams:  []StreamRef{{Conn: 97, Stream: 3}},
		Evidence: []Evidence{evidence(42, 5, event.Ref{Frame: 50}, "after connection "+connText(10))}}
	prov.finalIDs(ids)
	want := Finding{Summary: "GOAWAY on connection 1", Connections: []event.ConnID{0, 2},
		Streams:  []StreamRef{{Conn: 2, Stream: 3}},
		Evidence: []Evidence{evidence(1, 5, event.Ref{Frame: 50}, "after connection 0")}}
	if got, w := jsonOf(t, prov), jsonOf(t, want); got != w {
		t.Errorf("got %s\nwant %s", got, w)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
