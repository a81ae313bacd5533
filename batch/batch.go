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
	"sync/atomic"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/internal/safeio"
	"github.com/h2scope/h2scope/report"
)

// Options configure Run. The zero value analyses with runtime.NumCPU()
// workers, the default thresholds, redaction on and no key log but those
// found beside the captures.
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
	// KeyLogs are TLS key logs (--keylog) for every capture. Each capture
	// gets a fresh key log holding them and the key logs found beside its
	// files (see the package documentation), so that the secrets one
	// capture carries in its Decryption Secrets Blocks, or has beside it,
	// do not reach another.
	KeyLogs []KeyLogFile
	// Config holds the detectors' thresholds; nil means
	// analyze.DefaultConfig().
	Config *analyze.Config
	// Redaction says how secrets in captured strings are shown.
	Redaction report.Redaction
	// Limits bound each connection's timeline in the reports; the zero
	// value means report.DefaultLimits.
	Limits report.Limits
	// Connections selects the connections each report holds
	// (report.ConnsNamed, report.ConnsAll, report.ConnsNone); "" means
	// report.ConnsNamed.
	Connections string
	// Version names the h2scope that analyses, in resume keys; "" means
	// Version().
	Version string
	// Log, if not nil, receives a line for each capture that could not be
	// read or was cut short, as its line is written, and warnings about
	// key logs found beside captures.
	Log io.Writer
	// Progress, if not nil, shows the files done of all, the bytes read,
	// the rate and the time left while the run goes on; it is used from
	// Run's goroutine only, and cleared before Run returns.
	Progress *report.Progress
	// Now returns the current time, for the rate and the elapsed time;
	// nil means time.Now.
	Now func() time.Time
}

// KeyLogFile is a TLS key log given for every capture.
type KeyLogFile struct {
	// Name names it in messages; Data is its content.
	Name string
	Data []byte
}

// limits returns the timeline limits reports are built with.
func (o *Options) limits() report.Limits {
	if o.Limits == (report.Limits{}) {
		return report.DefaultLimits
	}
	return o.Limits
}

