package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/internal/safeio"
	"github.com/h2scope/h2scope/internal/version"
	"github.com/h2scope/h2scope/report"
	"github.com/h2scope/h2scope/slice"
)

// Exit codes, as the CLI contract fixes them.
const (
	exitOK       = 0
	exitFindings = 1 // findings at or above --fail-on
	exitUsage    = 2 // bad usage or unreadable input
)

const usage = `usage: h2scope <command> [flags] CAPTURE...

commands:
  analyze [--json F] [--html F] [--md F] [--fail-on SEV] CAPTURE...
                                                 findings with evidence and remedies; --json/--html/--md write
                                                 the report as JSON, one HTML page, Markdown (F "-" is stdout)
  conns [--json] CAPTURE...                      one row per TCP connection (--json: NDJSON, one object per connection)
  frames [--json] CAPTURE...                     every dissected unit in capture order (--json: NDJSON)
  timeline --conn ID [--stream N] CAPTURE...     one connection, or one HTTP/2 stream of it, in time order
  batch [--workers N] --out F.ndjson DIR|GLOB... many captures, one JSON report per line (resumes F)
  slice -o OUT.pcapng [--finding ID] [--conn ID] [--stream N] CAPTURE...
                                                 the packets of a finding, connections or a stream as an annotated pcapng
  diff [--json F] [--md F] [--fail-on SEV] BEFORE AFTER
                                                 two captures or analyze --json reports compared, finding by finding
  version                                        the version and revision h2scope was built from (also --version)

examples:
  h2scope analyze capture.pcapng
  h2scope analyze --keylog keys.log --html report.html capture.pcapng.gz
  h2scope timeline --conn 3 --stream 5 capture.pcapng

Captures are pcap or pcapng files, optionally .gz or .zst compressed; "-"
reads one from standard input. Several files are merged by timestamp into
one capture. Flags may come before or after the captures; "--" ends them.
Every command takes --keylog F, a TLS key log (SSLKEYLOGFILE) to decrypt
TLS with; the secrets in pcapng Decryption Secrets Blocks are used too.
"h2scope COMMAND -h" lists a command's flags.
`

// commands maps each command's name to the function running it.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"analyze":  runAnalyze,
	"conns":    runConns,
	"frames":   runFrames,
	"timeline": runTimeline,
	"batch":    runBatch,
	"slice":    runSlice,
	"diff":     runDiff,
}

// run executes one h2scope command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "version", "-version", "--version":
		printVersion(stdout)
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if cmd, ok := commands[args[1]]; ok {
				cmd(ctx, []string{"-h"}, stdout, stdout)
				return exitOK
			}
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "h2scope: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	if wantsHelp(args[1:]) {
		// The command prints its help where it would print a usage error.
		cmd(ctx, []string{"-h"}, stdout, stdout)
		return exitOK
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// input holds the flags about reading captures and showing what they
// hold.
type input struct {
	keylogs fileList
	red     report.Redaction
}

// fileList is a flag that may be given several times, each value a file
// name, kept in order.
type fileList []string

func (l *fileList) String() string { return strings.Join(*l, ",") }

// Set appends one value; an empty name is refused.
func (l *fileList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty file name")
	}
	*l = append(*l, v)
	return nil
}

// options returns the dissection options the flags ask for, loading the
// key log. Malformed key log lines are warned about; an unreadable key log
// is reported on stderr, and ok is then false.
func (in *input) options(stderr io.Writer) (opts dissect.Options, ok bool) {
	opts = dissect.Options{Dissect: true, Keys: tls.NewKeyLog()}
	// No command keeps a tcp.Conn past its callbacks (they copy its
	// summary): the tracker reuses finished ones.
	opts.TCP.ReuseConns = true
	for _, name := range in.keylogs {
		if !readKeyLog(opts.Keys, name, stderr) {
			return opts, false
		}
	}
	return opts, true
}

