package analyze

import (
	"context"

	"github.com/h2scope/h2scope/dissect"
)

// Run dissects files with opts (its Sink, OnApp and OnConn are replaced) and
// analyses the result with cfg, keeping every connection's full records
// in the Input for report.New: memory grows with the capture. Stream
// does the same in memory bounded by the open connections and the pools.
func Run(ctx context.Context, files []string, opts dissect.Options, cfg Config) (Result, *Input, error) {
	k := NewCollector(cfg)
	k.Keep = true
	return runCollector(ctx, files, opts, k)
}

// Stream is Run for captures of any size: each connection is analysed
// when its application part is over (a few seconds of capture time after
// it closed, see dissect.Options.OnApp, or when it finishes) and passed to
// onConn (when not nil) with its full records, which are then released,
// and folded into the analysis when it finishes (see Collector): nothing
// is kept per finished connection, and the Input holds the run's
// statistics only, no connection.
func Stream(ctx context.Context, files []string, opts dissect.Options, cfg Config, onConn func(*Conn)) (Result, *Input, error) {
	k := NewCollector(cfg)
	k.OnConn = onConn
	k.DropConns = true
	return runCollector(ctx, files, opts, k)
}

func runCollector(ctx context.Context, files []string, opts dissect.Options, k *Collector) (Result, *Input, error) {
	opts.Dissect = true
	opts.Sink = k
	opts.OnApp = k.App
	opts.OnConn = k.Finish
	st, err := dissect.Run(ctx, files, opts)
	if err != nil {
		return Result{}, &Input{Conns: k.Conns(), Stats: st}, err
	}
	res, in := k.Result(st)
	return res, in, nil
}
