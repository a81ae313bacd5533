package analyze

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
)

func detectRequestErrors(in *Input) []Finding {
	return detectOver(&requestErrors{cfg: defaultRequestErrors()}, in)
}

// httpConn returns an HTTP/1.1 connection that answered one request per
// status, from frame 10 on.
func httpConn(id event.ConnID, statuses ...int) *Conn {
	c := conn(id, "10.0.0.1:40000", "10.0.0.2:80", uint64(id)*1000+1, 0, 5*time.Second)
	for i, st := range statuses {
		f := uint64(id)*1000 + 10 + uint64(2*i)
		c.Records.Exchanges = append(c.Records.Exchanges, Exchange{Proto: event.ProtoHTTP1, Seq: i + 1, Method: "GET",
			Path: "/api/items?id=7", Status: st, Request: refp(ref(f, time.Second)), Response: refp(ref(f+1, time.Second+time.Millisecond)),
			ResponseEnd: refp(ref(f+1, time.Second+time.Millisecond))})
	}
	return c
}

// grpcConn returns a gRPC connection with one call per status (by name);
// reset marks calls the client reset.
func grpcConn(id event.ConnID, reset bool, statuses ...string) *Conn {
	c := conn(id, "10.0.0.1:40000", "10.0.0.2:50051", uint64(id)*1000+1, 0, 5*time.Second)
	var calls []grpc.Call
	for i, st := range statuses {
		call := grpc.Call{Stream: uint32(2*i + 1), Method: "/shop.Cart/Add", ClientStatus: st, End: ref(uint64(id)*1000+10+uint64(i), time.Second)}
		if reset {
			call.Reset, call.ResetBy = true, "client"
		}
		calls = append(calls, call)
	}
	c.App = &dissect.App{}
	c.Records.Calls = calls
	return c
}

func TestRequestErrorsSynthetic(t *testing.T) {
	rep := func(s string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	tests := []struct {
		name  string
		conns []*Conn
		want  *findingWant
	}{
		{
			name:  "503s from a proxy",
			conns: []*Conn{httpConn(1, 200, 503, 503, 200, 503, 502, 503, 200)},
			want: &findingWant{sev: Critical, cause: CauseUnavailable,
				summary: "5 of 8 requests from 10.0.0.1 to 10.0.0.2:80 failed (502 1, 503 4), mostly unavailable: GET /api/items 5 of 8",
				frames:  []uint64{1013}, metrics: map[string]float64{"requests": 8, "failed": 5, "fail_ratio": 0.625},
				remedyHas: "circuit"},
		},
		{
			name:  "a few 500s among many requests",
			conns: []*Conn{httpConn(1, append(rep2(200, 90), 500, 500, 500, 500, 500, 500)...)},
			want:  &findingWant{sev: Warning, cause: CauseServerError, metrics: map[string]float64{"failed": 6, "requests": 96}},
		},
		{
			name:  "below the share",
			conns: []*Conn{httpConn(1, append(rep2(200, 200), 500, 500, 500, 500, 500)...)},
		},
		{
			name:  "4xx are the client's",
			conns: []*Conn{httpConn(1, 404, 404, 404, 404, 404, 400, 401)},
		},
		{
			name:  "gRPC overload",
			conns: []*Conn{grpcConn(3, false, append(rep("OK", 10), rep("RESOURCE_EXHAUSTED", 6)...)...)},
			want: &findingWant{sev: Critical, cause: CauseOverload, summary: "6 of 16 requests from 10.0.0.1 to 10.0.0.2:50051 failed (RESOURCE_EXHAUSTED 6)",
				frames: []uint64{3020}, remedyHas: "Retry-After"},
		},
		{
			// The client's own cancels are rst_storm's.
			name:  "gRPC calls the client cancelled",
			conns: []*Conn{grpcConn(3, true, append(rep("CANCELLED", 20), rep("OK", 5)...)...)},
		},
		{
			// Calls whose deadline fired at the client (it resets them
			// with CANCEL once grpc-timeout has passed) failed.
			name:  "gRPC calls whose client deadline fired",
			conns: []*Conn{grpcConn(3, true, rep("DEADLINE_EXCEEDED", 8)...), grpcConn(4, false, rep("OK", 12)...)},
			want: &findingWant{sev: Critical, cause: CauseDeadline, summary: "8 of 20 requests from 10.0.0.1 to 10.0.0.2:50051 failed (DEADLINE_EXCEEDED 8)",
				metrics: map[string]float64{"requests": 20, "failed": 8}, remedyHas: "client's context deadline"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFindings(t, run(detectRequestErrors, tt.conns...), KindRequestErrors, tt.want)
		})
	}
}

func rep2(st, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = st
	}
	return out
}

// TestRequestErrorsLabelsAnyOrder: past maxErrLabels methods, the ones
// counted apart are the same whatever order the connections finish in.
func TestRequestErrorsLabelsAnyOrder(t *testing.T) {
	var conns []*Conn
	for i := range 40 {
		c := httpConn(event.ConnID(i), 500)
		c.Records.Exchanges[0].Path = fmt.Sprintf("/m%02d", i)
		conns = append(conns, c)
	}
	fwd := run(detectRequestErrors, conns...)
	back := slices.Clone(conns)
	slices.Reverse(back)
	rev := run(detectRequestErrors, back...)
	if len(fwd) != 1 || len(rev) != 1 {
		t.Fatalf("%d and %d findings", len(fwd), len(rev))
	}
	a, b := fmt.Sprint(fwd[0].Metrics["methods"], fwd[0].Summary), fmt.Sprint(rev[0].Metrics["methods"], rev[0].Summary)
	if a != b {
		t.Errorf("forward: %s\nreverse: %s", a, b)
	}
}
