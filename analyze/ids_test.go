package analyze

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

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

// TestGroupFindings checks that findings about single connections of one
// client, server and name, of one kind and cause, become one finding.
func TestGroupFindings(t *testing.T) {
	p := findingPool{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddrPort("10.0.0.2:443"), "api"}
	q := p
	q.client = netip.MustParseAddr("10.0.0.9")
	mk := func(id event.ConnID, sev Severity, cause string, pool findingPool) Finding {
		return Finding{Kind: KindGoAway, Cause: cause, Severity: sev, pool: pool, Connections: []event.ConnID{id},
			Summary: "GOAWAY on connection " + connText(id), Evidence: []Evidence{evidence(id, 0, event.Ref{Frame: uint64(10 * (id + 1))}, "GOAWAY")},
			Metrics: map[string]any{}}
	}
	fs := groupFindings([]Finding{
		mk(1, Info, CauseGraceful, p),
		mk(2, Warning, CauseGraceful, p),
		mk(3, Info, CauseGraceful, q),       // another client
		mk(4, Info, CauseStreamsRefused, p), // another cause
		mk(5, Info, CauseGraceful, p),
		{Kind: KindRSTStorm, Summary: "per server"}, // no pool: as it is
	})
	if len(fs) != 4 {
		t.Fatalf("%d findings, want 4", len(fs))
	}
	g := fs[0]
	if g.Severity != Warning || len(g.Connections) != 3 || len(g.Evidence) != 3 || g.Metrics["connections"] != 3 ||
		resolveText(g.Summary, nil) != "GOAWAY on connection 1; the same on 2 more connections of this client and server" {
		t.Errorf("grouped: %+v", g)
	}
	for _, f := range fs[1:] {
		if len(f.Connections) > 1 {
			t.Errorf("not grouped, but holds %v", f.Connections)
		}
	}
}

// TestGRPCFramingLowersConfidence checks that the gRPC dissector's
// framing anomalies reach a finding's confidence, and that a capture gap
// or a reset before the status do not count twice.
func TestGRPCFramingLowersConfidence(t *testing.T) {
	c := conn(1, "10.0.0.1:40000", "10.0.0.2:50051", 1, 0, time.Second)
	c.App = &dissect.App{GRPCAnomalies: map[string]int{"missing_grpc_status": 3, "message_lost": 1}}
	if r := reasonsOf(c); r&reasonGRPCFraming != 0 {
		t.Errorf("reasons %b: a missing status or a lost message is no framing anomaly", r)
	}
	c.App.GRPCAnomalies["message_too_large"] = 1
	got := confidence(nil, c)
	if got.Level != "medium" || len(got.Reasons) != 1 || got.Reasons[0] != "gRPC framing anomalies (calls may be misread or missing)" {
		t.Errorf("confidence %+v", got)
	}
}
