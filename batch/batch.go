package batch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/report"
)

// Options configure Run. The zero value analyses with runtime.NumCPU()
// workers, the default thresholds, redaction on and no key log.
type Options struct {
	// Workers is the number of captures analysed at once; zero or less
	// means runtime.NumCPU().
	Workers int
	// Gap is the most time between the last packet of a rotated file and
	// the first packet of the next for both to be one capture; zero means
	// DefaultGap.
	Gap time.Duration
	// Dissect is the dissection options every capture is read with; its
	// Keys, Progress, Sink and OnConn are set for each capture.
	Dissect dissect.Options
	// KeyLog is the content of a TLS key log (--keylog), read into a fresh
	// key log for each capture, so that the secrets one capture carries in
	// its Decryption Secrets Blocks do not reach another. KeyLogName names
	// it in messages.
	KeyLog     []byte
	KeyLogName string
	// Config holds the detectors' thresholds; nil means
	// analyze.DefaultConfig().
	Config *analyze.Config
	// Redaction says how secrets in captured strings are shown.
	Redaction report.Redaction
	// Log, if not nil, receives a line for each capture that could not be
	// read or was cut short, as its line is written.
	Log io.Writer
}

// Counts counts captures, or files, by what became of them.
type Counts struct {
	// Analysed were analysed in this run, Partial of them cut short by a
	// fault (their partial reports were written).
	Analysed, Partial int
	// Skipped were already in the output of an earlier run.
	Skipped int
	// Failed could not be read at all (error records were written).
	Failed int
}

// Summary says what a run did.
type Summary struct {
	// Captures and Files count the captures and their files.
	Captures, Files Counts
	// Bytes counts the bytes read from the files as stored.
	Bytes int64
	// Findings counts findings by kind, then by severity.
	Findings map[string][3]int
	// Elapsed is the time the run took.
	Elapsed time.Duration
	// Output names the output file.
	Output string
}

// Reached reports whether any finding has severity sev or higher.
func (s *Summary) Reached(sev analyze.Severity) bool {
	for _, n := range s.Findings {
		for v := sev; v <= analyze.Critical; v++ {
			if v >= 0 && n[v] > 0 {
				return true
			}
		}
	}
	return false
}

// Write writes the summary for a person, a few lines each starting with
// "h2scope batch:".
func (s *Summary) Write(w io.Writer) error {
	var b bytes.Buffer
	c, f := s.Captures, s.Files
	fmt.Fprintf(&b, "h2scope batch: %s (%s) analysed", plural(c.Analysed, "capture"), plural(f.Analysed, "file"))
	if c.Partial > 0 {
		fmt.Fprintf(&b, ", %d of them cut short", c.Partial)
	}
	fmt.Fprintf(&b, "; %d failed", c.Failed)
	if c.Failed > 0 {
		fmt.Fprintf(&b, " (%s)", plural(f.Failed, "file"))
	}
	if c.Skipped > 0 {
		fmt.Fprintf(&b, "; %d skipped (%s already in %s)", c.Skipped, plural(f.Skipped, "file"), s.Output)
	}
	b.WriteByte('\n')
	rate := 0.0
	if sec := s.Elapsed.Seconds(); sec > 0 {
		rate = float64(s.Bytes) / 1e6 / sec
	}
	fmt.Fprintf(&b, "h2scope batch: %.1f MB read in %s (%.1f MB/s)\n", float64(s.Bytes)/1e6, s.Elapsed.Round(time.Millisecond), rate)
	var total [3]int
	for _, n := range s.Findings {
		for i := range total {
			total[i] += n[i]
		}
	}
	fmt.Fprintf(&b, "h2scope batch: findings: %d critical, %d warning, %d info\n", total[analyze.Critical], total[analyze.Warning], total[analyze.Info])
	for _, k := range analyze.Kinds {
		n, ok := s.Findings[k]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "  %-20s %3d critical %3d warning %3d info\n", k, n[analyze.Critical], n[analyze.Warning], n[analyze.Info])
	}
	_, err := w.Write(b.Bytes())
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// result is the outcome of one capture, ready to write.
type result struct {
	i        int
	line     []byte
	failed   bool
	faults   []string // of a partial report
	errText  string   // of an error record
	bytes    int64
	findings []analyze.Finding
	canceled bool
	err      error // encoding failed
}

