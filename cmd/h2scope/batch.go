package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/batch"
	"github.com/h2scope/h2scope/internal/safeio"
	"github.com/h2scope/h2scope/report"
)

// runBatch wires the batch flags to batch.Run: many captures, one JSON
// report per line.
func runBatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, in := newFlags("batch", stderr)
	out := fs.String("out", "", "write the NDJSON reports to `file`, resuming it if it exists: unchanged captures are reused, changed or failed ones analysed again (\"-\": standard output, no resuming; required); key logs beside the captures (NAME.keys, sslkeylog.txt, ...) are used with --keylog's")
	workers := fs.Int("workers", runtime.NumCPU(), "captures analysed at once")
	gap := fs.Duration("gap", batch.DefaultGap, "most `time` between rotated files of one capture (last packet of one to first of the next)")
	failOn := fs.String("fail-on", "", "exit 1 when a finding reaches this `severity` (warning or critical)")
	progress := fs.Bool("progress", false, "show progress on stderr even when it is not a terminal")
	noProgress := fs.Bool("no-progress", false, "show no progress on stderr (default: shown when stderr is a terminal)")
	connsFlag := fs.String("connections", report.ConnsNamed, "connections and timelines each report holds: `named` (those the findings name: at most 100 of each finding, 2,000 in all), all or none")
	cfg := analyze.DefaultConfig()
	cfg.RegisterFlags(fs)
	patterns, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	selection, err := report.ParseConnections(*connsFlag)
	if err != nil {
		fmt.Fprintf(stderr, "h2scope batch --connections: %v\n", err)
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
	if *progress && *noProgress {
		fmt.Fprintln(stderr, "h2scope batch: --progress and --no-progress contradict each other")
		return exitUsage
	}
	// The output is checked before anything is read: never one of the
	// inputs, never a file holding a capture.
	if err := safeio.CheckOutputs(patterns, []string{*out}); err != nil {
		fmt.Fprintf(stderr, "h2scope batch: %v\n", err)
		return exitUsage
	}
	bo := batch.Options{Workers: *workers, Gap: *gap, Dissect: opts, Config: &cfg, Redaction: in.red, Log: stderr, Connections: selection}
	bo.Dissect.Keys = nil // each capture gets its own
	for _, name := range in.keylogs {
		b, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "h2scope: key log: %v\n", err)
			return exitUsage
		}
		bo.KeyLogs = append(bo.KeyLogs, batch.KeyLogFile{Name: name, Data: b})
	}
	switch f, isFile := stderr.(*os.File); {
	case *noProgress:
	case *progress:
		bo.Progress = report.NewProgressWriter(stderr, nil)
	case isFile:
		bo.Progress = report.NewProgress(f) // draws only on a terminal
	}
	sum, err := batch.Run(ctx, patterns, *out, stdout, bo)
	if err == nil || sum.Captures != (batch.Counts{}) {
		sum.Write(stderr)
	}
	if err != nil {
		if ctx.Err() != nil {
			if *out == "-" {
				fmt.Fprintln(stderr, "h2scope batch: interrupted")
			} else {
				fmt.Fprintf(stderr, "h2scope batch: interrupted; the captures done are in %s: re-running the same command resumes, analysing only what is missing or changed\n", *out)
			}
			return exitUsage
		}
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
