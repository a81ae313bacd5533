package analyze

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

func TestPathClass(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "/"},
		{"", ""},
		{"*", "*"},
		{"example.com:443", ":authority"},
		{"/bytes/1200", "/bytes/:id"},
		{"/bytes/1200?x=1&y=2", "/bytes/:id"},
		{"/a/b#frag", "/a/b"},
		{"/users/42/orders/7", "/users/:id/orders/:id"},
		{"/v1/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/v1/items/:id"},
		{"/blob/deadbeef0042", "/blob/:id"},
		{"/blob/deadbeef", "/blob/deadbeef"}, // hex letters only: a word
		{"/static/app.js", "/static/app.js"},
		{"/t/dGhpcyBpcyBhIHRva2Vu42", "/t/:id"},
		{"/t/image-2026-12-07.png", "/t/:id"},
		{"/t/short-name-1", "/t/short-name-1"},
		{"/x/" + string(make([]byte, 41)), "/x/:id"},
		{"/a/b/c/d/e/f/g/h/i/j", "/a/b/c/d/e/f/g/h/*"},
		{"/a//b/", "/a//b/"},
		{"http://user:pw@example.com/items/9?q=1", "/items/:id"},
		{"http://example.com", "/"},
		{"/helloworld.Greeter/SayHello", "/helloworld.Greeter/SayHello"},
		{"/a\x1b[31mred/\u202eb c", "/a%1B[31mred/%E2%80%AEb%20c"},
	}
	for _, tt := range tests {
		if got := pathClass(tt.in); got != tt.want {
			t.Errorf("pathClass(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRouteSetOrderFree checks that a pool's route rows past
// maxRouteClasses are the same whatever the order the requests come in
// and however the sets are split and merged: the smallest classes kept,
// the others in "(other)", every count and latency in one of them.
func TestRouteSetOrderFree(t *testing.T) {
	type req struct {
		k  routeKey
		ms float64
	}
	var reqs []req
	for i := range 3 * maxRouteClasses {
		for j := range 1 + i%4 {
			reqs = append(reqs, req{routeKey{"GET", fmt.Sprintf("/r%03d", i)}, float64(1 + i + j)})
		}
	}
	build := func(order []req, parts int) []RouteRow {
		sets := make([]*tableBuilder, parts)
		for i := range sets {
			sets[i] = newTableBuilder()
		}
		k := poolKey{client: netip.MustParseAddr("10.0.0.1"), server: netip.MustParseAddrPort("10.0.0.2:80")}
		for i, r := range order {
			tb := sets[i%parts]
			s := tb.routes[k]
			if s == nil {
				s = &routeSet{}
				tb.routes[k] = s
			}
			a := s.agg(r.k)
			a.requests++
			a.answered++
			a.lat.add(r.ms)
			a.max = max(a.max, r.ms)
		}
		for _, o := range sets[1:] {
			sets[0].routesMerge(o)
		}
		return sets[0].routeRows()
	}
	want := build(reqs, 1)
	if len(want) != maxRouteClasses+1 || want[0].Path != "/r000" || want[maxRouteClasses-1].Path != fmt.Sprintf("/r%03d", maxRouteClasses-1) ||
		want[maxRouteClasses].Path != OtherRoute {
		t.Fatalf("rows: %d, first %+v, last %+v", len(want), want[0], want[len(want)-1])
	}
	total := 0
	for _, r := range want {
		total += r.Requests
	}
	if total != len(reqs) {
		t.Errorf("rows count %d requests, want %d", total, len(reqs))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		order := append([]req(nil), reqs...)
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		if got := build(order, 1+i%4); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d in %d parts: rows differ\n got %+v\nwant %+v", i, 1+i%4, got, want)
		}
	}
}

// TestRoutesGRPCLeftOut checks that gRPC calls are not HTTP routes: a
// stream with a call, or a gRPC status, is the gRPC tables'.
func TestRoutesGRPCLeftOut(t *testing.T) {
	c := conn(1, "10.0.0.1:5000", "10.0.0.2:443", 1, 0, time.Second)
	st := 0
	c.Records.Exchanges = []Exchange{
		{Proto: event.ProtoHTTP2, Stream: 1, Method: "POST", Path: "/pkg.Svc/M", Request: refp(ref(2, 0)), ResponseEnd: refp(ref(3, time.Millisecond)), GRPCStatus: &st},
		{Proto: event.ProtoHTTP2, Stream: 3, Method: "GET", Path: "/items/12", Request: refp(ref(4, 0)), ResponseEnd: refp(ref(5, 2*time.Millisecond))},
		{Proto: event.ProtoHTTP2, Stream: 5, Method: "GET", Path: "/items/13", Request: refp(ref(6, 0))},
	}
	c.summarize()
	tb := newTableBuilder()
	tb.observe(c)
	rows := tb.routeRows()
	if len(rows) != 1 {
		t.Fatalf("rows = %+v", rows)
	}
	r := rows[0]
	if r.Method != "GET" || r.Path != "/items/:id" || r.Requests != 2 || r.Answered != 1 || r.MaxMS != 2 || r.P50MS < 1.98 || r.P50MS > 2 {
		t.Errorf("row = %+v", r)
	}
}

// TestRoutesCaptures checks the route rows of committed captures against
// tshark, per method and path class: the request count, and the
// nearest-rank median, 99th percentile and maximum of the latencies
// (HTTP/1.1: http.time of each http.response; HTTP/2: from the client's
// first HEADERS of a stream to the server's frame with END_STREAM, by
// frame.time_epoch), the percentiles within the sketch's 1%.
func TestRoutesCaptures(t *testing.T) {
	type want struct {
		method, path       string
		requests, answered int
		p50, p99, max      float64 // tshark's, exact
	}
	tests := []struct {
		capture string
		rows    []want
	}{
		{"http1-keepalive", []want{
			{"GET", "/also/missing", 1, 1, 0.013513, 0.013513, 0.013513},
			{"GET", "/bytes/:id", 18, 18, 0.108231, 1.558101, 1.558101},
			{"GET", "/missing", 1, 1, 0.062246, 0.062246, 0.062246},
			{"GET", "/slow/:id", 4, 4, 101.329890, 102.512693, 102.512693},
			{"POST", "/upload", 8, 8, 0.034533, 0.093712, 0.093712},
		}},
		{"http1-small-pool", []want{
			{"GET", "/bytes/:id", 80, 80, 0.301990, 3.147179, 3.147179},
			{"GET", "/slow/:id", 80, 80, 6.015411, 7.316973, 7.316973},
		}},
		{"h2-tls", []want{
			{"GET", "/bytes/:id", 6, 6, 0.824044, 4.018753, 4.018753},
			{"POST", "/upload", 2, 2, 0.346905, 0.791002, 0.791002},
		}},
		{"h2-slow-reader", []want{
			{"GET", "/bytes/:id", 11, 11, 3.679936, 154.360045, 154.360045},
		}},
		// 36 of the 76 streams were refused (RST_STREAM
		// REFUSED_STREAM): no END_STREAM from the server.
		{"h2-max-streams", []want{
			{"GET", "/slow/:id", 76, 40, 50.877998, 51.515693, 51.515693},
		}},
		{"grpc-unary-h2c", nil},
	}
	near := func(got, want float64) bool {
		// Within the sketch's 1% of tshark's figure, after rounding to
		// the microsecond.
		d := got - want
		return d <= 0.01*want+0.0005 && -d <= 0.01*want+0.0005
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			res, _ := analyzeCapture(t, tt.capture)
			rows := res.Tables.Routes
			if len(rows) != len(tt.rows) {
				t.Fatalf("%d rows, want %d: %+v", len(rows), len(tt.rows), rows)
			}
			for i, w := range tt.rows {
				r := rows[i]
				if r.Method != w.method || r.Path != w.path || r.Requests != w.requests || r.Answered != w.answered {
					t.Errorf("row %d = %+v, want %s %s, %d requests, %d answered", i, r, w.method, w.path, w.requests, w.answered)
				}
				if !near(r.P50MS, w.p50) || !near(r.P99MS, w.p99) || !near(r.MaxMS, w.max) || r.P50MS > r.P99MS || r.P99MS > r.MaxMS {
					t.Errorf("%s %s: p50/p99/max %v/%v/%v ms, tshark %v/%v/%v", r.Method, r.Path, r.P50MS, r.P99MS, r.MaxMS, w.p50, w.p99, w.max)
				}
			}
		})
	}
}