// Run analyses the captures that patterns name (see Find and Group) and
// writes one line per capture to the file out, resuming it if it exists,
// or to stdout when out is "-". It returns once every capture is written,
// ctx is done, or writing fails; the summary counts what was done even
// then. Captures that cannot be read are not errors: they are written as
// ErrorRecords and counted in Summary.Captures.Failed.
func Run(ctx context.Context, patterns []string, out string, stdout io.Writer, opts Options) (*Summary, error) {
	start := time.Now()
	sum := &Summary{Findings: map[string][3]int{}, Output: out}
	if out == "-" {
		sum.Output = "standard output"
	}
	defer func() { sum.Elapsed = time.Since(start) }()
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Config == nil {
		cfg := analyze.DefaultConfig()
		opts.Config = &cfg
	}
	files, bad, err := Find(patterns)
	if err != nil {
		return sum, err
	}
	caps := append(Group(ctx, files, opts.Gap, opts.Workers), bad...)
	slices.SortStableFunc(caps, func(a, b Capture) int { return naturalCompare(a.Files[0], b.Files[0]) })
	if ctx.Err() != nil {
		return sum, ctx.Err()
	}
	var o *output
	done := map[string]bool{}
	if out == "-" {
		o = &output{w: stdout, name: "standard output"}
	} else if o, done, err = openOutput(out); err != nil {
		return sum, err
	}
	var todo []Capture
	for _, c := range caps {
		if done[c.key()] {
			sum.Captures.Skipped++
			sum.Files.Skipped += len(c.Files)
			continue
		}
		todo = append(todo, c)
	}
	err = run(ctx, todo, o, opts, sum)
	if cerr := o.close(); err == nil {
		err = cerr
	}
	return sum, err
}

// run analyses todo with opts.Workers workers and writes the lines in
// order.
func run(ctx context.Context, todo []Capture, o *output, opts Options, sum *Summary) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A slot is taken when a capture is started and given back when its
	// line is written: at most Workers captures are running or waiting to
	// be written.
	slots := make(chan struct{}, opts.Workers)
	jobs := make(chan int)
	results := make(chan result, opts.Workers)
	go func() {
		defer close(jobs)
		for i := range todo {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Go(func() {
			for i := range jobs {
				r := analyse(ctx, todo[i], opts)
				r.i = i
				results <- r
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	pending := map[int]result{}
	for next := 0; next < len(todo); {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		pending[r.i] = r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			if r.canceled {
				return ctx.Err()
			}
			if r.err != nil {
				return r.err
			}
			if err := o.writeLine(r.line); err != nil {
				return err
			}
			sum.count(todo[next], r)
			if opts.Log != nil {
				if r.failed {
					fmt.Fprintf(opts.Log, "h2scope batch: %s\n", r.errText)
				}
				for _, f := range r.faults {
					fmt.Fprintf(opts.Log, "h2scope batch: %s (the packets before it were analysed)\n", f)
				}
			}
			next++
			<-slots
		}
	}
	return nil
}

// count adds a written capture to the summary.
func (s *Summary) count(c Capture, r result) {
	s.Bytes += r.bytes
	if r.failed {
		s.Captures.Failed++
		s.Files.Failed += len(c.Files)
		return
	}
	s.Captures.Analysed++
	s.Files.Analysed += len(c.Files)
	if len(r.faults) > 0 {
		s.Captures.Partial++
		s.Files.Partial += len(c.Files)
	}
	for _, f := range r.findings {
		n := s.Findings[f.Kind]
		if f.Severity >= 0 && int(f.Severity) < len(n) {
			n[f.Severity]++
		}
		s.Findings[f.Kind] = n
	}
}

// analyse analyses one capture and encodes its line. A panic in the
// dissectors (a bug) becomes this capture's error record, so that one
// capture cannot end a batch over thousands.
func analyse(ctx context.Context, c Capture, opts Options) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = errorResult(c, fmt.Errorf("%s: h2scope internal error (a bug: please report it with this capture): %v", c.Files[0], p))
		}
	}()
	if ctx.Err() != nil {
		return result{canceled: true}
	}
	if c.Err != nil {
		return errorResult(c, c.Err)
	}
	do := opts.Dissect
	do.Keys = tls.NewKeyLog()
	if len(opts.KeyLog) > 0 {
		do.Keys.Read(bytes.NewReader(opts.KeyLog), opts.KeyLogName)
	}
	var read int64
	do.Progress = func(n, _ int64) { read = n }
	rb := report.NewBuilder(opts.Redaction)
	res, in, err := analyze.Stream(ctx, c.Files, do, *opts.Config, rb.Add)
	if err != nil {
		if ctx.Err() != nil {
			return result{canceled: true}
		}
		r := errorResult(c, err)
		r.bytes = read
		return r
	}
	rep := rb.Report(c.Files, in, res)
	var buf bytes.Buffer
	err = rep.WriteJSONLine(&buf)
	line := buf.Bytes()
	if err != nil {
		return result{err: fmt.Errorf("encoding the report of %s: %w", c.Files[0], err)}
	}
	return result{line: line, faults: rep.Captures[0].Faults, bytes: read, findings: rep.Findings}
}

// errorResult is the error record of a capture that could not be read.
func errorResult(c Capture, err error) result {
	msg := err.Error()
	if pe, ok := err.(*os.PathError); ok {
		msg = pe.Path + ": " + pe.Err.Error()
	}
	line, eerr := compactJSON(ErrorRecord{Schema: report.Schema, Captures: []ErrorCapture{{Files: c.Files}}, Error: msg})
	if eerr != nil {
		return result{err: eerr}
	}
	return result{line: line, failed: true, errText: msg}
}
