package diff

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/internal/golden"
)

const pcaps = "../testdata/pcaps/"

func load(t *testing.T, name string) *Side {
	t.Helper()
	s, err := Load(context.Background(), pcaps+name, LoadOptions{Dissect: dissect.Options{}, Config: analyze.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	s.Source = "testdata/pcaps/" + name // as a user would name it
	return s
}

// pool returns the only pool diff of r.
func pool(t *testing.T, r *Result) PoolDiff {
	t.Helper()
	if len(r.Pools) != 1 || r.Pools[0].Before == nil || r.Pools[0].After == nil {
		t.Fatalf("pools %+v, want one on both sides", r.Pools)
	}
	return r.Pools[0]
}

func TestCompareCaptures(t *testing.T) {
	for _, tt := range []struct {
		before, after string
		kind, status  string
		check         func(t *testing.T, p PoolDiff)
		failOn        bool // at warning
	}{
		{"http1-nokeepalive.pcapng", "http1-keepalive.pcapng", analyze.KindReconnectChurn, Resolved, func(t *testing.T, p PoolDiff) {
			if *p.Before.RequestsPerConn != 1 || *p.After.RequestsPerConn <= 1 {
				t.Errorf("requests per connection %v → %v, want 1 → N", *p.Before.RequestsPerConn, *p.After.RequestsPerConn)
			}
			if p.Before.ConnsPerSecond == nil || p.After.ConnsPerSecond != nil {
				t.Errorf("new connections per second: want the churn finding's before, none after")
			}
		}, false},
		{"http1-keepalive.pcapng", "http1-nokeepalive.pcapng", analyze.KindReconnectChurn, New, nil, true},
		{"tls13-resume-fail.pcapng", "tls13-resume.pcapng", analyze.KindResumptionFailure, Resolved, func(t *testing.T, p PoolDiff) {
			if p.Before.ResumptionRate == nil || *p.Before.ResumptionRate != 0 || p.After.ResumptionRate == nil || *p.After.ResumptionRate != 1 {
				t.Errorf("resumption rate %v → %v, want 0 → 1", p.Before.ResumptionRate, p.After.ResumptionRate)
			}
		}, false},
		{"tls13-resume-fail.pcapng", "tls13-resume-fail.pcapng", analyze.KindResumptionFailure, Unchanged, nil, false},
	} {
		t.Run(tt.before+"-"+tt.after, func(t *testing.T) {
			r := Compare(load(t, tt.before), load(t, tt.after), Options{})
			var found bool
			for _, d := range r.Findings {
				if d.Kind == tt.kind {
					found = true
					if d.Status != tt.status {
						t.Errorf("%s: %s, want %s (%v)", d.Kind, d.Status, tt.status, d.Changes)
					}
				}
			}
			if !found {
				t.Errorf("no %s finding", tt.kind)
			}
			if tt.check != nil {
				tt.check(t, pool(t, r))
			}
			if got := r.FailOn(analyze.Warning); got != tt.failOn {
				t.Errorf("FailOn(warning) = %v, want %v", got, tt.failOn)
			}
		})
	}
}

// TestCompareReports reads the sides from analyze --json reports: the
// result is the one of the captures.
func TestCompareReports(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, name := range []string{"http1-nokeepalive.pcapng", "http1-keepalive.pcapng"} {
		b, err := analyseCapture(context.Background(), pcaps+name, LoadOptions{Config: analyze.DefaultConfig()})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var sides []*Side
	for i, p := range paths {
		s, err := Load(context.Background(), p, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Source = []string{"testdata/pcaps/http1-nokeepalive.pcapng", "testdata/pcaps/http1-keepalive.pcapng"}[i]
		sides = append(sides, s)
	}
	fromReports := Compare(sides[0], sides[1], Options{})
	fromCaptures := Compare(load(t, "http1-nokeepalive.pcapng"), load(t, "http1-keepalive.pcapng"), Options{})
	var a, b bytes.Buffer
	fromReports.WriteJSON(&a)
	fromCaptures.WriteJSON(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("reports and captures compare differently:\n%s", golden.FirstDiff(a.String(), b.String()))
	}
	if _, err := Load(context.Background(), paths[0]+".x", LoadOptions{}); err == nil {
		t.Error("a missing file loads")
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"other/v1"}`), 0o644)
	if _, err := Load(context.Background(), bad, LoadOptions{}); err == nil || err.Error() != bad+`: not an h2scope report (schema "other/v1")` {
		t.Errorf("foreign JSON: %v", err)
	}
}

// TestGolden renders one comparison in every format.
func TestGolden(t *testing.T) {
	r := Compare(load(t, "http1-nokeepalive.pcapng"), load(t, "http1-keepalive.pcapng"), Options{})
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"churn.json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }},
		{"churn.md", func(b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
		{"churn.txt", func(b *bytes.Buffer) error { return r.WriteTable(b) }},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "testdata/golden/"+f.name, b.Bytes())
	}
}

func TestPairPools(t *testing.T) {
	ps := func(keys ...string) map[string]*PoolStats {
		m := map[string]*PoolStats{}
		for _, k := range keys {
			m[k] = &PoolStats{}
		}
		return m
	}
	for _, tt := range []struct {
		name          string
		before, after map[string]*PoolStats
		match         map[string]string
		want          map[string]string
	}{
		{"same key", ps("api:443", "db:5432"), ps("db:5432", "api:443"), nil, map[string]string{"api:443": "api:443", "db:5432": "db:5432"}},
		{"port changed, name unique", ps("api:40123"), ps("api:39095"), nil, map[string]string{"api:40123": "api:39095"}},
		{"name ambiguous", ps("api:1", "api:2"), ps("api:3"), nil, map[string]string{}},
		{"by hand", ps("old:443", "x:80"), ps("new:443"), map[string]string{"old:443": "new:443"}, map[string]string{"old:443": "new:443"}},
		{"by hand, names only", ps("old:443"), ps("new:8443"), map[string]string{"old": "new"}, map[string]string{"old:443": "new:8443"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := pairPools(tt.before, tt.after, tt.match)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestChanges(t *testing.T) {
	f := func(sev analyze.Severity, m map[string]any) *Finding { return &Finding{Severity: sev, Metrics: m} }
	for _, tt := range []struct {
		name string
		b, a *Finding
		want []string
	}{
		{"alike", f(analyze.Warning, map[string]any{"connections": 15.0}), f(analyze.Warning, map[string]any{"connections": 16.0}), nil},
		{"severity", f(analyze.Warning, nil), f(analyze.Critical, nil), []string{"severity warning → critical"}},
		{"metric", f(analyze.Info, map[string]any{"requests_per_conn": 1.0, "client_port_min": 1.0}), f(analyze.Info, map[string]any{"requests_per_conn": 10.667, "client_port_min": 9.0}),
			[]string{"requests_per_conn 1 → 10.667"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := changes(tt.b, tt.a)
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCompareMethods puts the gRPC methods side by side: a cancel storm
// after a healthy run fails nearly every Echo call.
func TestCompareMethods(t *testing.T) {
	r := Compare(load(t, "grpc-unary-h2c.pcapng"), load(t, "grpc-cancel-storm.pcapng"), Options{})
	var echo *MethodDiff
	for i := range r.Methods {
		if r.Methods[i].Method == "/h2scope.capgen.Lab/Echo" {
			echo = &r.Methods[i]
		}
	}
	if echo == nil || echo.Before == nil || echo.After == nil {
		t.Fatalf("methods %+v: want Echo on both sides", r.Methods)
	}
	if echo.Before.Failed*2 >= echo.Before.Calls || echo.After.Failed*10 < echo.After.Calls*9 {
		t.Errorf("Echo failed %d of %d -> %d of %d: want under half, then nearly all", echo.Before.Failed, echo.Before.Calls, echo.After.Failed, echo.After.Calls)
	}
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil || !bytes.Contains(b.Bytes(), []byte("| /h2scope.capgen.Lab/Echo | ")) {
		t.Errorf("Markdown lacks the method row (%v):\n%s", err, b.String())
	}
}

// TestCompareByCause pairs findings by kind, cause and pool: the same
// kind with another cause is one resolved and one new finding; severity
// changes make a finding changed, and worse when it rose.
func TestCompareByCause(t *testing.T) {
	side := func(name string, fs ...Finding) *Side {
		s := &Side{Source: name, Findings: fs, conns: map[int]ConnRecord{0: {ID: 0, Server: "10.0.0.1:443"}}}
		s.Tables.Pools = []analyze.PoolRow{{Client: "10.0.0.2", Server: "10.0.0.1:443", Name: "api.example", Connections: 4, Requests: 8}}
		return s
	}
	f := func(kind, cause string, sev analyze.Severity) Finding {
		return Finding{ID: kind + "-1", Kind: kind, Cause: cause, Severity: sev, Connections: []int{0}}
	}
	before := side("b", f("connection_lost", "server_abort", analyze.Critical), f("goaway", "", analyze.Info), f("rst_storm", "", analyze.Warning))
	after := side("a", f("connection_lost", "client_abort", analyze.Warning), f("goaway", "", analyze.Critical), f("rst_storm", "", analyze.Warning))
	r := Compare(before, after, Options{})
	got := map[string]string{}
	for _, d := range r.Findings {
		if d.Pool != "api.example:443" {
			t.Errorf("%s: pool %q, want api.example:443", d.Kind, d.Pool)
		}
		got[d.Kind+"/"+d.Cause] = d.Status
	}
	want := map[string]string{
		"connection_lost/server_abort": Resolved, "connection_lost/client_abort": New,
		"goaway/": Changed, "rst_storm/": Unchanged,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	if !r.FailOn(analyze.Critical) {
		t.Error("goaway rose to critical: FailOn(critical) is false")
	}
	if r.Findings[0].Status != New || r.Findings[len(r.Findings)-1].Status != Unchanged {
		t.Errorf("order: %s first, %s last; want new first, unchanged last", r.Findings[0].Status, r.Findings[len(r.Findings)-1].Status)
	}
}

// TestPoolFigures: the figures findings give a pool — error rate, resets
// per 1,000 requests by cause, stalled time — and which side holds
// TIME_WAIT, before and after.
func TestPoolFigures(t *testing.T) {
	side := func(name string, closedByClient, closedByServer int, fs ...Finding) *Side {
		s := &Side{Source: name, Findings: fs, conns: map[int]ConnRecord{0: {ID: 0, Server: "10.0.0.1:443"}}}
		s.Tables.Pools = []analyze.PoolRow{{Client: "10.0.0.2", Server: "10.0.0.1:443", Name: "api.example", Connections: 4,
			Requests: 200, ClosedByClient: closedByClient, ClosedByServer: closedByServer}}
		return s
	}
	f := func(kind, cause string, m map[string]any) Finding {
		return Finding{ID: kind + "-1", Kind: kind, Cause: cause, Severity: analyze.Warning, Connections: []int{0}, Metrics: m}
	}
	before := side("b", 1, 3,
		f("request_errors", "unavailable", map[string]any{"failed": 50.0, "requests": 200.0}),
		f("rst_storm", "client_cancel", map[string]any{"streams_reset": 40.0}),
		f("window_stall", "h2_stream_window", map[string]any{"total_stall_ms": 1500.0}))
	after := side("a", 4, 0)
	after.Tables.Pools[0].HandshakeP50MS, after.Tables.Pools[0].HandshakeP99MS = 5, 9
	p := pool(t, Compare(before, after, Options{}))
	b, a := p.Before, p.After
	if b.HandshakeP50MS != nil || a.HandshakeP50MS == nil || *a.HandshakeP50MS != 5 || *a.HandshakeP99MS != 9 {
		t.Errorf("handshake p50 %v → %v, want none → 5 ms", b.HandshakeP50MS, a.HandshakeP50MS)
	}
	if b.TimeWait != "server" || a.TimeWait != "client" {
		t.Errorf("TIME_WAIT %q → %q, want server → client", b.TimeWait, a.TimeWait)
	}
	if b.ErrorRate == nil || *b.ErrorRate != 0.25 || a.ErrorRate != nil {
		t.Errorf("error rate %v → %v, want 0.25 → none", b.ErrorRate, a.ErrorRate)
	}
	if b.ResetsPer1000["client_cancel"] != 200 || len(a.ResetsPer1000) != 0 {
		t.Errorf("resets per 1,000 requests %v → %v, want client_cancel 200 → none", b.ResetsPer1000, a.ResetsPer1000)
	}
	if b.StalledMS == nil || *b.StalledMS != 1500 || a.StalledMS != nil {
		t.Errorf("stalled %v → %v, want 1500 ms → none", b.StalledMS, a.StalledMS)
	}
}

// TestCompareRoutes puts HTTP request latency by method and path class
// side by side on captures (the figures are the analysis's, checked
// against tshark in analyze's TestRoutesCaptures): keep-alive off, then
// on, the same server under another port, paired by name.
func TestCompareRoutes(t *testing.T) {
	r := Compare(load(t, "http1-nokeepalive.pcapng"), load(t, "http1-keepalive.pcapng"), Options{})
	type row struct {
		method, path  string
		before, after int // requests
		p99b, p99a    float64
		onlyAfter     bool
	}
	want := []row{
		{"GET", "/also/missing", 0, 1, 0, 0.014, true},
		{"GET", "/bytes/:id", 9, 18, 0.084, 1.558, false},
		{"GET", "/missing", 1, 1, 0.056, 0.062, false},
		{"GET", "/slow/:id", 1, 4, 5.576, 102.513, false},
		{"POST", "/upload", 4, 8, 0.044, 0.094, false},
	}
	if len(r.Routes) != len(want) {
		t.Fatalf("routes %+v, want %d", r.Routes, len(want))
	}
	for i, w := range want {
		d := r.Routes[i]
		if d.Pool != "127.0.0.1:40123 → 127.0.0.1:39095" || d.Method != w.method || d.Path != w.path || d.After == nil ||
			d.After.Requests != w.after || *d.After.P99MS != w.p99a {
			t.Errorf("route %d = %+v (after %+v), want %+v", i, d, d.After, w)
			continue
		}
		if w.onlyAfter {
			if d.Before != nil {
				t.Errorf("%s %s: before %+v, want none", w.method, w.path, d.Before)
			}
		} else if d.Before == nil || d.Before.Requests != w.before || *d.Before.P99MS != w.p99b {
			t.Errorf("%s %s: before %+v, want %d requests, p99 %v", w.method, w.path, d.Before, w.before, w.p99b)
		}
	}
}

// TestCompareTLSHandshake shows the pools' TLS handshake p50/p99 before
// and after: full handshakes refused resumption, then resumed ones,
// within 1% of tshark's nearest-rank figures of the ClientHello to the
// client's Finished (decrypted with the key logs; here without them,
// the client's first protected record, which carries the Finished).
func TestCompareTLSHandshake(t *testing.T) {
	p := pool(t, Compare(load(t, "tls13-resume-fail.pcapng"), load(t, "tls13-resume.pcapng"), Options{}))
	within := func(got *float64, want float64) bool { return got != nil && *got >= 0.99*want && *got <= 1.01*want }
	for _, c := range []struct {
		s        *PoolStats
		p50, p99 float64
	}{
		{p.Before, 2.193663, 2.996379}, // 5 full handshakes
		{p.After, 0.587135, 2.551795},  // 1 full, 4 resumed
	} {
		if !within(c.s.TLSHandshakeP50MS, c.p50) || !within(c.s.TLSHandshakeP99MS, c.p99) {
			t.Errorf("TLS handshake p50/p99 %v / %v, tshark %v / %v", fval(c.s.TLSHandshakeP50MS), fval(c.s.TLSHandshakeP99MS), c.p50, c.p99)
		}
	}
}

// TestRoutesUnpaired: routes of pools that pair with nothing stand
// alone, under their own pool; routes of paired pools under the pair's
// label, --match pairing renamed servers; "(other)" last in its pool.
func TestRoutesUnpaired(t *testing.T) {
	side := func(name, server, host string, rows ...analyze.RouteRow) *Side {
		s := &Side{Source: name, conns: map[int]ConnRecord{}}
		s.Tables.Pools = []analyze.PoolRow{{Client: "10.0.0.2", Server: server, Name: host, Connections: 1, Requests: 1}}
		for i := range rows {
			rows[i].Client, rows[i].Server, rows[i].Name = "10.0.0.2", server, host
		}
		s.Tables.Routes = rows
		return s
	}
	rr := func(method, path string, n int, p50 float64) analyze.RouteRow {
		return analyze.RouteRow{Method: method, Path: path, Requests: n, Answered: n, P50MS: p50, P99MS: 2 * p50, MaxMS: 2 * p50}
	}
	before := side("b", "10.0.0.1:443", "old.example", rr("GET", "/a", 2, 1), rr(analyze.OtherRoute, analyze.OtherRoute, 5, 3), rr("POST", "/b", 1, 4))
	after := side("a", "10.0.0.9:443", "new.example", rr("GET", "/a", 3, 2))
	r := Compare(before, after, Options{})
	if len(r.Routes) != 4 || r.Routes[0].Pool != "new.example:443" || r.Routes[0].Before != nil ||
		r.Routes[1].Pool != "old.example:443" || r.Routes[3].Path != analyze.OtherRoute || r.Routes[3].After != nil {
		t.Fatalf("unpaired routes: %+v", r.Routes)
	}
	r = Compare(before, after, Options{Match: map[string]string{"old.example": "new.example"}})
	if len(r.Routes) != 3 || r.Routes[0].Pool != "old.example:443 → new.example:443" || r.Routes[0].Path != "/a" ||
		r.Routes[0].Before == nil || r.Routes[0].After == nil || *r.Routes[0].Before.P50MS != 1 || *r.Routes[0].After.P50MS != 2 ||
		r.Routes[2].Path != analyze.OtherRoute {
		t.Fatalf("matched routes: %+v", r.Routes)
	}
}
