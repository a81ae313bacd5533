package pipeline

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/h2scope/h2scope/batch"
	"github.com/h2scope/h2scope/dissect"
)

// Big captures across workers.
//
// A capture of Settings.SplitBytes or more (or every capture, with
// Settings.Shards above 1) is analysed by K workers rather than one:
//
//	splitFn         the capture -> K tasks (capture, shard k of K)
//	Reshuffle       the tasks spread over the workers
//	analyseShardFn  batch.AnalyseShard: each worker reads the whole capture
//	                and analyses the connections of its shard; the records
//	                of its connections go to a part file, gzipped; it emits
//	                its partial (the detectors' and tables' state, small)
//	                keyed by the capture
//	CombinePerKey   mergeShardsFn: the partials merged (batch.MergePartials),
//	                on the workers as the runner lifts the combiner
//	mergedFn        batch.MergeShards: the merged partial and the K record
//	                files, read as streams, give the capture's line, which
//	                goes to its part file as an unsplit capture's does
//
// The line is the one a single worker writes for the capture, and the one
// h2scope batch and h2scope analyze write, byte for byte, but past 10,000
// pools (see the README on --shards): which clients keep a pool of their
// own, and the "*" pools' counts, then depend on the split.

// ShardTask is one shard of a capture to analyse.
type ShardTask struct {
	// Files and Err are the capture's (Capture).
	Files []string
	Err   string
	// Index is the shard, of Count.
	Index, Count int
}

// ShardPart is the analysis of one or several shards of a capture, as
// the workers hand it on and the combiner merges it (its accumulator:
// the runner encodes it between workers).
type ShardPart struct {
	// Partial is batch.AnalyseShard's, or several merged.
	Partial []byte
	// Records are the part files holding the shards' connection
	// records (none when the reports hold no connection), sorted.
	Records []string
	// Dirs are the local directories the shards of a remote capture
	// were copied to, which their texts name: the line names the
	// remote directory instead.
	Dirs []string
	// Bytes is the capture's size, counted by shard 0.
	Bytes int64
}

// AutoSplitBytes is the capture size from which Settings.Shards zero
// splits a capture across workers, one per AutoSplitBytes.
const AutoSplitBytes = 1 << 30

// MaxAutoShards bounds the workers Settings.Shards zero splits a capture
// across.
const MaxAutoShards = 64

// captureKey is the key a capture's shards are merged under, and
// keyFiles its files back.
func captureKey(files []string) string { return strings.Join(files, "\x00") }
func keyFiles(key string) []string     { return strings.Split(key, "\x00") }

// splitFn sends each capture whole to one worker, or in shards to
// several (see Settings.Shards).
type splitFn struct {
	// Settings decide the split.
	Settings Settings
}

func (f *splitFn) Setup() error { return inDir(f.Settings.Dir) }

func (f *splitFn) ProcessElement(ctx context.Context, c Capture, whole func(Capture), split func(ShardTask)) error {
	k := f.Settings.Shards
	if k <= 0 {
		k = 1
		if c.Err == "" {
			size, err := captureSize(ctx, c.Files)
			if err != nil {
				return err
			}
			k = batch.ShardsFor(0, size, f.Settings.splitBytes(), MaxAutoShards)
		}
	}
	if k == 1 {
		whole(c)
		return nil
	}
	for i := range k {
		split(ShardTask{Files: c.Files, Err: c.Err, Index: i, Count: k})
	}
	return nil
}

// captureSize returns the size of the files, local or remote; files that
// cannot be read count 0 (the analysis reports them).
func captureSize(ctx context.Context, files []string) (int64, error) {
	if !isRemote(files[0]) {
		return sizeOf(files), nil
	}
	fs, err := filesystem.New(ctx, files[0])
	if err != nil {
		return 0, err
	}
	defer fs.Close()
	var n int64
	for _, name := range files {
		if s, err := fs.Size(ctx, name); err == nil {
			n += s
		}
	}
	return n, nil
}

// analyseShardFn analyses one shard of a capture.
type analyseShardFn struct {
	// Settings decide the report.
	Settings Settings
	// Parts is the directory the records are written to (PartsDir).
	Parts string

	opts batch.Options // from Settings, in Setup
}

func (f *analyseShardFn) Setup() (err error) {
	f.opts, err = f.Settings.workerOptions()
	return err
}

