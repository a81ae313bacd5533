package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"

	"github.com/h2scope/h2scope/batch"
)

// Counters, read back by the launcher for its summary.
var (
	capturesCount = beam.NewCounter("h2scope", "captures")
	filesCount    = beam.NewCounter("h2scope", "files")
	failedCount   = beam.NewCounter("h2scope", "failed")
	bytesCount    = beam.NewCounter("h2scope", "bytes")
)

// expandFn turns the patterns into capture files, each keyed by its
// batch.SeriesKey, and paths that cannot be read into failed captures.
type expandFn struct {
	// Patterns are the directories, globs and files given.
	Patterns []string
	// Dir is the directory relative local paths are in (see inDir).
	Dir string
}

func (f *expandFn) Setup() error { return inDir(f.Dir) }

func (f *expandFn) ProcessElement(ctx context.Context, _ []byte, emit func(string, string), bad func(Capture)) error {
	var local []string
	seen := map[string]bool{}
	for _, p := range f.Patterns {
		if !isRemote(p) {
			local = append(local, p)
			continue
		}
		files, err := listRemote(ctx, p)
		if err != nil {
			return err
		}
		for _, name := range files {
			if !seen[name] {
				seen[name] = true
				emit(batch.SeriesKey(name), name)
			}
		}
	}
	if len(local) == 0 {
		return nil
	}
	files, failed, err := batch.Find(local)
	if err != nil {
		return err
	}
	for _, name := range files {
		emit(batch.SeriesKey(name), name)
	}
	for _, c := range failed {
		bad(Capture{Files: c.Files, Err: errorText(c.Err)})
	}
	return nil
}

// inDir makes dir, when not "", the working directory, so that relative
// local paths name in a worker what they named where the job was launched
// and reports name them as h2scope batch run there would. The DoFns of
// one job all ask for the same directory; a worker where it does not
// exist keeps its own (and relative paths then fail as unreadable).
func inDir(dir string) error {
	if dir == "" {
		return nil
	}
	if wd, err := os.Getwd(); err == nil && wd == dir {
		return nil
	}
	if err := os.Chdir(dir); err != nil {
		log.Warnf(context.Background(), "h2scope-beam: relative paths are in %s, which this worker cannot enter: %v", dir, err)
	}
	return nil
}

// errorText is the message an error record gives for err, as batch
// writes it.
func errorText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// groupFn groups the files of one SeriesKey into captures (batch.Group).
type groupFn struct {
	// Gap is batch.Options.Gap.
	Gap time.Duration
	// Workers is how many files are read at once for their times; zero
	// means the CPU count.
	Workers int
	// Dir is the directory relative local paths are in (see inDir).
	Dir string
}

func (f *groupFn) Setup() error { return inDir(f.Dir) }

func (f *groupFn) ProcessElement(ctx context.Context, _ string, paths func(*string) bool, emit func(Capture)) error {
	var files []string
	var p string
	for paths(&p) {
		files = append(files, p)
	}
	slices.Sort(files) // the order the runner gave is not deterministic
	workers := f.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	names := files
	if len(files) > 1 && isRemote(files[0]) {
		// Group reads the times of a series' files.
		st, err := stage(ctx, files, false)
		if err != nil {
			return err
		}
		defer st.remove()
		files = st.local
	}
	for _, c := range batch.Group(ctx, files, f.Gap, workers) {
		for i, name := range c.Files {
			c.Files[i] = names[slices.Index(files, name)]
		}
		emit(Capture{Files: c.Files})
	}
	return ctx.Err()
}

// analyseFn analyses one capture into its output line.
type analyseFn struct {
	// Settings decide the report.
	Settings Settings

	opts batch.Options // from Settings, in Setup
}

func (f *analyseFn) Setup() error {
	if err := inDir(f.Settings.Dir); err != nil {
		return err
	}
	o, err := f.Settings.options()
	if err != nil {
		return err
	}
	o.Log = logWriter{}
	f.opts = o
	return nil
}

func (f *analyseFn) ProcessElement(ctx context.Context, c Capture) (Line, error) {
	bc := batch.Capture{Files: c.Files}
	if c.Err != "" {
		bc.Err = errors.New(c.Err)
	}
	opts := f.opts
	var st *staged
	if c.Err == "" && isRemote(c.Files[0]) {
		var err error
		if st, err = stage(ctx, c.Files, true); err != nil {
			return Line{}, err
		}
		defer st.remove()
		bc.Files = st.local
	}
	size := sizeOf(bc.Files)
	opts.Dissect.Shards = shardsFor(f.Settings.Shards, size)
	line, failed, err := batch.AnalyseCapture(ctx, bc, opts)
	if err != nil {
		return Line{}, err
	}
	if st != nil {
		line = st.rename(line)
	}
	capturesCount.Inc(ctx, 1)
	filesCount.Inc(ctx, int64(len(c.Files)))
	bytesCount.Inc(ctx, size)
	if failed {
		failedCount.Inc(ctx, 1)
	}
	return Line{Files: c.Files, Text: string(line)}, nil
}

// sizeOf returns the total size of the local files, leaving out those
// that cannot be read.
func sizeOf(files []string) int64 {
	var n int64
	for _, name := range files {
		if fi, err := os.Stat(name); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// shardsFor returns the shards a capture of size bytes is analysed with:
// n if set, else one per CPU but one (the reader's) when the capture is
// large enough and there are CPUs to spare, else 1.
func shardsFor(n int, size int64) int {
	if n > 0 {
		return n
	}
	if cpus := runtime.NumCPU(); cpus >= 3 && size >= AutoShardBytes {
		return min(cpus-1, 32)
	}
	return 1
}

// logWriter writes each line to the worker's log, as a warning.
type logWriter struct{}

func (logWriter) Write(p []byte) (int, error) {
	log.Warn(context.Background(), strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// writeFn writes every line, in batch's order, to Out.
type writeFn struct {
	// Out is the output file: a local path or a URL.
	Out string
}

func (f *writeFn) ProcessElement(ctx context.Context, _ int, lines func(*Line) bool) error {
	var all []Line
	var l Line
	for lines(&l) {
		all = append(all, l)
	}
	slices.SortFunc(all, func(a, b Line) int {
		return batch.CompareCaptures(batch.Capture{Files: a.Files}, batch.Capture{Files: b.Files})
	})
	var buf bytes.Buffer
	for _, l := range all {
		buf.WriteString(l.Text)
	}
	return WriteFile(ctx, f.Out, buf.Bytes())
}

// WriteFile writes data to name whole: a local file through a temporary
// file beside it, synced and renamed over it, so that a reader or a crash
// never sees part of it; a file of another scheme by one write of the
// Beam file system (an object store's object appears whole when closed).
func WriteFile(ctx context.Context, name string, data []byte) error {
	if isRemote(name) {
		fs, err := filesystem.New(ctx, name)
		if err != nil {
			return err
		}
		defer fs.Close()
		if err := filesystem.Write(ctx, fs, name, data); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // nothing is there after the rename
	w := bufio.NewWriterSize(tmp, 1<<20)
	_, err = w.Write(data)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
