// Package pipeline is `h2scope batch` as an Apache Beam pipeline, so that
// archives of thousands of captures are analysed by many machines: on the
// Prism runner in-process by default, and unchanged on Google Cloud
// Dataflow, Flink or Spark.
//
// # Stages
//
//	Impulse
//	  -> expand      patterns -> files (batch.Find's rule; gs://, s3:// listed by the Beam file system)
//	  -> key         each file by batch.SeriesKey: every file its name series could hold
//	  -> GroupByKey
//	  -> group       batch.Group over each key's files: the rotated files of one capture together
//	  -> split       each capture whole, or in K shards when big (see split.go)
//	  -> Reshuffle   captures spread over the workers
//	  -> analyse     batch.AnalyseCapture: one reassembler over a capture's files in rotation order
//	     (a split capture: Reshuffle -> analyse-shard -> CombinePerKey -> merged, one line)
//	  -> Flatten, AddFixedKey, GroupByKey
//	  -> write       the lines in batch's order, written whole under one name
//
// The lines are those `h2scope batch` writes for the same inputs, byte for
// byte, resume keys included, when both name the same h2scope version
// (Settings.Version).
//
// # Retries
//
// Runners retry bundles. Every stage is deterministic, and the output is
// written once, by the last stage, to a temporary name beside it that is
// renamed over it (a local path), or as one object that appears whole when
// closed (gs://, s3://): a retried write writes the same bytes again.
//
// # Remote captures
//
// Files under gs://, s3:// (or any scheme a Beam file system is
// registered for) are copied to a local temporary directory on the worker,
// with the key logs beside them and their modification times, analysed
// there and removed; the report names them by their URLs. The files of a
// rotated series are copied once more to read their times when grouping.
//
// # Worker configuration
//
// # Output
//
// Each capture's line is written by the worker that analysed it to a part
// file named by a hash of the capture's files, in PartsDir(out); the last
// stage gathers only the captures' names, sorts them and copies the parts
// into the output in that order, so that no worker holds every line. The
// launcher removes the parts once the pipeline is done.
//
// Every DoFn carries its configuration in exported fields (serialised
// with the pipeline), never in flags or package variables, and every
// DoFn, emitter and iterator is registered in init, as workers that run
// this binary on another machine need.
package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/batch"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/report"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Capture)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Line)(nil)).Elem())
	register.DoFn4x1[context.Context, []byte, func(string, string), func(Capture), error](&expandFn{})
	register.DoFn4x1[context.Context, string, func(*string) bool, func(Capture), error](&groupFn{})
	register.DoFn2x2[context.Context, Capture, Line, error](&analyseFn{})
	register.DoFn3x1[context.Context, int, func(*Line) bool, error](&writeFn{})
	beam.RegisterType(reflect.TypeOf((*ShardTask)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*ShardPart)(nil)).Elem())
	register.DoFn4x1[context.Context, Capture, func(Capture), func(ShardTask), error](&splitFn{})
	register.DoFn3x1[context.Context, ShardTask, func(string, ShardPart), error](&analyseShardFn{})
	register.Combiner1[ShardPart](&mergeShardsFn{})
	register.DoFn3x2[context.Context, string, ShardPart, Line, error](&mergedFn{})
	register.Emitter1[ShardTask]()
	register.Emitter2[string, ShardPart]()
	register.Emitter1[Capture]()
	register.Emitter2[string, string]()
	register.Iter1[string]()
	register.Iter1[Line]()
}

// Settings are what decides the reports, as `h2scope batch`'s flags set
// them. They travel to the workers inside the DoFns, as JSON. The zero
// value analyses as `h2scope batch` does without flags.
type Settings struct {
	// Gap is the most time between rotated files of one capture; zero
	// means batch.DefaultGap.
	Gap time.Duration
	// Workers is how many files of a name series are read at once to find
	// their times when grouping; zero means the worker's CPU count.
	Workers int
	// Config is the detectors' thresholds, analyze.Config as JSON; ""
	// means analyze.DefaultConfig().
	Config string
	// NoRedact shows secrets as captured (report.Redaction.Off).
	NoRedact bool
	// Connections selects the connections each report holds
	// (report.ConnsNamed, ConnsAll, ConnsNone); "" means ConnsNamed.
	Connections string
	// KeyLogs are the --keylog files, read by the launcher, for every
	// capture (key logs beside the captures are found by the workers).
	KeyLogs []KeyLog
	// Version names the h2scope that analyses, in the resume keys; ""
	// means the version stamped in the worker binary (batch.Version).
	Version string
	// Shards splits each capture's analysis by connection over this many
	// workers (batch.AnalyseShard; the report is the same), each reading
	// the whole capture. Zero splits a capture of SplitBytes or more,
	// one shard per SplitBytes (at most MaxAutoShards), and leaves the
	// others whole.
	Shards int
	// SplitBytes is the capture size from which Shards zero splits a
	// capture; zero means AutoSplitBytes.
	SplitBytes int64
	// WorkerShards splits the analysis of a capture, or of a shard, by
	// connection over this many goroutines of its worker
	// (dissect.Options.Shards; the report is the same). Zero means one
	// per CPU but one for a capture of AutoShardBytes or more, else 1.
	WorkerShards int
	// Dir is the directory relative local paths are resolved in on the
	// workers (the launcher's working directory); "" leaves the workers'
	// own.
	Dir string
}

