package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/memfs"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/s3"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/batch"
	"github.com/h2scope/h2scope/beam/pipeline"
	"github.com/h2scope/h2scope/internal/safeio"
	"github.com/h2scope/h2scope/report"
)

// Exit codes, as h2scope's.
const (
	exitOK       = 0
	exitFindings = 1
	exitUsage    = 2
)

// run is the launcher: it parses h2scope batch's flags and Beam's (both
// on the flag package's set, where the Beam SDK and its runners define
// theirs), builds the pipeline and runs it on --runner, then reads the
// output back for the summary.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.CommandLine
	fs.Init("h2scope-beam", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: h2scope-beam --out F.ndjson [flags] DIR|GLOB|gs://...|s3://...\n\n"+
			"h2scope batch on Apache Beam: one JSON report per capture and line, rotated files grouped.\n"+
			"--runner prism (default, in-process), dataflow, flink, spark, universal; see beam/README.md.\n"+
			"h2scope-beam --worker_pool [--worker_pool_port=50000] serves the workers of an EXTERNAL environment.\n\nflags:\n")
		fs.PrintDefaults()
	}
	var keylogs fileList
	fs.Var(&keylogs, "keylog", "TLS key log `file` (SSLKEYLOGFILE, NSS format) to decrypt TLS with; repeat it to merge several")
	noRedact := fs.Bool("no-redact", false, "show credentials, cookies, API keys and URL tokens as captured")
	out := fs.String("out", "", "write the NDJSON reports to `file` (local, gs:// or s3://; replaced whole, not resumed; \"-\": standard output, for runners whose workers share this machine's files); required")
	workers := fs.Int("workers", 0, "files of one rotated series read at once to find their times (0: the worker's CPU count)")
	gap := fs.Duration("gap", batch.DefaultGap, "most `time` between rotated files of one capture (last packet of one to first of the next)")
	failOn := fs.String("fail-on", "", "exit 1 when a finding reaches this `severity` (warning or critical)")
	fs.Bool("progress", false, "accepted for h2scope batch's command lines; the runner shows progress")
	fs.Bool("no-progress", false, "accepted for h2scope batch's command lines")
	connsFlag := fs.String("connections", report.ConnsNamed, "connections and timelines each report holds: `named`, all or none")
	shards := fs.Int("shards", 0, "split each capture's analysis by connection over `k` workers, each reading the whole capture (0: captures of --split-bytes or more, one worker per --split-bytes, at most 64; h2scope analyze's --shards is --worker-shards here)")
	splitBytes := fs.Int64("split-bytes", pipeline.AutoSplitBytes, "with --shards 0, split captures of this many `bytes` or more across workers")
	workerShards := fs.Int("worker-shards", 0, "split each capture's (or shard's) analysis by connection over `n` goroutines of its worker (0: one per CPU but one from 256 MiB)")
	version := fs.String("h2scope_version", "", "h2scope `version` named in the resume keys (default: this binary's, as h2scope --version shows it)")
	cfg := analyze.DefaultConfig()
	cfg.RegisterFlags(fs)
	patterns, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "h2scope-beam: %v\n", err)
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "h2scope-beam: "+format+"\n", a...)
		return exitUsage
	}
	switch {
	case len(patterns) == 0:
		return fail("no capture files given")
	case *out == "":
		return fail("--out F is required")
	case *gap <= 0:
		return fail("--gap %v: must be positive", *gap)
	case *workers < 0:
		return fail("--workers %d: must not be negative", *workers)
	case *shards < 0 || *shards > 1024:
		return fail("--shards %d: want 0 (automatic) to 1024", *shards)
	case *splitBytes <= 0:
		return fail("--split-bytes %d: must be positive", *splitBytes)
	case *workerShards < 0 || *workerShards > 256:
		return fail("--worker-shards %d: want 0 (automatic) to 256", *workerShards)
	}
	selection, err := report.ParseConnections(*connsFlag)
	if err != nil {
		return fail("--connections: %v", err)
	}
	var threshold analyze.Severity
	if *failOn != "" {
		if threshold, err = analyze.ParseSeverity(*failOn); err != nil || threshold == analyze.Info {
			return fail("--fail-on %q: want warning or critical", *failOn)
		}
	}
	set := pipeline.Settings{Gap: *gap, Workers: *workers, NoRedact: *noRedact, Connections: selection,
		Version: *version, Shards: *shards, SplitBytes: *splitBytes, WorkerShards: *workerShards}
	if set.Version == "" {
		set.Version = batch.Version()
	}
	if set.Config, err = pipeline.EncodeConfig(cfg); err != nil {
		return fail("%v", err)
	}
	for _, name := range keylogs {
		b, err := os.ReadFile(name)
		if err != nil {
			return fail("key log: %v", err)
		}
		set.KeyLogs = append(set.KeyLogs, pipeline.KeyLog{Name: name, Data: b})
	}
	// The output is checked before anything runs, as batch checks it;
	// local patterns are expanded here too, so that one matching nothing
	// fails now rather than in a worker.
	outName := *out
	var local []string
	for _, p := range patterns {
		if !strings.Contains(p, "://") {
			local = append(local, p)
		}
	}
	if len(local) > 0 {
		if _, _, err := batch.Find(local); err != nil {
			return fail("%v", err)
		}
		// Relative local paths mean, on every worker, what they mean here.
		if wd, err := os.Getwd(); err == nil {
			set.Dir = wd
		}
	}
	if outName == "-" {
		dir, err := os.MkdirTemp("", "h2scope-beam-out-")
		if err != nil {
			return fail("%v", err)
		}
		defer os.RemoveAll(dir)
		outName = filepath.Join(dir, "out.ndjson")
	} else if !strings.Contains(outName, "://") {
		if err := safeio.CheckOutputs(local, []string{outName}); err != nil {
			return fail("%v", err)
		}
		if abs, err := filepath.Abs(outName); err == nil {
			outName = abs // workers may run in another directory
		}
	}
	// Workers run this very binary: on linux/amd64, stage it rather than
	// compiling the program again (which needs its source).
	if f := fs.Lookup("worker_binary"); f != nil && *jobopts.WorkerBinary == "" && runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		if self, err := os.Executable(); err == nil {
			f.Value.Set(self)
		}
	}
	beam.Init()
	p, err := pipeline.Build(pipeline.Job{Patterns: patterns, Out: outName, Settings: set})
	if err != nil {
		return fail("%v", err)
	}
	start := time.Now()
	res, err := beamx.RunWithMetrics(ctx, p)
	if err != nil {
		return fail("pipeline failed: %v", err)
	}
	elapsed := time.Since(start)
	if *jobopts.Async {
		fmt.Fprintf(stderr, "h2scope-beam: the lines are gathered in %s, which can be removed once the job is done\n", pipeline.PartsDir(*out))
		fmt.Fprintf(stderr, "h2scope-beam: submitted; the reports will be in %s\n", *out)
		return exitOK
	}
	if err := pipeline.RemoveParts(ctx, outName); err != nil {
		fmt.Fprintf(stderr, "h2scope-beam: warning: removing %s: %v\n", pipeline.PartsDir(outName), err)
	}
	data, err := readOutput(ctx, outName)
	if errors.Is(err, os.ErrNotExist) {
		// No capture found: an empty output, as batch writes.
		err = pipeline.WriteFile(ctx, outName, nil)
	}
	if err != nil {
		return fail("reading the output back: %v", err)
	}
	if *out == "-" {
		if _, err := stdout.Write(data); err != nil {
			return fail("writing standard output: %v", err)
		}
	}
	var read int64
	if res != nil {
		for _, c := range res.Metrics().AllMetrics().Counters() {
			if c.Namespace() == "h2scope" && c.Name() == "bytes" {
				read = c.Result()
			}
		}
	}
	s := summarise(data)
	s.write(stderr, *out, read, elapsed)
	switch {
	case s.failed > 0 || s.partial > 0:
		return exitUsage
	case *failOn != "" && s.reached(threshold):
		return exitFindings
	}
	return exitOK
}

