package analyze

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// TestStreamMatchesRun checks that the streaming analysis, which releases
// each connection's records once the detectors read them, reports exactly
// what the analysis over kept records (Run) does, on every capture of
// testdata/pcaps.
func TestStreamMatchesRun(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(pcaps, "*.pcapng"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s: %v", pcaps, err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".pcapng")
		t.Run(name, func(t *testing.T) {
			opts := func() dissect.Options {
				o := dissect.Options{Keys: tls.NewKeyLog()}
				if b, err := readIfExists(filepath.Join(pcaps, name+".keys")); err != nil {
					t.Fatal(err)
				} else if b != nil {
					o.Keys.Add(b, name+".keys")
				}
				return o
			}
			want, _ := analyzeCapture(t, name)
			sink := &checkSink{t: t, added: map[event.ConnID]*Conn{}, done: map[event.ConnID]bool{}}
			got, in, err := Stream(context.Background(), []string{path}, opts(), DefaultConfig(), sink)
			if err != nil {
				t.Fatal(err)
			}
			if len(in.Conns) != 0 {
				t.Errorf("the Input holds %d connections, want none (the analysis keeps none)", len(in.Conns))
			}
			if _, all := analyzeCapture(t, name); len(sink.added) != len(all.Conns) || len(sink.done) != len(all.Conns) {
				t.Errorf("the sink saw %d connections added and %d done, Run %d", len(sink.added), len(sink.done), len(all.Conns))
			}
			wb, _ := json.Marshal(want)
			gb, _ := json.Marshal(got)
			if string(wb) != string(gb) {
				t.Errorf("Stream's result differs from Run's:\n got %s\nwant %s", gb, wb)
			}
		})
	}
}

// checkSink is a ConnSink that checks what a Stream hands it: every
// connection once to Add with its records, then once to Done (the same
// Conn or a copy), its records released.
type checkSink struct {
	mu    sync.Mutex // Add and Done may run at once (ConnSink)
	t     *testing.T
	added map[event.ConnID]*Conn // not read after Done: the Collector reuses it
	done  map[event.ConnID]bool
}

func (s *checkSink) Add(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.added[c.ID()] != nil {
		s.t.Errorf("connection %d: Add called twice", c.ID())
	}
	s.added[c.ID()] = c
	if c.Records == nil {
		s.t.Errorf("connection %d: released before Add", c.ID())
	}
}

func (s *checkSink) Done(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.ID()
	switch {
	case s.added[id] == nil:
		s.t.Errorf("connection %d: Done without Add", id)
	case s.done[id]:
		s.t.Errorf("connection %d: Done called twice", id)
	case c.sum == nil || c.Records != nil || c.App != nil && (c.App.Streams != nil || c.App.Calls != nil || c.App.HTTP2 != nil && c.App.HTTP2.Stalls != nil):
		s.t.Errorf("connection %d: records not released by Done", id)
	}
	s.done[id] = true
}

// TestRequestsCountDroppedStreams is the regression test for the pools
// table counting 39,827 requests for 40,000 gRPC calls: the HTTP/2 streams
// past the dissector's record bound have no exchange but are requests.
func TestRequestsCountDroppedStreams(t *testing.T) {
	c := conn(1, "10.0.0.1:40000", "10.0.0.2:443", 1, 0, 10)
	c.App = &dissect.App{Proto: event.ProtoHTTP2, HTTP2: &http2.Summary{Streams: 7, StreamsDropped: 4}}
	c.Records.Streams = []http2.Stream{{ID: 1}, {ID: 3}}
	c.Records.Exchanges = []Exchange{{Proto: event.ProtoHTTP2, Stream: 1, Authority: "api.test", Method: "GET", Path: "/a", Request: refp(ref(2, 1))},
		{Proto: event.ProtoHTTP2, Stream: 3}}
	c.Records.ExchangesDropped = 1
	check := func(when string) {
		t.Helper()
		if n, ok := requests(c); n != 7 || !ok {
			t.Errorf("%s: requests = %d, %v; want 7, true", when, n, ok)
		}
		if got := c.Authority(); got != "api.test" {
			t.Errorf("%s: Authority() = %q, want api.test", when, got)
		}
		if x := churnRequestOf(c); x == nil || x.stream != 1 || x.method != "GET" || x.path != "/a" || x.ref.Frame != 2 {
			t.Errorf("%s: churnRequestOf = %+v, want GET /a on stream 1 at frame 2", when, x)
		}
	}
	c.summarize()
	check("before release")
	app := c.App
	c.release()
	check("after release")
	if c.Records != nil {
		t.Error("Records not nil after release")
	}
	if c.App != app || app.HTTP2.StreamsDropped != 4 || app.HTTP2.Streams != 7 {
		t.Error("release changed the App's summary")
	}
	rows := buildTables(&Input{Conns: []*Conn{c}}).Pools
	if len(rows) != 1 || rows[0].Requests != 7 {
		t.Errorf("pools = %+v, want one row with 7 requests", rows)
	}
}