// TestTLSHandshakeColumns checks the pools table's TLS handshake p50/p99
// against tshark: per connection, the ClientHello's frame.time_epoch to
// that of the client's Finished (tls.handshake.type == 20 towards the
// server, decrypted with the key log), nearest rank, within the
// sketch's 1%.
func TestTLSHandshakeColumns(t *testing.T) {
	tests := []struct {
		capture  string
		p50, p99 float64 // tshark's, exact
	}{
		// Connections 4 and 8 wait 400 ms for the server's accept.
		{"tls-slow-handshake", 2.564503, 403.106370},
		{"h2-tls", 1.608115, 1.608115},
		{"h2-tls12", 2.573756, 2.573756},
		{"http1-keepalive", 0, 0}, // no TLS: absent
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			res, _ := analyzeCapture(t, tt.capture)
			ps := res.Tables.Pools
			if len(ps) != 1 {
				t.Fatalf("pools = %+v", ps)
			}
			p := ps[0]
			within := func(got, want float64) bool { return got >= want*0.99 && got <= want*1.01 }
			if !within(p.TLSHandshakeP50MS, tt.p50) || !within(p.TLSHandshakeP99MS, tt.p99) {
				t.Errorf("TLS handshake p50/p99 = %v/%v ms, tshark %v/%v", p.TLSHandshakeP50MS, p.TLSHandshakeP99MS, tt.p50, tt.p99)
			}
		})
	}
}

// FuzzPathClass checks that any request target gives a class of
// printable ASCII, bounded in length, that is a path, "*", ":authority"
// or empty.
func FuzzPathClass(f *testing.F) {
	for _, s := range []string{"/", "/bytes/1200?x=1", "*", "example.com:443", "http://h/a/1", "/a\x1b[2J/\u202e", "/1/2/3/4/5/6/7/8/9/10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		c := pathClass(target)
		for i := range len(c) {
			if c[i] <= ' ' || c[i] >= 0x7f {
				t.Fatalf("pathClass(%q) = %q: byte %#x", target, c, c[i])
			}
		}
		if len(c) > 3*(maxPathSegments*(maxSegmentLen+1)+2) {
			t.Fatalf("pathClass(%q) is %d bytes", target, len(c))
		}
		if c != "" && c != "*" && c != ":authority" && c[0] != '/' {
			t.Fatalf("pathClass(%q) = %q", target, c)
		}
	})
}