// readOutput reads the output file back, local or remote.
func readOutput(ctx context.Context, name string) ([]byte, error) {
	if !strings.Contains(name, "://") {
		return os.ReadFile(name)
	}
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	if _, err := fs.Size(ctx, name); err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", name, os.ErrNotExist, err)
	}
	return filesystem.Read(ctx, fs, name)
}

// summary counts the output's lines.
type summary struct {
	reports, partial, failed, files int
	findings                        [3]int // by severity
}

func summarise(data []byte) summary {
	var s summary
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<30)
	for sc.Scan() {
		var l struct {
			Captures []struct {
				Files  []string `json:"files"`
				Faults []string `json:"faults"`
			} `json:"captures"`
			Error    string `json:"error"`
			Findings []struct {
				Severity analyze.Severity `json:"severity"`
			} `json:"findings"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || len(l.Captures) == 0 {
			continue
		}
		s.files += len(l.Captures[0].Files)
		if l.Error != "" {
			s.failed++
			continue
		}
		s.reports++
		if len(l.Captures[0].Faults) > 0 {
			s.partial++
		}
		for _, f := range l.Findings {
			if f.Severity >= 0 && int(f.Severity) < len(s.findings) {
				s.findings[f.Severity]++
			}
		}
	}
	return s
}

// reached reports whether a finding has severity sev or higher.
func (s summary) reached(sev analyze.Severity) bool {
	for v := sev; v <= analyze.Critical; v++ {
		if v >= 0 && s.findings[v] > 0 {
			return true
		}
	}
	return false
}

func (s summary) write(w io.Writer, out string, read int64, elapsed time.Duration) {
	if out == "-" {
		out = "standard output"
	}
	fmt.Fprintf(w, "h2scope-beam: %s holds %d captures (%d files): %d reports", out, s.reports+s.failed, s.files, s.reports)
	if s.partial > 0 {
		fmt.Fprintf(w, " (%d cut short)", s.partial)
	}
	fmt.Fprintf(w, ", %d failed\n", s.failed)
	rate := 0.0
	if sec := elapsed.Seconds(); sec > 0 {
		rate = float64(read) / 1e6 / sec
	}
	fmt.Fprintf(w, "h2scope-beam: %.1f MB analysed in %s (%.1f MB/s, pipeline included)\n", float64(read)/1e6, elapsed.Round(time.Millisecond), rate)
	fmt.Fprintf(w, "h2scope-beam: findings: %d critical, %d warning, %d info\n",
		s.findings[analyze.Critical], s.findings[analyze.Warning], s.findings[analyze.Info])
}

// fileList is a flag that may be given several times.
type fileList []string

func (l *fileList) String() string { return strings.Join(*l, ",") }

func (l *fileList) Set(v string) error {
	if v == "" {
		return errors.New("empty file name")
	}
	*l = append(*l, v)
	return nil
}

// parseArgs parses the flags of args wherever they are, as h2scope does,
// and returns the other arguments in order; everything after "--" is an
// argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