// TestCollectorTakesRecords checks that the Collector moves the
// dissectors' records (HTTP/2 streams, gRPC calls, connection-window
// stalls) out of the App into the Conn's Records, which OnConn reads and
// release drops: the App the Conn keeps never holds them.
func TestCollectorTakesRecords(t *testing.T) {
	for _, keep := range []bool{false, true} {
		k := NewCollector(Config{})
		k.Keep = keep
		var seen *Records
		k.OnConn = func(c *Conn) { r := *c.Records; seen = &r }
		tc := &tcp.Conn{}
		tc.ID = 3
		tc.Client = netip.MustParseAddrPort("10.0.0.1:40000")
		tc.Server = netip.MustParseAddrPort("10.0.0.2:443")
		app := &dissect.App{Proto: event.ProtoHTTP2, HTTP2: &http2.Summary{Streams: 1, Stalls: []http2.Stall{{Dir: event.S2C}}},
			Streams: []http2.Stream{{ID: 1, Initiator: "client", Method: "POST", Path: "/s.S/M", FirstHeaders: refp(ref(4, 0))}},
			Calls:   []grpc.Call{{Stream: 1, RequestMessages: 2}}}
		k.App(tc, app)
		k.Finish(tc, nil)
		if seen == nil || len(seen.Streams) != 1 || len(seen.Calls) != 1 || len(seen.Stalls) != 1 || len(seen.Exchanges) != 1 {
			t.Fatalf("keep=%v: OnConn saw records %+v, want one stream, call, stall and exchange", keep, seen)
		}
		if app.Streams != nil || app.Calls != nil || app.HTTP2.Stalls != nil {
			t.Errorf("keep=%v: the App still holds records after the Collector took them", keep)
		}
		cs := k.Conns()
		if len(cs) != 1 {
			t.Fatalf("keep=%v: %d conns, want 1", keep, len(cs))
		}
		if got := cs[0].Records != nil; got != keep {
			t.Errorf("keep=%v: records kept = %v", keep, got)
		}
		if !streamingCall(cs[0]) {
			t.Errorf("keep=%v: the summary lost the streaming call", keep)
		}
	}
}

// TestAsyncMatchesSerial checks that a run analysing beside the
// dissection (asyncCollector) hands the Collector exactly what a run on
// one goroutine does: the same result and the same connections, in the
// same order, with the same records, on every capture of testdata/pcaps.
func TestAsyncMatchesSerial(t *testing.T) {
	files := allCaptures(t)
	defer func(n int) { asyncMinProcs = n }(asyncMinProcs)
	run := func(t *testing.T, path string, minProcs int) string {
		asyncMinProcs = minProcs
		opts := captureOptions(t, path)
		// Add and Done may run on goroutines of their own: each list is
		// one's, in its order.
		var added, done []string
		sink := sinkFuncs{add: func(c *Conn) {
			b, err := json.Marshal(struct {
				TCP     any
				Records *Records
				App     *dissect.App
			}{c.TCP, c.Records, c.App})
			if err != nil {
				t.Fatal(err)
			}
			added = append(added, string(b))
		}, done: func(c *Conn) {
			b, _ := json.Marshal(struct{ TCP, SYNs, FIN, RST any }{c.TCP, c.SYNs, c.FIN, c.RST})
			done = append(done, string(b))
		}}
		res, _, err := Stream(context.Background(), []string{path}, opts, DefaultConfig(), sink)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res)
		return string(b) + "\nadded:\n" + strings.Join(added, "\n") + "\ndone:\n" + strings.Join(done, "\n")
	}
	// Batches of 2 make the goroutines meet at every other call: a
	// race or an ordering fault shows on these small captures too.
	defer func(n int) { asyncBatch = n }(asyncBatch)
	for _, batch := range []int{asyncBatch, 2} {
		asyncBatch = batch
		for _, path := range files {
			name, _ := filepath.Rel(pcaps, path)
			t.Run(fmt.Sprintf("%s/batch%d", strings.TrimSuffix(name, ".pcapng"), batch), func(t *testing.T) {
				serial, async := run(t, path, 1<<30), run(t, path, 1)
				if serial != async {
					t.Errorf("the analysis beside the dissection differs from the serial one:\nasync  %.2000s\nserial %.2000s", async, serial)
				}
			})
		}
	}
}