func (f *analyseShardFn) ProcessElement(ctx context.Context, t ShardTask, emit func(string, ShardPart)) error {
	bc := batch.Capture{Files: t.Files}
	if t.Err != "" {
		bc.Err = errors.New(t.Err)
	}
	var out ShardPart
	var st *staged
	if t.Err == "" && isRemote(t.Files[0]) {
		var err error
		if st, err = stage(ctx, t.Files, true); err != nil {
			return err
		}
		defer st.remove()
		bc.Files = st.local
		out.Dirs = []string{st.dir}
	}
	size := sizeOf(bc.Files)
	if t.Index == 0 {
		out.Bytes = size
	}
	opts := f.opts
	opts.Dissect.Shards = shardsFor(f.Settings.WorkerShards, size)
	shard := dissect.ShardOf{Index: t.Index, Count: t.Count}
	var err error
	if !batch.ShardRecords(opts) {
		out.Partial, err = batch.AnalyseShard(ctx, bc, shard, opts, nil)
	} else {
		name := f.Parts + strings.TrimSuffix(partName(t.Files), ".ndjson") + fmt.Sprintf(".shard-%d-of-%d.records.gz", t.Index, t.Count)
		err = writeWhole(ctx, name, false, func(w io.Writer) error {
			zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
			if err != nil {
				return err
			}
			if out.Partial, err = batch.AnalyseShard(ctx, bc, shard, opts, zw); err != nil {
				return err
			}
			return zw.Close()
		})
		out.Records = []string{name}
	}
	if err != nil {
		return err
	}
	emit(captureKey(t.Files), out)
	return nil
}

// mergeShardsFn merges the partials of a capture's shards.
type mergeShardsFn struct{}

func (mergeShardsFn) MergeAccumulators(a, b ShardPart) (ShardPart, error) {
	switch {
	case len(a.Partial) == 0:
		return b, nil
	case len(b.Partial) == 0:
		return a, nil
	}
	p, err := batch.MergePartials(a.Partial, b.Partial)
	if err != nil {
		return ShardPart{}, err
	}
	recs := slices.Concat(a.Records, b.Records)
	slices.Sort(recs)
	return ShardPart{Partial: p, Records: recs, Dirs: slices.Concat(a.Dirs, b.Dirs), Bytes: a.Bytes + b.Bytes}, nil
}

// mergedFn writes the line of a capture from its shards' merged partial
// and records.
type mergedFn struct {
	// Settings decide the report.
	Settings Settings
	// Parts is the directory of the records and the lines (PartsDir).
	Parts string

	opts batch.Options // from Settings, in Setup
}

func (f *mergedFn) Setup() (err error) {
	f.opts, err = f.Settings.workerOptions()
	return err
}

func (f *mergedFn) ProcessElement(ctx context.Context, key string, part ShardPart) (Line, error) {
	files := keyFiles(key)
	var fs filesystem.Interface
	if isRemote(f.Parts) {
		var err error
		if fs, err = filesystem.New(ctx, f.Parts); err != nil {
			return Line{}, err
		}
		defer fs.Close()
	}
	var readers []io.Reader
	for _, name := range part.Records {
		var r io.ReadCloser
		var err error
		if fs == nil {
			r, err = os.Open(name)
		} else {
			r, err = fs.OpenRead(ctx, name)
		}
		if err != nil {
			return Line{}, fmt.Errorf("reading a shard's records: %w", err)
		}
		defer r.Close()
		zr, err := gzip.NewReader(bufio.NewReaderSize(r, 256<<10))
		if err != nil {
			return Line{}, fmt.Errorf("reading %s: %w", name, err)
		}
		readers = append(readers, zr)
	}
	line, failed, err := batch.MergeShards(ctx, batch.Capture{Files: files}, part.Partial, readers, f.opts)
	if err != nil {
		return Line{}, err
	}
	if len(part.Dirs) > 0 {
		remote := (&staged{remoteDir: files[0][:strings.LastIndex(files[0], "/")+1]})
		for _, d := range part.Dirs {
			remote.dir = d
			line = remote.rename(line)
		}
	}
	capturesCount.Inc(ctx, 1)
	filesCount.Inc(ctx, int64(len(files)))
	bytesCount.Inc(ctx, part.Bytes)
	if failed {
		failedCount.Inc(ctx, 1)
	}
	name := partName(files)
	if err := writeWhole(ctx, f.Parts+name, false, func(w io.Writer) error {
		_, err := w.Write(line)
		return err
	}); err != nil {
		return Line{}, err
	}
	return Line{Files: files, Part: name}, nil
}
