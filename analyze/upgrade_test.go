package analyze

import "testing"

// TestUpgradeRequestCountedOnce checks that the request that asked for
// an h2c Upgrade counts once: it is HTTP/2 stream 1 too (RFC 7540 §3.2),
// whose response is the real one, so its HTTP/1 exchange answered by 101
// is not a second request. curl --http2 against h2o fetched three files
// over one upgraded connection (h2o's access log: HTTP/2 streams 1, 3, 5).
func TestUpgradeRequestCountedOnce(t *testing.T) {
	res, _ := analyzeCapture(t, "stacks/h2o-curl-h2c-upgrade")
	if len(res.Tables.Pools) != 1 {
		t.Fatalf("%d pools, want 1", len(res.Tables.Pools))
	}
	if p := res.Tables.Pools[0]; p.Requests != 3 || p.Connections != 1 {
		t.Errorf("pool: %d requests on %d connections, want 3 on 1", p.Requests, p.Connections)
	}
	n := 0
	for _, r := range res.Tables.Routes {
		n += r.Requests
		if r.Answered != r.Requests {
			t.Errorf("route %s %s: %d of %d answered, want all", r.Method, r.Path, r.Answered, r.Requests)
		}
	}
	if n != 3 {
		t.Errorf("routes count %d requests, want 3: %+v", n, res.Tables.Routes)
	}
	for _, f := range res.Findings {
		if f.Severity >= Warning {
			t.Errorf("finding on a healthy upgraded connection: %s %s: %s", f.Kind, f.Cause, f.Summary)
		}
	}
}