// readKeyLog adds the secrets of the key log file name to keys, warning
// on stderr about malformed lines and a file with no secrets; it reports
// an unreadable file and returns false.
func readKeyLog(keys *tls.KeyLog, name string, stderr io.Writer) bool {
	f, err := os.Open(name)
	if err != nil {
		fmt.Fprintf(stderr, "h2scope: key log: %v\n", err)
		return false
	}
	defer f.Close()
	n, errs := keys.Read(f, name)
	for _, e := range errs {
		fmt.Fprintf(stderr, "h2scope: warning: %v\n", e)
	}
	if n == 0 {
		fmt.Fprintf(stderr, "h2scope: warning: %s holds no TLS secrets (want NSS key log lines such as CLIENT_RANDOM or CLIENT_TRAFFIC_SECRET_0)\n", name)
	}
	return true
}

// parseFailOn reads a --fail-on value of command cmd: "" (off), warning
// or critical; a bad value is reported on stderr and ok is false.
func parseFailOn(cmd, value string, stderr io.Writer) (threshold analyze.Severity, ok bool) {
	if value == "" {
		return 0, true
	}
	threshold, err := analyze.ParseSeverity(value)
	if err != nil || threshold == analyze.Info {
		fmt.Fprintf(stderr, "h2scope %s: --fail-on %q: want warning or critical\n", cmd, value)
		return 0, false
	}
	return threshold, true
}

func runConns(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, in := newFlags("conns", stderr)
	asJSON := fs.Bool("json", false, "write NDJSON, one object per connection")
	files, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	if files, ok = inputs("conns", files, stderr); !ok {
		return exitUsage
	}
	opts, ok := in.options(stderr)
	if !ok {
		return exitUsage
	}
	// A connection's application summaries are taken when its streams
	// end, so its dissectors' records are freed then; its TCP summary
	// when it finishes. early holds the first until the second: one
	// entry per connection still open at most.
	early := map[event.ConnID]report.ConnRecord{}
	opts.OnApp = func(c *tcp.Conn, app *dissect.App) {
		r := report.NewConnRecord(&c.Summary, app)
		r.Summary = nil // the final one comes with OnConn
		early[c.ID] = r
	}
	record := func(c *tcp.Conn) report.ConnRecord {
		r, ok := early[c.ID]
		delete(early, c.ID)
		sum := c.Summary // a copy: c is the tracker's, with its state
		final := report.NewConnRecord(&sum, nil)
		if ok {
			r.Summary = final.Summary
		} else {
			r = final
		}
		return r
	}
	var st dissect.Stats
	var err error
	// Both forms stream: each record is written once every lower id has
	// been (report.ConnsWriter), so memory holds only the finished
	// connections waiting for an earlier one still open, or spills them
	// to a file; the table sizes its columns on its first rows. The
	// reading stops once standard output is a closed pipe.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	cw := report.NewConnsWriter(stdout)
	if !*asJSON {
		cw = report.NewConnsTableWriter(stdout)
	}
	opts.OnConn = func(c *tcp.Conn, _ *dissect.App) {
		r := record(c)
		if cw.Add(&r) != nil {
			stop()
		}
	}
	st, err = dissect.Run(ctx, files, opts)
	if err != nil && cw.Empty() {
		// Nothing read: the error alone, not an empty table.
		fmt.Fprintf(stderr, "h2scope: %v\n", err)
		return exitUsage
	}
	werr := cw.Close()
	if brokenPipe(werr) {
		return exitOK // stopped on purpose: what was read was printed
	}
	if err != nil && werr == nil {
		fmt.Fprintf(stderr, "h2scope: %v\n", err)
		return exitUsage
	}
	return outputErr(werr, reportFaults(st, stderr), stderr)
}

// reportFaults prints the located faults that cut files short. A capture
// that could only be read in part exits with the usage/input code, as tshark
// does, after the partial result has been written.
func reportFaults(st dissect.Stats, stderr io.Writer) int {
	notes(st, stderr)
	for _, f := range st.Faults {
		fmt.Fprintf(stderr, "h2scope: %v (the packets before it were analysed)\n", f)
	}
	if len(st.Faults) > 0 {
		return exitUsage
	}
	return exitOK
}

