package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/diff"
	"github.com/h2scope/h2scope/dissect/capture"
)

func init() {
	docs["diff"] = commandDoc{
		args: "[flags] BEFORE AFTER",
		what: "Compares two captures, or two analyze --json reports (or one of each): each finding resolved, new,\n" +
			"changed or unchanged, matched by kind and pool (server name and port; --match pairs renamed pools),\n" +
			"and each pool's connections, requests per connection, new connections per second and resumption rate.",
		examples: []string{
			"h2scope diff before.pcapng after.pcapng",
			"h2scope diff --fail-on warning --md diff.md last-week.json today.pcapng.zst",
			"h2scope diff --match api.old.example:443=api.example:443 before.json after.json",
		},
	}
}

// matchList is the repeatable --match OLD=NEW flag.
type matchList map[string]string

func (m matchList) String() string {
	var s []string
	for k, v := range m {
		s = append(s, k+"="+v)
	}
	return strings.Join(s, ",")
}

// Set adds one OLD=NEW pair.
func (m matchList) Set(v string) error {
	old, nw, ok := strings.Cut(v, "=")
	if !ok || old == "" || nw == "" {
		return fmt.Errorf("%q: want OLD=NEW (pool names, as diff shows them)", v)
	}
	m[old] = nw
	return nil
}

func runDiff(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, in := newFlags("diff", stderr)
	jsonOut := fs.String("json", "", "write the comparison as JSON (schema h2scope.diff/v1) to `file` (\"-\": standard output)")
	mdOut := fs.String("md", "", "write the comparison as Markdown to `file` (\"-\": standard output)")
	failOn := fs.String("fail-on", "", "exit 1 when a new or worsened finding reaches this `severity` (warning or critical)")
	match := matchList{}
	fs.Var(match, "match", "pair pool `OLD=NEW` by hand (server names or name:port, as the pools table shows them); repeatable")
	cfg := analyze.DefaultConfig()
	cfg.RegisterFlags(fs)
	files, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	if len(files) != 2 {
		fmt.Fprintf(stderr, "h2scope diff: want two inputs, BEFORE and AFTER; have %d\n", len(files))
		printUsageLine(stderr, fs)
		return exitUsage
	}
	threshold, ok := parseFailOn("diff", *failOn, stderr)
	if !ok {
		return exitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "h2scope diff: %v\n", err)
		return exitUsage
	}
	if *jsonOut == "-" && *mdOut == "-" {
		fmt.Fprintln(stderr, "h2scope diff: only one of --json and --md can go to standard output (-)")
		return exitUsage
	}
	for _, f := range files {
		if f == capture.Stdin {
			fmt.Fprintln(stderr, "h2scope diff: BEFORE and AFTER must be files, not standard input")
			return exitUsage
		}
	}
	opts, ok := in.options(stderr)
	if !ok {
		return exitUsage
	}
	lo := diff.LoadOptions{Dissect: opts, Config: cfg}
	var sides [2]*diff.Side
	for i, f := range files {
		s, err := diff.Load(ctx, f, lo)
		if err != nil {
			fmt.Fprintf(stderr, "h2scope diff: %v\n", err)
			return exitUsage
		}
		sides[i] = s
	}
	res := diff.Compare(sides[0], sides[1], diff.Options{Match: match})
	code := exitOK
	if *failOn != "" && res.FailOn(threshold) {
		code = exitFindings
	}
	outputs := []struct {
		name  string
		write func(io.Writer) error
	}{{*jsonOut, res.WriteJSON}, {*mdOut, res.WriteMarkdown}}
	toStdout := false
	for _, o := range outputs {
		if o.name == "" {
			continue
		}
		if o.name == "-" {
			toStdout = true
			continue
		}
		if err := writeOutput(o.name, nil, o.write); err != nil {
			fmt.Fprintf(stderr, "h2scope diff: %v\n", err)
			code = exitUsage
		}
	}
	var werr error
	for _, o := range outputs {
		if o.name == "-" {
			werr = o.write(stdout)
		}
	}
	if !toStdout {
		werr = res.WriteTable(stdout)
	}
	return outputErr(werr, code, stderr)
}