// KeyLog is a TLS key log given for every capture.
type KeyLog struct {
	Name string
	Data []byte
}

// AutoShardBytes is the capture size from which Settings.WorkerShards
// zero splits a capture's analysis over goroutines, as `h2scope analyze
// --shards 0` does.
const AutoShardBytes = 256 << 20

// splitBytes returns the size from which a capture is split across
// workers when Shards is zero.
func (s *Settings) splitBytes() int64 {
	if s.SplitBytes > 0 {
		return s.SplitBytes
	}
	return AutoSplitBytes
}

// EncodeConfig returns cfg as Settings.Config holds it.
func EncodeConfig(cfg analyze.Config) (string, error) {
	b, err := json.Marshal(cfg)
	return string(b), err
}

// options returns the batch options s stands for.
func (s *Settings) options() (batch.Options, error) {
	cfg := analyze.DefaultConfig()
	if s.Config != "" {
		if err := json.Unmarshal([]byte(s.Config), &cfg); err != nil {
			return batch.Options{}, fmt.Errorf("h2scope-beam: decoding the detector thresholds: %w", err)
		}
	}
	o := batch.Options{
		Workers:     s.Workers,
		Gap:         s.Gap,
		Dissect:     dissect.Options{Dissect: true},
		Config:      &cfg,
		Redaction:   report.Redaction{Off: s.NoRedact},
		Connections: s.Connections,
		Version:     s.Version,
	}
	for _, k := range s.KeyLogs {
		o.KeyLogs = append(o.KeyLogs, batch.KeyLogFile{Name: k.Name, Data: k.Data})
	}
	return o, nil
}

// Capture is a capture set: the files of one capture, in rotation order,
// or a path that could not be read (Err says why, as the error record
// will).
type Capture struct {
	Files []string
	Err   string
}

// Line is one capture's output line, written to a part file.
type Line struct {
	// Files are the capture's files, which order the lines.
	Files []string
	// Part is the name of the part file holding the line, in PartsDir.
	Part string
}

// Job is one run: the inputs, the output and the settings.
type Job struct {
	// Patterns are directories, globs and files, local or with a scheme
	// (gs://bucket/dir/*.pcap.gz).
	Patterns []string
	// Out is the NDJSON output file, local or with a scheme.
	Out string
	// Settings decide the reports.
	Settings Settings
}

// Build returns the pipeline of j.
func Build(j Job) (*beam.Pipeline, error) {
	if _, err := j.Settings.options(); err != nil {
		return nil, err
	}
	p, s := beam.NewPipelineWithRoot()
	imp := beam.Impulse(s.Scope("impulse"))
	files, bad := beam.ParDo2(s.Scope("expand"), &expandFn{Patterns: j.Patterns, Dir: j.Settings.Dir}, imp)
	sets := beam.ParDo(s.Scope("group"), &groupFn{Gap: j.Settings.Gap, Workers: j.Settings.Workers, Dir: j.Settings.Dir},
		beam.GroupByKey(s.Scope("by-series"), files))
	whole, split := beam.ParDo2(s.Scope("split"), &splitFn{Settings: j.Settings}, beam.Flatten(s, sets, bad))
	parts := PartsDir(j.Out)
	lines := beam.ParDo(s.Scope("analyse"), &analyseFn{Settings: j.Settings, Parts: parts},
		beam.Reshuffle(s.Scope("spread"), whole))
	shards := beam.ParDo(s.Scope("analyse-shard"), &analyseShardFn{Settings: j.Settings, Parts: parts},
		beam.Reshuffle(s.Scope("spread-shards"), split))
	merged := beam.CombinePerKey(s.Scope("merge-shards"), &mergeShardsFn{}, shards)
	lines = beam.Flatten(s, lines, beam.ParDo(s.Scope("merged"), &mergedFn{Settings: j.Settings, Parts: parts}, merged))
	all := beam.GroupByKey(s.Scope("gather"), beam.AddFixedKey(s.Scope("one-key"), lines))
	beam.ParDo0(s.Scope("write"), &writeFn{Out: j.Out, Parts: parts}, all)
	return p, nil
}