func runFrames(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, in := newFlags("frames", stderr)
	asJSON := fs.Bool("json", false, "write NDJSON, one object per unit")
	files, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	if files, ok = inputs("frames", files, stderr); !ok {
		return exitUsage
	}
	opts, ok := in.options(stderr)
	if !ok {
		return exitUsage
	}
	// The reading stops once standard output is a closed pipe.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var werr func() error
	if *asJSON {
		fw := report.NewFrameWriter(stdout, in.red)
		sink := event.SinkFunc(func(e *event.Event) {
			fw.Event(e)
			if brokenPipe(fw.Err()) {
				stop()
			}
		})
		opts.Sink, werr = sink, fw.Err
	} else {
		var start time.Time
		var err error
		opts.Sink = event.SinkFunc(func(e *event.Event) {
			if start.IsZero() {
				start = e.Ref.TS
			}
			if err == nil {
				_, err = fmt.Fprintf(stdout, "conn %-5d %s\n", e.Conn, report.TimelineLine(e, start, in.red))
				if brokenPipe(err) {
					stop()
				}
			}
		})
		werr = func() error { return err }
	}
	st, err := dissect.Run(ctx, files, opts)
	if brokenPipe(werr()) {
		return exitOK // stopped on purpose: what was read was printed
	}
	if err != nil {
		fmt.Fprintf(stderr, "h2scope: %v\n", err)
		return exitUsage
	}
	return outputErr(werr(), reportFaults(st, stderr), stderr)
}

func runTimeline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, in := newFlags("timeline", stderr)
	conn := fs.Int("conn", -1, "connection `id`, as conns shows it (required)")
	stream := fs.Int("stream", -1, "only this HTTP/2 `stream` (and the connection's TCP events)")
	maxLines := fs.Int("max", 100000, "print at most this many units, the first by frame (the rest are counted)")
	files, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case !set["conn"]:
		fmt.Fprintln(stderr, "h2scope timeline: --conn ID is required (h2scope conns lists the connections)")
		printUsageLine(stderr, fs)
		return exitUsage
	case *conn < 0:
		fmt.Fprintf(stderr, "h2scope timeline: --conn %d: not a connection id (they count from 0)\n", *conn)
		return exitUsage
	case set["stream"] && *stream < 0:
		fmt.Fprintf(stderr, "h2scope timeline: --stream %d: not an HTTP/2 stream id (they count from 0)\n", *stream)
		return exitUsage
	}
	if files, ok = inputs("timeline", files, stderr); !ok {
		return exitUsage
	}
	// Units are collected and printed in frame order: a unit completes on
	// its last packet, and bytes held while a protocol is recognised or a
	// stream resynchronised complete later than packets around them.
	type line struct {
		at   event.Ref
		body string
	}
	opts, ok := in.options(stderr)
	if !ok {
		return exitUsage
	}
	var lines []line
	omitted := 0
	// keep bounds the lines held: the first maxLines by frame stay.
	keep := func() {
		slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.at.Frame, b.at.Frame) })
		if len(lines) > *maxLines {
			omitted += len(lines) - *maxLines
			lines = slices.Clip(lines[:*maxLines])
		}
	}
	// What exists, to say so when the connection or stream asked for
	// does not: the number of connections, the connection's streams.
	nconns := 0
	opts.OnConn = func(*tcp.Conn, *dissect.App) { nconns++ }
	streams := map[uint32]bool{}
	opts.Sink = event.SinkFunc(func(e *event.Event) {
		if int(e.Conn) != *conn {
			return
		}
		if e.Proto == event.ProtoHTTP2 || e.Proto == event.ProtoGRPC {
			streams[e.Stream] = true
		}
		if *stream >= 0 && e.Proto != event.ProtoTCP && int(e.Stream) != *stream {
			return
		}
		lines = append(lines, line{e.Ref, report.TimelineBody(e, in.red)})
		if len(lines) >= 2*(*maxLines) {
			keep()
		}
	})
	st, err := dissect.Run(ctx, files, opts)
	if err != nil {
		fmt.Fprintf(stderr, "h2scope: %v\n", err)
		return exitUsage
	}
	if *conn >= nconns {
		fmt.Fprintf(stderr, "h2scope timeline: no connection %d: %s\n", *conn, connRange(nconns))
		reportFaults(st, stderr)
		return exitUsage
	}
	if *stream >= 0 && !streams[uint32(*stream)] {
		fmt.Fprintf(stderr, "h2scope timeline: no stream %d: %s\n", *stream, streamRange(*conn, streams))
		reportFaults(st, stderr)
		return exitUsage
	}
	if len(lines) == 0 {
		fmt.Fprintf(stderr, "h2scope timeline: no units for connection %d", *conn)
		if *stream >= 0 {
			fmt.Fprintf(stderr, " stream %d", *stream)
		}
		fmt.Fprintln(stderr, " (h2scope conns lists the connections)")
		return exitUsage
	}
	keep()
	start := lines[0].at.TS
	for _, l := range lines {
		if l.at.TS.Before(start) {
			start = l.at.TS
		}
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintf(w, "connection %d, from frame %d at %s\n", *conn, lines[0].at.Frame, lines[0].at.TS.UTC().Format(time.RFC3339Nano))
	for _, l := range lines {
		fmt.Fprintf(w, "%s%s\n", report.TimelinePrefix(l.at, start), l.body)
	}
	if omitted > 0 {
		fmt.Fprintf(w, "... %s after frame %d left out (--max %d)\n", plural(omitted, "more unit", "more units"), lines[len(lines)-1].at.Frame, *maxLines)
	}
	return outputErr(w.Flush(), reportFaults(st, stderr), stderr)
}

