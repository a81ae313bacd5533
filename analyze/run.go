package analyze

import (
	"context"
	"sync"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// Run dissects files with opts (its Sink, OnApp and OnConn are replaced) and
// analyses the result with cfg, keeping every connection's full records
// in the Input for report.New: memory grows with the capture. Stream
// does the same in memory bounded by the open connections and the pools.
func Run(ctx context.Context, files []string, opts dissect.Options, cfg Config) (Result, *Input, error) {
	k := NewCollector(cfg)
	k.Keep = true
	return runCollector(ctx, files, opts, cfg, k)
}

// Stream is Run for captures of any size: each connection is analysed
// when its application part is over (a few seconds of capture time after
// it closed, see dissect.Options.OnApp, or when it finishes) and passed to
// sink's Add (when sink is not nil) with its full records, which are then
// released, and folded into the analysis when it finishes (see
// Collector), after sink's Done saw its final summary: nothing is kept
// per finished connection, and the Input holds the run's statistics
// only, no connection.
//
// With opts.Shards above 1 the capture is tracked, dissected and
// analysed in that many parts by connection, merged at the end (see
// State): the result is the same, but sink is called from several
// goroutines at once, with provisional connection IDs (the Stats'
// IDs map them to final ones).
func Stream(ctx context.Context, files []string, opts dissect.Options, cfg Config, sink ConnSink) (Result, *Input, error) {
	if opts.Shards > 1 {
		return runSharded(ctx, files, opts, cfg, sink)
	}
	k := NewCollector(cfg)
	k.setSink(sink)
	k.DropConns = true
	return runCollector(ctx, files, opts, cfg, k)
}

// A ConnSink receives each connection of a Stream twice: Add with its
// full records, once its application part is over, and Done once it
// finished, its summary final (TCP summary, SYN, FIN, RST and window
// refs). Done gets the Conn Add got or a copy of it made after Add
// returned (so it carries what Add set in SinkTag), maybe on another
// goroutine, while Add runs for later connections: a sink must be safe
// for that, read the Conn Done gets, and hold neither once Done returns
// (the Collector reuses them). Connections still open when the run ends
// get no Done; the Conns Add got for them stay as they are.
type ConnSink interface {
	Add(c *Conn)
	Done(c *Conn)
}

// collecting sets in opts what every analysis dissects with: the
// application dissectors, keeping their HTTP/1 exchanges, and a tracker
// reusing finished connections (the Collectors copy what they keep of
// a tcp.Conn).
func collecting(opts *dissect.Options) {
	opts.Dissect, opts.Exchanges = true, true
	opts.TCP.ReuseConns = true
}

func runCollector(ctx context.Context, files []string, opts dissect.Options, cfg Config, k *Collector) (Result, *Input, error) {
	collecting(&opts)
	opts.Shards = 0
	opts.Sink, opts.OnApp, opts.OnConn = k, k.App, k.Finish
	var st dissect.Stats
	var err error
	if useAsync() {
		a := newAsync(k)
		opts.Sink, opts.OnApp, opts.OnConn = a, a.App, a.Finish
		var d *pipe[Conn]
		if done := k.OnDone; done != nil {
			// The sink's Done, a third of the work on captures of many
			// short connections, on a goroutine of its own too: it gets
			// a copy of each finished Conn.
			d = newPipe(func(c *Conn) {
				done(c)
				*c = Conn{} // nothing of it stays reachable from the batch
			})
			k.OnDone = func(c *Conn) {
				cp := d.next()
				c.copyTo(cp)
				d.sent()
			}
		}
		func() {
			defer func() {
				if d != nil {
					defer d.wait() // after a's: its calls send to d
				}
				a.wait()
			}()
			st, err = dissect.Run(ctx, files, opts)
		}()
	} else {
		st, err = dissect.Run(ctx, files, opts)
	}
	if err != nil {
		return Result{}, &Input{Conns: k.Conns(), Stats: st}, err
	}
	res, in := k.Result(st)
	return res, in, nil
}

// runSharded is Stream with opts.Shards above 1: see streamShards;
// the merged State is the analysis of the whole capture, whose IDs
// result makes final (see ids.go).
func runSharded(ctx context.Context, files []string, opts dissect.Options, cfg Config, sink ConnSink) (Result, *Input, error) {
	s, st, err := streamShards(ctx, files, opts, cfg, sink)
	if err != nil {
		return Result{}, &Input{Stats: st}, err
	}
	return s.Result(st), &Input{Stats: st}, nil
}

// streamShards dissects files with opts split over max(opts.Shards, 1)
// goroutine shards (within opts.ShardOf's, if set), each with its own
// Collector calling sink from the shard's goroutine, and returns their
// States merged once the run is over, with the run's statistics.
// opts.OnSegment, the caller's, is called under a lock: it expects one
// goroutine.
func streamShards(ctx context.Context, files []string, opts dissect.Options, cfg Config, sink ConnSink) (*State, dissect.Stats, error) {
	collecting(&opts)
	ks := make([]*Collector, max(opts.Shards, 1))
	for i := range ks {
		ks[i] = NewCollector(cfg)
		ks[i].setSink(sink)
		ks[i].DropConns = true
	}
	onSegment := opts.OnSegment
	if f := onSegment; f != nil {
		var mu sync.Mutex
		onSegment = func(c *tcp.Conn, dir event.Dir, s *layer.Segment, a tcp.Analysis) {
			mu.Lock()
			defer mu.Unlock()
			f(c, dir, s, a)
		}
	}
	opts.Sink, opts.OnApp, opts.OnConn, opts.OnSegment = nil, nil, nil, nil
	opts.Shard = func(i int) dissect.ShardHooks {
		return dissect.ShardHooks{Sink: ks[i], OnApp: ks[i].App, OnConn: ks[i].Finish, OnSegment: onSegment}
	}
	st, err := dissect.Run(ctx, files, opts)
	if err != nil {
		return nil, st, err
	}
	s := ks[0].State()
	for _, o := range ks[1:] {
		s.Merge(o.State())
	}
	return s, st, nil
}
