package analyze

import (
	"context"

	"github.com/h2scope/h2scope/dissect"
)

// Run dissects files with opts (its Sink and OnConn are replaced) and
// analyses the result with cfg.
func Run(ctx context.Context, files []string, opts dissect.Options, cfg Config) (Result, *Input, error) {
	k := NewCollector()
	opts.Dissect = true
	opts.Sink = k
	opts.OnConn = k.Finish
	st, err := dissect.Run(ctx, files, opts)
	in := &Input{Conns: k.Conns(), Stats: st}
	if err != nil {
		return Result{}, in, err
	}
	return Analyze(in, cfg), in, nil
}
