package analyze

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestTablesCaptures(t *testing.T) {
	t.Run("http1-nokeepalive pools", func(t *testing.T) {
		res, _ := analyzeCapture(t, "http1-nokeepalive")
		ps := res.Tables.Pools
		if len(ps) != 1 {
			t.Fatalf("pools = %+v", ps)
		}
		want := PoolRow{Client: "127.0.0.1", Server: "127.0.0.1:40123", Name: "127.0.0.1:40123", Proto: "http1", Connections: 15,
			Requests: 15, RequestsPerConn: 1, OneRequestConns: 15, ClosedByClient: 1, ClosedByServer: 14, MaxConcurrent: 2,
			// The sketch's estimates of 0.009954 and 0.048447 ms, the
			// nearest-rank median and 99th percentile of the 15
			// handshakes' tcp.analysis.initial_rtt.
			HandshakeP50MS: 0.01, HandshakeP99MS: 0.048}
		if !reflect.DeepEqual(ps[0], want) {
			t.Errorf("pool = %+v\nwant   %+v", ps[0], want)
		}
	})
	t.Run("grpc-unary-h2c calls", func(t *testing.T) {
		res, _ := analyzeCapture(t, "grpc-unary-h2c")
		tb := res.Tables
		if len(tb.GRPCCalls) != 20 || tb.GRPCCallsOmitted != 0 {
			t.Fatalf("%d calls, %d omitted", len(tb.GRPCCalls), tb.GRPCCallsOmitted)
		}
		for i, c := range tb.GRPCCalls {
			if c.Stream != uint32(2*i+1) || c.Status == "" || c.Method == "" || !c.Ended {
				t.Errorf("call %d = %+v", i, c)
			}
		}
		calls := 0
		for _, m := range tb.GRPCMethods {
			calls += m.Calls
			if m.P50MS > m.P99MS || m.P99MS > m.MaxMS {
				t.Errorf("method %+v: percentiles out of order", m)
			}
		}
		if calls != 20 {
			t.Errorf("methods = %+v", tb.GRPCMethods)
		}
	})
	t.Run("tls12-resume funnel", func(t *testing.T) {
		res, _ := analyzeCapture(t, "tls12-resume")
		rs := res.Tables.Resumption
		if len(rs) != 1 || rs[0].Handshakes != 9 || rs[0].Accepted != 6 || rs[0].Failed != 0 || rs[0].Mechanisms["ticket"] != 6 {
			t.Errorf("resumption = %+v", rs)
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		for _, name := range []string{"http1-keepalive", "grpc-streaming-h2c", "tls12-resume-fail"} {
			a, _ := analyzeCapture(t, name)
			b, _ := analyzeCapture(t, name)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Errorf("%s: two runs differ", name)
			}
		}
	})
}

func TestTablesEmpty(t *testing.T) {
	b, err := json.Marshal(buildTables(&Input{}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"pools":[],"resumption":[],"grpc_calls":[],"grpc_methods":[],"http_routes":[]}`; got != want {
		t.Errorf("empty tables = %s, want %s", got, want)
	}
}

func TestNearestRank(t *testing.T) {
	tests := []struct {
		n    int
		q    float64
		want int
	}{{1, 0.5, 1}, {2, 0.5, 1}, {10, 0.5, 5}, {10, 0.99, 10}, {100, 0.99, 99}, {0, 0.5, 0}}
	for _, tt := range tests {
		var ds []time.Duration
		for i := 1; i <= tt.n; i++ {
			ds = append(ds, time.Duration(i))
		}
		if got := nearestRank(ds, tt.q); int(got) != tt.want {
			t.Errorf("nearestRank(1..%d, %v) = %d, want %d", tt.n, tt.q, got, tt.want)
		}
	}
}