// connRange says which connections a capture of n has.
func connRange(n int) string {
	switch n {
	case 0:
		return "the capture has no TCP connections"
	case 1:
		return "the capture has connection 0"
	}
	return fmt.Sprintf("the capture has connections 0–%d", n-1)
}

// streamRange says which HTTP/2 streams connection conn has (stream 0,
// the connection's own frames, left out).
func streamRange(conn int, streams map[uint32]bool) string {
	ids := slices.Sorted(maps.Keys(streams))
	if len(ids) > 0 && ids[0] == 0 {
		ids = ids[1:]
	}
	switch len(ids) {
	case 0:
		return fmt.Sprintf("connection %d has no HTTP/2 streams", conn)
	case 1:
		return fmt.Sprintf("connection %d has stream %d", conn, ids[0])
	}
	return fmt.Sprintf("connection %d has %d streams, %d–%d", conn, len(ids), ids[0], ids[len(ids)-1])
}

// plural returns n and the singular or plural form that goes with it.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// notes prints, on stderr, what the capture held that h2scope did not
// analyse, so a short result is never silently short.
func notes(st dissect.Stats, stderr io.Writer) {
	l := st.Layer
	var parts []string
	add := func(n uint64, one, many string) {
		if n > 0 {
			parts = append(parts, plural(int(n), one, many))
		}
	}
	add(l.Fragments, "IP fragment (not reassembled)", "IP fragments (not reassembled)")
	add(l.Truncated, "frame cut by the snap length inside its headers", "frames cut by the snap length inside their headers")
	add(l.Malformed, "malformed frame", "malformed frames")
	add(l.Unsupported, "frame of an unsupported link type", "frames of unsupported link types")
	add(st.TCP.BufferOverflows, "reassembly hole given up (buffer cap)", "reassembly holes given up (buffer cap)")
	if len(parts) > 0 {
		fmt.Fprintf(stderr, "h2scope: note: %s read; left out: %s\n", plural(int(st.Packets), "packet", "packets"), strings.Join(parts, ", "))
	}
	for _, e := range st.SecretErrors {
		fmt.Fprintf(stderr, "h2scope: warning: %v\n", e)
	}
	if n := st.SecretErrorsDropped; n > 0 {
		fmt.Fprintf(stderr, "h2scope: warning: %s in Decryption Secrets Blocks\n", plural(n, "more malformed key log line", "more malformed key log lines"))
	}
}

