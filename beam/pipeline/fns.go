package pipeline

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
		bad(Capture{Files: c.Files, Err: batch.ErrorText(c.Err)})
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

// workerOptions makes s.Dir the working directory (see inDir) and
// returns the options of s for a DoFn's Setup, logging to the worker's
// log.
func (s *Settings) workerOptions() (batch.Options, error) {
	if err := inDir(s.Dir); err != nil {
		return batch.Options{}, err
	}
	o, err := s.options()
	if err != nil {
		return batch.Options{}, err
	}
	o.Log = logWriter{}
	return o, nil
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
	// Parts is the directory the lines are written to (PartsDir).
	Parts string

	opts batch.Options // from Settings, in Setup
}

func (f *analyseFn) Setup() (err error) {
	f.opts, err = f.Settings.workerOptions()
	return err
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
	opts.Dissect.Shards = shardsFor(f.Settings.WorkerShards, size)
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
	part := partName(c.Files)
	if err := writeWhole(ctx, f.Parts+part, false, func(w io.Writer) error {
		_, err := w.Write(line)
		return err
	}); err != nil {
		return Line{}, err
	}
	return Line{Files: c.Files, Part: part}, nil
}

// partName names the part file of the capture of files.
func partName(files []string) string {
	h := sha256.Sum256([]byte(strings.Join(files, "\x00")))
	return hex.EncodeToString(h[:16]) + ".ndjson"
}

// PartsDir returns the directory, ending in "/", where the lines of the
// output out are written before they are gathered: ".NAME.parts/" beside
// it.
func PartsDir(out string) string {
	i := strings.LastIndex(out, "/")
	return out[:i+1] + "." + out[i+1:] + ".parts/"
}

// RemoveParts removes the part files of the output out once it is
// written; a file system that cannot remove leaves them.
func RemoveParts(ctx context.Context, out string) error {
	dir := PartsDir(out)
	if !isRemote(out) {
		return os.RemoveAll(dir)
	}
	fs, err := filesystem.New(ctx, dir)
	if err != nil {
		return err
	}
	defer fs.Close()
	rm, ok := fs.(filesystem.Remover)
	if !ok {
		return fmt.Errorf("%s: cannot remove files there", dir)
	}
	names, err := fs.List(ctx, dir+"*")
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, rm.Remove(ctx, n))
	}
	return errors.Join(errs...)
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

// writeFn copies every line, in batch's order, from its part file to
// Out.
type writeFn struct {
	// Out is the output file: a local path or a URL.
	Out string
	// Parts is the directory of the part files (PartsDir).
	Parts string
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
	var fs filesystem.Interface
	if isRemote(f.Parts) {
		var err error
		if fs, err = filesystem.New(ctx, f.Parts); err != nil {
			return err
		}
		defer fs.Close()
	}
	return writeWhole(ctx, f.Out, true, func(w io.Writer) error {
		for _, l := range all {
			if err := copyPart(ctx, fs, f.Parts+l.Part, w); err != nil {
				return err
			}
		}
		return nil
	})
}

// copyPart copies the part file name, of fs (nil: local), to w.
func copyPart(ctx context.Context, fs filesystem.Interface, name string, w io.Writer) error {
	var r io.ReadCloser
	var err error
	if fs == nil {
		r, err = os.Open(name)
	} else {
		r, err = fs.OpenRead(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("reading a line: %w", err)
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

// WriteFile writes data to name whole (see writeWhole).
func WriteFile(ctx context.Context, name string, data []byte) error {
	return writeWhole(ctx, name, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeWhole writes name whole with write: a local file through a
// temporary file beside it (its directory made if missing), synced when
// sync is set, and renamed over it, so that a reader or a crash never sees
// part of it; a file of another scheme through the Beam file system (an
// object store's object appears whole when closed).
func writeWhole(ctx context.Context, name string, sync bool, write func(io.Writer) error) error {
	if isRemote(name) {
		fs, err := filesystem.New(ctx, name)
		if err != nil {
			return err
		}
		defer fs.Close()
		w, err := fs.OpenWrite(ctx, name)
		if err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		err = write(w)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // nothing is there after the rename
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil && sync {
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