// sinkFuncs is a ConnSink of two functions.
type sinkFuncs struct{ add, done func(*Conn) }

func (s sinkFuncs) Add(c *Conn)  { s.add(c) }
func (s sinkFuncs) Done(c *Conn) { s.done(c) }

// TestAsyncPanicSurfaces checks that a panic on the analysis goroutine
// (a bug in a detector or the sink) reaches Stream's caller with its
// value, rather than hanging the run or ending the process.
func TestAsyncPanicSurfaces(t *testing.T) {
	defer func(n, b int) { asyncMinProcs, asyncBatch = n, b }(asyncMinProcs, asyncBatch)
	asyncMinProcs = 1
	asyncBatch = 2 // the panic is raised again at a full batch, on either goroutine
	path := filepath.Join(pcaps, "http1-nokeepalive.pcapng")
	for _, where := range []string{"add", "done"} {
		t.Run(where, func(t *testing.T) {
			sink := sinkFuncs{add: func(*Conn) {}, done: func(*Conn) {}}
			boom := func(*Conn) { panic("boom in " + where) }
			if where == "add" {
				sink.add = boom
			} else {
				sink.done = boom
			}
			defer func() {
				x := recover()
				p, ok := x.(takePanic)
				if !ok || p.v != "boom in "+where || p.Error() != "boom in "+where || !strings.Contains(string(p.stack), "analyze") {
					t.Errorf("Stream panicked with %#v, want the sink's panic, once, with its stack", x)
				}
			}()
			Stream(context.Background(), []string{path}, dissect.Options{}, DefaultConfig(), sink)
			t.Errorf("Stream returned; want the sink's panic")
		})
	}
}

// TestAsyncBoundsRecords checks that the Apps handed to the analysis
// goroutine and not analysed yet hold at most about asyncMaxRecords
// streams and calls, however far the dissection runs ahead: a capture
// of many connections of a few hundred streams each must not hold
// thousands of them at once.
func TestAsyncBoundsRecords(t *testing.T) {
	k := NewCollector(DefaultConfig())
	k.DropConns = true
	var a *asyncCollector
	var most int64
	k.OnConn = func(*Conn) {
		most = max(most, a.records.Load())
		time.Sleep(20 * time.Microsecond) // an analysis slower than the dissection
	}
	a = newAsync(k)
	const streams = 255
	for i := range 2000 {
		tc := &tcp.Conn{}
		tc.ID = event.ConnID(i)
		a.App(tc, &dissect.App{Streams: make([]http2.Stream, streams)})
		a.Finish(tc, nil)
	}
	a.wait()
	if most > asyncMaxRecords+streams {
		t.Errorf("%d streams and calls waited for the analysis at once, want at most %d", most, asyncMaxRecords+streams)
	}
	if most == 0 {
		t.Errorf("no App was seen in flight: the test measures nothing")
	}
}