func (o *Options) connections() string {
	if o.Connections == "" {
		return report.ConnsNamed
	}
	return o.Connections
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Counts counts captures, or their files, by what the output holds for
// them once the run is over (its old and new lines), and by what this run
// did.
type Counts struct {
	// Reports counts the reports in the output, Partial those of them cut
	// short by a fault (the packets before it were analysed), and Failed
	// the error records of captures that could not be read at all.
	Reports, Partial, Failed int
	// Analysed counts the captures analysed in this run (error records
	// included), Reanalysed those of them that replaced a line of an
	// earlier run: their files, key logs, options or h2scope version had
	// changed, or they had failed. Reused counts the lines of an earlier
	// run kept because nothing that decides them changed, Other the lines
	// of captures this run was not given, kept as they were. Reports plus
	// Failed is Analysed plus Reused plus Other.
	Analysed, Reanalysed, Reused, Other int
	// Pending counts the captures not analysed because the run was
	// interrupted.
	Pending int
}

// Summary says what the output holds and what this run did.
type Summary struct {
	// Captures and Files count the captures and their files.
	Captures, Files Counts
	// Bytes counts the bytes read in this run from the files as stored.
	Bytes int64
	// Findings counts the findings of every report in the output (old and
	// new lines) by kind, then by severity.
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
// "h2scope batch:": what the output holds, what this run did, the bytes
// read and the findings in the output.
func (s *Summary) Write(w io.Writer) error {
	var b bytes.Buffer
	c, f := s.Captures, s.Files
	fmt.Fprintf(&b, "h2scope batch: %s holds %s (%s): %s", s.Output, plural(c.Reports+c.Failed, "capture"),
		plural(f.Reports+f.Failed, "file"), plural(c.Reports, "report"))
	if c.Partial > 0 {
		fmt.Fprintf(&b, " (%d cut short)", c.Partial)
	}
	fmt.Fprintf(&b, ", %d failed", c.Failed)
	if c.Failed > 0 {
		fmt.Fprintf(&b, " (%s)", plural(f.Failed, "file"))
	}
	fmt.Fprintf(&b, "\nh2scope batch: this run analysed %s (%s)", plural(c.Analysed, "capture"), plural(f.Analysed, "file"))
	if c.Reanalysed > 0 {
		fmt.Fprintf(&b, ", %d of them again (changed files, key logs, options or version, or failed before)", c.Reanalysed)
	}
	fmt.Fprintf(&b, "; reused %d unchanged", c.Reused)
	if c.Other > 0 {
		fmt.Fprintf(&b, "; kept %s of captures not given", plural(c.Other, "line"))
	}
	if c.Pending > 0 {
		fmt.Fprintf(&b, "; %d not analysed (interrupted)", c.Pending)
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

// Origins of an output line, for Summary.add.
const (
	fromRun   = iota // analysed in this run
	fromReuse        // an earlier run's line for a capture of this run, unchanged
	fromOther        // an earlier run's line for a capture not given to this run
)

// add counts one line of the output.
func (s *Summary) add(e *entry, from int) {
	for _, k := range []*Counts{&s.Captures, &s.Files} {
		n := 1
		if k == &s.Files {
			n = len(e.files)
		}
		switch {
		case e.failed:
			k.Failed += n
		default:
			k.Reports += n
			if e.partial {
				k.Partial += n
			}
		}
		switch from {
		case fromRun:
			k.Analysed += n
		case fromReuse:
			k.Reused += n
		case fromOther:
			k.Other += n
		}
	}
	for kind, n := range e.findings {
		m := s.Findings[kind]
		for i := range m {
			m[i] += n[i]
		}
		s.Findings[kind] = m
	}
}

// job is one capture of this run.
type job struct {
	c Capture
	// prints are the prints of its files; printErr, if not nil, is why
	// they could not be read (the capture is then analysed, to report it).
	prints   []filePrint
	printErr error
	size     int64    // the files' sizes
	keyLogs  []string // the key logs beside it
	key      string   // its resume key, "" when it has none
	// replaces is set when an earlier run's line for it is replaced.
	replaces bool
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

// runner is what the workers of one run share.
type runner struct {
	opts       Options
	optionsKey string
	version    string
	keyHashes  []string // of opts.KeyLogs
	warned     sync.Map // key log paths already warned about
	read       atomic.Int64
}

// Run analyses the captures that patterns name (see Find and Group) and
// writes one line per capture to the file out, resuming it if it exists
// (see the package documentation), or to stdout when out is "-". It
// returns once every capture is written, ctx is done, or writing fails;
// the summary counts what was done even then. Captures that cannot be
// read are not errors: they are written as ErrorRecords and counted in
// Summary.Captures.Failed. An output that is one of the captures, or holds
// a capture, is refused before anything is written.
func Run(ctx context.Context, patterns []string, out string, stdout io.Writer, opts Options) (*Summary, error) {
	start := opts.now()
	sum := &Summary{Findings: map[string][3]int{}, Output: out}
	if out == "-" {
		sum.Output = "standard output"
	}
	defer func() { sum.Elapsed = opts.now().Sub(start) }()
	r := newRunner(opts)
	opts = r.opts
	if out != "-" {
		if err := safeio.CheckOutputs(patterns, []string{out}); err != nil {
			return sum, err
		}
	}
	files, bad, err := Find(patterns)
	if err != nil {
		return sum, err
	}
	if out != "-" {
		// The output among the files found (through a link, say).
		if err := safeio.CheckOutputs(files, []string{out}); err != nil {
			return sum, err
		}
	}
	caps := append(Group(ctx, files, opts.Gap, opts.Workers), bad...)
	slices.SortStableFunc(caps, func(a, b Capture) int { return naturalCompare(a.Files[0], b.Files[0]) })
	if ctx.Err() != nil {
		return sum, ctx.Err()
	}
	jobs := r.prepare(ctx, caps)
	if ctx.Err() != nil {
		return sum, ctx.Err()
	}
	if out == "-" {
		o := &output{w: stdout, name: "standard output"}
		_, err := r.run(ctx, jobs, o, sum)
		return sum, err
	}

	// Which lines of an earlier run stay.
	entries, good, err := readOutput(out)
	if err != nil {
		return sum, err
	}
	byKey := map[string]*job{}
	for _, j := range jobs {
		byKey[j.c.key()] = j
	}
	last := map[string]int{} // the last line of each capture
	for i := range entries {
		last[entries[i].key] = i
	}
	var kept []*entry
	reused := map[*job]bool{}
	for i := range entries {
		e := &entries[i]
		j := byKey[e.key]
		switch {
		case last[e.key] != i:
			// An earlier line for the same capture: the last one counts.
		case j == nil:
			kept = append(kept, e)
			sum.add(e, fromOther)
		case !e.failed && e.resume != "" && e.resume == j.key:
			kept = append(kept, e)
			reused[j] = true
			sum.add(e, fromReuse)
		default:
			j.replaces = true
		}
	}
	if len(kept) != len(entries) {
		if err := rewrite(out, kept); err != nil {
			return sum, err
		}
		good = 0
		for _, e := range kept {
			good += e.n
		}
	}
	o, err := openAppend(out, good)
	if err != nil {
		return sum, err
	}
	var todo []*job
	for _, j := range jobs {
		if !reused[j] {
			todo = append(todo, j)
		}
	}
	written, err := r.run(ctx, todo, o, sum)
	if cerr := o.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return sum, err
	}
	// Lines in the order a clean run writes them.
	all := append(kept, written...)
	if !sorted(all) {
		slices.SortStableFunc(all, entryCompare)
		if err := rewrite(out, all); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// prepare reads the prints of the captures' files, finds the key logs
// beside them and computes their resume keys, on opts.Workers goroutines.
func (r *runner) prepare(ctx context.Context, caps []Capture) []*job {
	jobs := make([]*job, len(caps))
	hashes := sync.Map{} // key log path -> content hash, or "" when unreadable
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(r.opts.Workers, len(caps)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(caps) || ctx.Err() != nil {
					return
				}
				c := caps[i]
				j := &job{c: c}
				jobs[i] = j
				if c.Err != nil {
					continue
				}
				for _, f := range c.Files {
					p, err := fingerprint(f)
					if err != nil {
						j.printErr = err
						break
					}
					j.prints = append(j.prints, p)
					j.size += p.Size
				}
				j.keyLogs = besideKeyLogs(c.Files, r.opts.KeyLogs)
				if j.printErr != nil {
					continue
				}
				keyHashes := slices.Clone(r.keyHashes)
				for _, k := range j.keyLogs {
					h, ok := hashes.Load(k)
					if !ok {
						b, err := os.ReadFile(k)
						if err != nil {
							h = ""
						} else {
							h = contentHash(b)
						}
						hashes.Store(k, h)
					}
					if h != "" {
						keyHashes = append(keyHashes, h.(string))
					}
				}
				j.key = resumeKey(j.prints, keyHashes, r.optionsKey, r.version)
			}
		})
	}
	wg.Wait()
	for i := range jobs {
		if jobs[i] == nil { // not reached: ctx is done
			jobs[i] = &job{c: caps[i]}
		}
	}
	return jobs
}

// run analyses todo with opts.Workers workers and writes the lines in
// order, returning the entries it wrote.
func (r *runner) run(ctx context.Context, todo []*job, o *output, sum *Summary) (written []*entry, err error) {
	opts := &r.opts
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
				res := r.analyse(ctx, todo[i])
				res.i = i
				results <- res
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Progress: files done of all, bytes read of all.
	p := opts.Progress
	var filesTotal, filesDone int
	var bytesTotal int64
	for _, j := range todo {
		filesTotal += len(j.c.Files)
		bytesTotal += j.size
	}
	var tick <-chan time.Time
	if p != nil {
		defer p.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		tick = t.C
		p.UpdateFiles(0, filesTotal, 0, bytesTotal)
	}
	pending := map[int]result{}
	next := 0
	defer func() { sum.Captures.Pending, sum.Files.Pending = len(todo)-next, filesTotal-filesDone }()
	for next < len(todo) {
		var res result
		select {
		case res = <-results:
		case <-tick:
			p.UpdateFiles(filesDone, filesTotal, r.read.Load(), bytesTotal)
			continue
		case <-ctx.Done():
			return written, ctx.Err()
		}
		pending[res.i] = res
		for {
			res, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			if res.canceled {
				return written, ctx.Err()
			}
			if res.err != nil {
				return written, res.err
			}
			j := todo[next]
			e := &entry{off: o.size, n: int64(len(res.line)), key: j.c.key(), files: j.c.Files,
				failed: res.failed, partial: len(res.faults) > 0}
			for _, f := range res.findings {
				e.countFinding(f.Kind, f.Severity)
			}
			if err := o.writeLine(res.line); err != nil {
				return written, err
			}
			written = append(written, e)
			sum.add(e, fromRun)
			sum.Bytes += res.bytes
			if j.replaces {
				sum.Captures.Reanalysed++
				sum.Files.Reanalysed += len(j.c.Files)
			}
			if opts.Log != nil {
				if res.failed {
					fmt.Fprintf(opts.Log, "h2scope batch: %s\n", res.errText)
				}
				for _, f := range res.faults {
					fmt.Fprintf(opts.Log, "h2scope batch: %s (the packets before it were analysed)\n", f)
				}
			}
			next++
			filesDone += len(j.c.Files)
			p.UpdateFiles(filesDone, filesTotal, r.read.Load(), bytesTotal)
			<-slots
		}
	}
	return written, nil
}

// analyse analyses one capture and encodes its line. A panic in the
// dissectors (a bug) becomes this capture's error record, so that one
// capture cannot end a batch over thousands.
func (r *runner) analyse(ctx context.Context, j *job) (res result) {
	c, opts := j.c, &r.opts
	defer func() {
		if p := recover(); p != nil {
			res = errorResult(c, internalError(c, p))
		}
	}()
	if ctx.Err() != nil {
		return result{canceled: true}
	}
	if c.Err != nil {
		return errorResult(c, c.Err)
	}
	if j.printErr != nil {
		return errorResult(c, j.printErr)
	}
	// A fresh key log: the global key logs, then those beside the
	// capture; the resume key hashes what was read.
	do := opts.Dissect
	var keyHashes []string
	do.Keys, keyHashes = r.keyLog(j)
	var read int64
	do.Progress = func(n, _ int64) {
		r.read.Add(n - read)
		read = n
	}
	rb := r.builder(&do)
	defer rb.Close() // removes the spill file
	an, in, err := analyze.Stream(ctx, c.Files, do, *opts.Config, rb)
	if err != nil {
		if ctx.Err() != nil {
			return result{canceled: true}
		}
		res := errorResult(c, err)
		res.bytes = read
		return res
	}
	rep := rb.Report(c.Files, in, an)
	rep.Captures[0].ResumeKey = resumeKey(j.prints, keyHashes, r.optionsKey, r.version)
	var buf bytes.Buffer
	err = rep.WriteJSONLine(&buf)
	line := buf.Bytes()
	if err != nil {
		return result{err: fmt.Errorf("encoding the report of %s: %w", c.Files[0], err)}
	}
	return result{line: line, faults: rep.Captures[0].Faults, bytes: read, findings: rep.AnalysisFindings()}
}

// warn writes the problems of a key log found beside a capture to
// opts.Log, once per key log and run.
func (r *runner) warn(name string, errs []error) {
	if len(errs) == 0 || r.opts.Log == nil {
		return
	}
	if _, done := r.warned.LoadOrStore(name, true); done {
		return
	}
	for _, e := range errs {
		fmt.Fprintf(r.opts.Log, "h2scope batch: warning: key log: %v\n", e)
	}
}

// newRunner returns the runner of a run (Run's, AnalyseCapture's or
// a shard's), opts completed: Workers and Config default.
func newRunner(opts Options) *runner {
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Config == nil {
		cfg := analyze.DefaultConfig()
		opts.Config = &cfg
	}
	r := &runner{opts: opts, optionsKey: optionsKey(&opts), version: opts.Version}
	if r.version == "" {
		r.version = Version()
	}
	for _, k := range opts.KeyLogs {
		r.keyHashes = append(r.keyHashes, contentHash(k.Data))
	}
	return r
}

// keyLog returns a fresh key log for the capture of j (the global key
// logs, warned about by the caller once, then those beside it) and the
// hashes of what was read, which its resume key hashes.
func (r *runner) keyLog(j *job) (*tls.KeyLog, []string) {
	keys := tls.NewKeyLog()
	for _, k := range r.opts.KeyLogs {
		keys.Add(k.Data, k.Name)
	}
	hashes := slices.Clone(r.keyHashes)
	for _, name := range j.keyLogs {
		b, err := os.ReadFile(name)
		if err != nil {
			r.warn(name, []error{err})
			continue
		}
		_, errs := keys.Add(b, name)
		r.warn(name, errs)
		hashes = append(hashes, contentHash(b))
	}
	return keys, hashes
}

// ErrorText is the message the error record of a capture that could
// not be read gives for err: a path error as "PATH: what", as the
// ErrorRecord of Run and AnalyseCapture words it.
func ErrorText(err error) string {
	msg := err.Error()
	if pe, ok := err.(*os.PathError); ok {
		msg = pe.Path + ": " + pe.Err.Error()
	}
	return msg
}

// builder returns the report Builder of one capture (Close it: that
// removes its spill file). With do, the capture's dissection options,
// it takes do.Keys (pass the Builder to analyze.Stream, which hands it
// each connection); without (a merge of shards), it reads no capture.
func (r *runner) builder(do *dissect.Options) *report.Builder {
	rb := report.NewBuilder(r.opts.Redaction)
	rb.Limits = r.opts.limits()
	rb.Connections = r.opts.connections()
	rb.NoOverview = true // batch writes no HTML
	if do == nil {
		return rb
	}
	rb.Keys = do.Keys
	return rb
}

// internalError is the error of a capture whose analysis panicked with
// x (a bug in the dissectors).
func internalError(c Capture, x any) error {
	return fmt.Errorf("%s: h2scope internal error (a bug: please report it with this capture): %v", c.Files[0], x)
}

// errorResult is the error record of a capture that could not be read.
func errorResult(c Capture, err error) result {
	msg := ErrorText(err)
	line, eerr := compactJSON(ErrorRecord{Schema: report.Schema, Captures: []ErrorCapture{{Files: c.Files}}, Error: msg})
	if eerr != nil {
		return result{err: eerr}
	}
	return result{line: line, failed: true, errText: msg}
}