func runAnalyze(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, in := newFlags("analyze", stderr)
	jsonOut := fs.String("json", "", "write the JSON report to `file` (\"-\": standard output)")
	mdOut := fs.String("md", "", "write the Markdown report, for tickets, to `file` (\"-\": standard output)")
	htmlOut := fs.String("html", "", "write the self-contained HTML report to `file` (\"-\": standard output)")
	failOn := fs.String("fail-on", "", "exit 1 when a finding reaches this `severity` (warning or critical, any case)")
	cfg := analyze.DefaultConfig()
	cfg.RegisterFlags(fs)
	limits := report.DefaultLimits
	fs.IntVar(&limits.Events, "timeline-events", limits.Events, "events kept per connection timeline in the report (the rest are counted)")
	fs.IntVar(&limits.Spans, "timeline-spans", limits.Spans, "requests kept per connection timeline in the report (the rest are counted)")
	slicesDir := fs.String("slices", "", "write one pcapng per finding, its evidence annotated, to `dir`/ID.pcapng")
	shards := fs.Int("shards", 0, "split the analysis by connection over `n` workers (0: one per CPU but one, when the capture is large enough for it to pay)")
	connsFlag := fs.String("connections", report.ConnsNamed, "connections and timelines the reports hold: `named` (those the findings name: at most 100 of each finding, 2,000 in all), all (every one, read back from a temporary file) or none")
	files, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	threshold, ok := parseFailOn("analyze", *failOn, stderr)
	if !ok {
		return exitUsage
	}
	selection, err := report.ParseConnections(*connsFlag)
	if err != nil {
		fmt.Fprintf(stderr, "h2scope analyze --connections: %v\n", err)
		return exitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "h2scope analyze: %v\n", err)
		return exitUsage
	}
	if *slicesDir != "" && slices.Contains(files, capture.Stdin) {
		fmt.Fprintln(stderr, "h2scope analyze --slices: the slices re-read the captures, and standard input cannot be read twice: save it to a file first")
		return exitUsage
	}
	if *shards < 0 || *shards > maxShards {
		fmt.Fprintf(stderr, "h2scope analyze --shards: %d: want 0 (automatic) to %d\n", *shards, maxShards)
		return exitUsage
	}
	outputs := []struct {
		name  string
		write func(*report.Report, io.Writer) error
	}{{*jsonOut, (*report.Report).WriteJSON}, {*mdOut, (*report.Report).WriteMarkdown}, {*htmlOut, (*report.Report).WriteHTML}}
	var names []string
	toStdout := 0
	for _, o := range outputs {
		names = append(names, o.name)
		if o.name == "-" {
			toStdout++
		}
	}
	if toStdout > 1 {
		fmt.Fprintln(stderr, "h2scope analyze: only one report can go to standard output (-)")
		return exitUsage
	}
	// Before anything is read: an output never overwrites an input or
	// another capture, and every output can be created.
	if err := safeio.CheckOutputs(files, names); err != nil {
		flagName := ""
		var oe *safeio.OutputError
		if errors.As(err, &oe) {
			flagName = " --" + map[string]string{*jsonOut: "json", *mdOut: "md", *htmlOut: "html"}[oe.Path]
		}
		fmt.Fprintf(stderr, "h2scope analyze%s: %v\n", flagName, err)
		return exitUsage
	}
	if files, ok = inputs("analyze", files, stderr); !ok {
		return exitUsage
	}
	opts, ok := in.options(stderr)
	if !ok {
		return exitUsage
	}
	// A progress bar only where stderr is a terminal.
	var prog *report.Progress
	if f, ok := stderr.(*os.File); ok {
		prog = report.NewProgress(f)
	}
	opts.Progress = prog.Update
	opts.Shards = shardsFor(*shards, files)
	rb := report.NewBuilder(in.red)
	rb.Limits = limits
	rb.Keys = opts.Keys // the report says what the key logs held and how they fitted
	rb.Connections = selection
	rb.NoOverview = *htmlOut == ""
	defer rb.Close() // removes the spill file, whatever happens
	// Each connection's part of the report goes to the spill file as it
	// finishes: the report keeps nothing of it in memory.
	res, input, err := analyze.Stream(ctx, files, opts, cfg, rb)
	prog.Done()
	if err != nil {
		fmt.Fprintf(stderr, "h2scope: %v\n", err)
		return exitUsage
	}
	names = slices.Clone(files) // as the report names the captures
	if i := slices.Index(names, capture.Stdin); i >= 0 {
		names[i] = capture.StdinName
	}
	rep := rb.Report(names, input, res)
	code := reportFaults(input.Stats, stderr)
	if *slicesDir != "" && len(res.Findings) > 0 {
		so := slice.Options{Dissect: dissect.Options{Keys: opts.Keys}, Config: cfg, Redact: in.red.Text, Names: names, Version: version.Read().String()}
		paths, err := slice.WriteFindings(ctx, files, *slicesDir, so, res.Findings)
		if err != nil {
			fmt.Fprintf(stderr, "h2scope analyze --slices: %v\n", err)
			return exitUsage
		}
		for i := range rep.Findings { // the reports name them
			if i < len(paths) {
				rep.Findings[i].Slice = paths[i]
			}
		}
	}
	if code == exitOK && *failOn != "" {
		for _, f := range res.Findings {
			if f.Severity >= threshold {
				code = exitFindings
				break
			}
		}
	}
	// The files first, then standard output: a reader that stops early
	// (| head) loses none of them.
	for _, o := range outputs {
		if o.name == "" || o.name == "-" {
			continue
		}
		if err := writeOutput(o.name, nil, func(w io.Writer) error { return o.write(rep, w) }); err != nil {
			fmt.Fprintf(stderr, "h2scope: %v\n", err)
			code = exitUsage
		}
	}
	var werr error
	if toStdout == 0 {
		term := report.TermOptions{Color: stdout == os.Stdout && report.ColorEnabled(os.Stdout)}
		werr = report.WriteSummary(stdout, rep, term)
	}
	for _, o := range outputs {
		if o.name == "-" {
			werr = o.write(rep, stdout)
		}
	}
	return outputErr(werr, code, stderr)
}

// maxShards bounds --shards.
const maxShards = 256

// maxAutoShards bounds the shards --shards 0 chooses: past it the merge
// and the workers' memory grow for little speed.
const maxAutoShards = 32

// autoShardBytes is the capture size from which --shards 0 splits the
// analysis: below it the workers' start and the merge cost more than
// they save.
const autoShardBytes = 256 << 20

// shardsFor returns the shards to analyse files with: n if set, else one
// per CPU but one (the reader's), at most maxAutoShards, when the
// captures total autoShardBytes or more as stored and there are 3 CPUs
// or more, else 1.
func shardsFor(n int, files []string) int {
	return shardsOn(n, files, runtime.NumCPU())
}

// shardsOn is shardsFor on a machine of cpus CPUs.
func shardsOn(n int, files []string, cpus int) int {
	if n > 0 {
		return n
	}
	if cpus < 3 {
		return 1
	}
	var size int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || !fi.Mode().IsRegular() {
			return 1 // standard input, a pipe: size unknown
		}
		size += fi.Size()
	}
	if size < autoShardBytes {
		return 1
	}
	return min(cpus-1, maxAutoShards)
}