// poison overwrites everything r holds or points to, as reusing the
// records' memory would.
func poison(r *Records) {
	bad := event.Ref{File: 99, Frame: 1 << 40}
	at := func(ps ...*event.Ref) {
		for _, p := range ps {
			if p != nil {
				*p = bad
			}
		}
	}
	for i := range r.HTTP1 {
		h := &r.HTTP1[i]
		at(&h.Request, &h.RequestEnd, &h.Response)
		h.Method, h.Target, h.Host, h.Status = "POISON", "/poison", "poison", 999
	}
	for i := range r.Exchanges {
		x := &r.Exchanges[i]
		at(x.Request, x.RequestEnd, x.Response, x.ResponseEnd)
		if x.Reset != nil {
			at(&x.Reset.Ref)
		}
		x.Method, x.Path, x.Authority, x.Status = "POISON", "/poison", "poison", 999
	}
	for i := range r.Streams {
		s := &r.Streams[i]
		at(s.FirstHeaders, s.ReplyHeaders, s.ClientEnd, s.ServerEnd)
		s.Method, s.Path, s.Status = "POISON", "/poison", 999
	}
	for i := range r.Resets {
		at(&r.Resets[i].Ref)
	}
	for i := range r.Pings {
		at(&r.Pings[i].Ref)
	}
	for i := range r.Stalls {
		at(&r.Stalls[i].Start, r.Stalls[i].End)
	}
	for i := range r.Calls {
		r.Calls[i].Method = "/poison.P/P"
	}
}

// TestReleasedRecordsUnread checks that nothing the analysis keeps of a
// connection points into its records, which are released once every
// detector observed it: a sink that overwrites them then (as reusing
// their memory would) changes no finding, table or count, on every
// project capture. A detector keeping a pointer into the HTTP/1
// dissector's records (which the exchanges point into) also held the
// connection's whole records until the run ended.
func TestReleasedRecordsUnread(t *testing.T) {
	for _, path := range allCaptures(t) {
		var poisoned int
		got := streamJSON(t, path, sinkFuncs{add: func(c *Conn) {
			if c.Records != nil {
				poison(c.Records)
				poisoned++
			}
		}, done: func(*Conn) {}})
		if want := streamJSON(t, path, nil); got != want {
			t.Errorf("%s: the result changed when the records were overwritten once observed:\n got %.2000s\nwant %.2000s", filepath.Base(path), got, want)
		}
		if poisoned == 0 {
			t.Errorf("%s: no connection's records were seen", filepath.Base(path))
		}
	}
}

// allCaptures returns the captures of testdata/pcaps, the other stacks'
// included.
func allCaptures(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(pcaps, "*.pcapng"))
	more, _ := filepath.Glob(filepath.Join(pcaps, "*", "*.pcapng")) // the other stacks'
	files = append(files, more...)
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in %s: %v", pcaps, err)
	}
	return files
}

// captureOptions returns the dissection options for the capture path:
// its key log (path's name ending .keys) when there is one.
func captureOptions(t *testing.T, path string) dissect.Options {
	t.Helper()
	opts := dissect.Options{Keys: tls.NewKeyLog()}
	keys := strings.TrimSuffix(path, ".pcapng") + ".keys"
	if b, err := readIfExists(keys); err != nil {
		t.Fatal(err)
	} else if b != nil {
		opts.Keys.Add(b, keys)
	}
	return opts
}

// TestReusedConnsUnread checks that nothing the analysis keeps points
// into a Conn's own storage (the lone SYN that SYNs points to, the FIN
// and RST refs, the TCP summary, the records, the summary facts), which
// the Collector zeroes and reuses for the next connection: the result is
// the same as when no Conn is reused.
func TestReusedConnsUnread(t *testing.T) {
	for _, path := range allCaptures(t) {
		got := streamJSON(t, path, nil)
		noReuse = true
		want := streamJSON(t, path, nil)
		noReuse = false
		if got != want {
			t.Errorf("%s: the result changed when the Collector reused its Conns:\n got %.2000s\nwant %.2000s", filepath.Base(path), got, want)
		}
	}
}

// streamJSON returns the result of Stream on the capture path, with sink,
// as JSON.
func streamJSON(t *testing.T, path string, sink ConnSink) string {
	t.Helper()
	res, _, err := Stream(context.Background(), []string{path}, captureOptions(t, path), DefaultConfig(), sink)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
