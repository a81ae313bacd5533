package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/report"
)

// Exit codes, as the CLI contract fixes them.
const (
	exitOK    = 0
	exitUsage = 2 // bad usage or unreadable input
)

const usage = `usage: h2scope <command> [flags] CAPTURE...

commands:
  conns [--json] CAPTURE...   one row per TCP connection (--json: NDJSON, one object per connection)

Captures are pcap or pcapng files, optionally .gz or .zst compressed; several
files are merged by timestamp into one capture.
`

// run executes one h2scope command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "conns":
		return runConns(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "h2scope: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// newFlags returns a flag set for a subcommand that reports to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("h2scope "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args and checks that captures were given.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, bool) {
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "%s: no capture files given\n", fs.Name())
		fs.Usage()
		return nil, false
	}
	return fs.Args(), true
}

func runConns(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("conns", stderr)
	asJSON := fs.Bool("json", false, "write NDJSON, one object per connection")
	files, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	var conns []*tcp.Conn
	opts := dissect.Options{TCP: tcp.Options{OnFinish: func(c *tcp.Conn) { conns = append(conns, c) }}}
	st, err := dissect.Run(ctx, files, opts)
	if err != nil {
		fmt.Fprintf(stderr, "h2scope: %v\n", err)
		return exitUsage
	}
	slices.SortFunc(conns, func(a, b *tcp.Conn) int { return int(a.ID) - int(b.ID) })
	if *asJSON {
		err = report.WriteConnsJSON(stdout, conns)
	} else {
		err = report.WriteConnsTable(stdout, conns)
	}
	if err != nil {
		fmt.Fprintf(stderr, "h2scope: writing output: %v\n", err)
		return exitUsage
	}
	return reportFaults(st, stderr)
}

// reportFaults prints the located faults that cut files short. A capture
// that could only be read in part exits with the usage/input code, as tshark
// does, after the partial result has been written.
func reportFaults(st dissect.Stats, stderr io.Writer) int {
	for _, f := range st.Faults {
		fmt.Fprintf(stderr, "h2scope: %v (the packets before it were analysed)\n", f)
	}
	if len(st.Faults) > 0 {
		return exitUsage
	}
	return exitOK
}
