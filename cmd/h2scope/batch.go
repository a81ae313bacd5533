package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/batch"
)

// runBatch wires the batch flags to batch.Run: many captures, one JSON
// report per line.
func runBatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, in := newFlags("batch", stderr)
	out := fs.String("out", "", "write the NDJSON reports to `file`, resuming it if it exists (\"-\": standard output, no resuming; required)")
	workers := fs.Int("workers", runtime.NumCPU(), "captures analysed at once")
	gap := fs.Duration("gap", batch.DefaultGap, "most `time` between rotated files of one capture (last packet of one to first of the next)")
	failOn := fs.String("fail-on", "", "exit 1 when a finding reaches this `severity` (warning or critical)")
	cfg := analyze.DefaultConfig()
	cfg.RegisterFlags(fs)
	patterns, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	if *out == "" {
		fmt.Fprintln(stderr, "h2scope batch: --out F is required")
		fs.Usage()
		return exitUsage
	}
	threshold, ok := parseFailOn("batch", *failOn, stderr)
	if !ok {
		return exitUsage
	}
	opts, ok := in.options(stderr) // checks the key log and warns about its lines, once
	if !ok {
		return exitUsage
	}
	bo := batch.Options{Workers: *workers, Gap: *gap, Dissect: opts, Config: &cfg, Redaction: in.red, Log: stderr}
	for _, name := range in.keylogs {
		b, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "h2scope: key log: %v\n", err)
			return exitUsage
		}
		// Merged: one line per secret, so concatenated logs read as one.
		bo.KeyLog = append(bo.KeyLog, b...)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			bo.KeyLog = append(bo.KeyLog, '\n')
		}
		if bo.KeyLogName != "" {
			bo.KeyLogName += "+"
		}
		bo.KeyLogName += name
	}
	sum, err := batch.Run(ctx, patterns, *out, stdout, bo)
	if err == nil || sum.Captures != (batch.Counts{}) {
		sum.Write(stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "h2scope batch: %v\n", err)
		return exitUsage
	}
	if sum.Captures.Failed > 0 || sum.Captures.Partial > 0 {
		return exitUsage
	}
	if *failOn != "" && sum.Reached(threshold) {
		return exitFindings
	}
	return exitOK
}
