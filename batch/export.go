package batch

import (
	"context"
	"path/filepath"
	"strings"
)

// What other drivers of the same job use (beam/, a nested module running
// it on Apache Beam): the grouping rule split into a key and a per-key
// step, one capture's line, and the order of the lines.

// SeriesKey returns the key under which path is to be grouped with the
// other files found before Group is called on each group: Group over the
// files of each key gives the captures Group gives over all the files.
// It is the file's directory and its name without any counter,
// timestamp, capture extension or compression suffix (name.pcap3.gz,
// name-20261122-101500.pcap and name_00001_20261122101500.pcapng are all
// "dir/name"), which every name series the file could join shares: a
// file such as name-1.pcap may start the tcpdump -C series name-1.pcap1,
// name-1.pcap2, ... or belong to the series name-1.pcap, name-2.pcap, ...
// depending on the other files, and both have its key.
func SeriesKey(path string) string {
	dir, base := filepath.Split(path)
	for _, z := range []string{".gz", ".zst"} {
		if len(base) > len(z) && strings.EqualFold(base[len(base)-len(z):], z) {
			base = base[:len(base)-len(z)]
			break
		}
	}
	if m := tcpdumpName.FindStringSubmatch(base); m != nil {
		base = m[1]
	}
	if ext := filepath.Ext(base); ext != "" && digitRun(ext[1:]) != len(ext)-1 {
		base = base[:len(base)-len(ext)]
	}
	if m := counterName.FindStringSubmatch(base); m != nil {
		base = m[1]
	}
	return dir + "\x00" + base
}

// CompareCaptures orders captures as the lines of an output file are
// ordered: by the first file's path, numbers compared as numbers, then by
// their files.
func CompareCaptures(a, b Capture) int {
	if c := naturalCompare(a.Files[0], b.Files[0]); c != 0 {
		return c
	}
	return compareStrings(a.key(), b.key())
}

// AnalyseCapture analyses one capture as Run does and returns its output
// line (ending in a newline): the report, with its resume key, or the
// error record of a capture that cannot be read (failed is then true).
// opts are completed as Run completes them; Workers, Progress and Now are
// not used. err is set only when ctx is done or the report cannot be
// encoded.
func AnalyseCapture(ctx context.Context, c Capture, opts Options) (line []byte, failed bool, err error) {
	r := newRunner(opts)
	jobs := r.prepare(ctx, []Capture{c})
	res := r.analyse(ctx, jobs[0])
	switch {
	case res.canceled:
		return nil, false, ctx.Err()
	case res.err != nil:
		return nil, false, res.err
	}
	return res.line, res.failed, nil
}

// CaptureName reports whether a file is taken as a capture by its name
// alone (.pcap, .pcapng or .cap, a tcpdump -C counter, .gz or .zst), as
// Find takes files where it cannot look at their content.
func CaptureName(path string) bool { return captureName.MatchString(path) }

// KeyLogNames lists the key logs that may lie beside the files of a
// capture, in the order they are read (see the package documentation).
func KeyLogNames(files []string) []string { return keyLogNames(files) }
