package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/report"
)

// ErrorRecord is the line written for a capture that could not be read at
// all, in place of its report. It has the report's schema and capture
// file list, so that consumers and a resumed run find the capture in it.
type ErrorRecord struct {
	// Schema is report.Schema.
	Schema string `json:"schema"`
	// Captures holds one element naming the capture's files.
	Captures []ErrorCapture `json:"captures"`
	// Error says what failed, naming the file and the byte offset or frame
	// where that is known.
	Error string `json:"error"`
}

// ErrorCapture names the files of a capture that could not be read.
type ErrorCapture struct {
	// Files are the capture's files, as in report.Capture.
	Files []string `json:"files"`
}

// line is what a resumed run reads of each output line: the capture's
// files and resume key, whether it failed or was cut short, and its
// findings' kinds and severities (for the closing summary).
type line struct {
	Schema   string `json:"schema"`
	Captures []struct {
		Files     []string `json:"files"`
		ResumeKey string   `json:"resume_key"`
		Faults    []string `json:"faults"`
	} `json:"captures"`
	Error    string `json:"error"`
	Findings []struct {
		Kind     string           `json:"kind"`
		Severity analyze.Severity `json:"severity"`
	} `json:"findings"`
}

// entry is one complete line of the output file.
type entry struct {
	off, n   int64  // where the line is in the file, newline included
	key      string // Capture.key of its files
	files    []string
	resume   string // its resume key ("" for an error record or an older h2scope's line)
	failed   bool   // an error record
	partial  bool   // a report cut short
	findings map[string][3]int
}

// countFinding counts a finding of the line by kind and severity.
func (e *entry) countFinding(kind string, sev analyze.Severity) {
	if e.findings == nil {
		e.findings = map[string][3]int{}
	}
	n := e.findings[kind]
	if sev >= 0 && int(sev) < len(n) {
		n[sev]++
	}
	e.findings[kind] = n
}

// readEntry parses a complete output line; ok is false when it is not an
// h2scope report or error record.
func readEntry(b []byte) (e entry, ok bool) {
	var l line
	if json.Unmarshal(b, &l) != nil || len(l.Captures) == 0 || len(l.Captures[0].Files) == 0 {
		return e, false
	}
	c := l.Captures[0]
	e = entry{n: int64(len(b)), key: Capture{Files: c.Files}.key(), files: c.Files, resume: c.ResumeKey,
		failed: l.Error != "", partial: len(c.Faults) > 0}
	for _, f := range l.Findings {
		e.countFinding(f.Kind, f.Severity)
	}
	if e.failed {
		e.resume = ""
	}
	return e, true
}

// readOutput reads the lines of an existing output file name, in file
// order, and the length of those complete lines: anything after it is a
// torn last line (no newline at the end), which a killed run leaves. A
// complete line that is not a report is an error: the file is then left
// alone. A missing file has no lines.
func readOutput(name string) (entries []entry, good int64, err error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	badLine := 0 // number of an invalid complete line, if one was seen
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("reading %s: %w", name, err)
		}
		if len(b) == 0 {
			break
		}
		if badLine != 0 {
			// A complete line (with its newline) is never torn: the
			// file is not an h2scope batch output.
			return nil, 0, fmt.Errorf("%s: line %d is not an h2scope report; not writing to it", name, badLine)
		}
		if err == io.EOF {
			break // a torn last line, without its newline
		}
		e, ok := readEntry(b)
		if !ok {
			badLine = n
			continue
		}
		e.off = good
		entries = append(entries, e)
		good += e.n
	}
	if badLine != 0 {
		return nil, 0, fmt.Errorf("%s: line %d is not an h2scope report; not writing to it", name, badLine)
	}
	return entries, good, nil
}

// output writes whole lines to the output.
type output struct {
	w    io.Writer
	f    *os.File // the output file, synced after each line; nil for stdout
	name string
	size int64 // bytes in the file
}

// writeLine writes b, one complete line, with a single write, and syncs
// the file.
func (o *output) writeLine(b []byte) error {
	if _, err := o.w.Write(b); err != nil {
		return o.err(err)
	}
	o.size += int64(len(b))
	if o.f != nil {
		if err := o.f.Sync(); err != nil {
			return o.err(err)
		}
	}
	return nil
}

// close closes the output file.
func (o *output) close() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f = nil
	return o.err(err)
}

func (o *output) err(err error) error {
	if err == nil {
		return nil
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("writing %s: %w", o.name, err)
}

// openAppend opens the output file name for appending once its first
// size bytes are its complete lines: a torn last line beyond them is cut
// away. The file is created when missing.
func openAppend(name string, size int64) (*output, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	o := &output{w: f, f: f, name: name, size: size}
	if fi, err := f.Stat(); err == nil && fi.Size() != size {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("cutting the torn last line of %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, o.err(err)
		}
	}
	return o, nil
}

// rewrite replaces the output file name by one holding the given lines of
// it, in that order: they are copied to a new file beside it, which is
// synced and renamed over it, so that a crash leaves either file whole.
// The entries' offsets are updated to the new file.
func rewrite(name string, keep []*entry) error {
	if real, err := filepath.EvalSymlinks(name); err == nil {
		name = real // replace the file a link leads to, not the link
	}
	old, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("rewriting %s: %w", name, err)
	}
	defer old.Close()
	mode := os.FileMode(0o644)
	if fi, err := old.Stat(); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("rewriting %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing is there
	bw := bufio.NewWriterSize(tmp, 1<<20)
	var off int64
	fail := func(err error) error {
		tmp.Close()
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // not the temporary file's name
		}
		return fmt.Errorf("rewriting %s: %w", name, err)
	}
	for _, e := range keep {
		if _, err := io.Copy(bw, io.NewSectionReader(old, e.off, e.n)); err != nil {
			return fail(err)
		}
		e.off = off
		off += e.n
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fail(err)
	}
	syncDir(filepath.Dir(name))
	return nil
}

// syncDir syncs a directory so that a rename in it is durable; errors are
// ignored (some file systems cannot sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// entryCompare orders output lines as a clean run writes them: by the
// first file's path, numbers compared as numbers.
func entryCompare(a, b *entry) int {
	if c := naturalCompare(a.files[0], b.files[0]); c != 0 {
		return c
	}
	return compareStrings(a.key, b.key)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sorted reports whether the entries are in entryCompare order.
func sorted(es []*entry) bool {
	return slices.IsSortedFunc(es, entryCompare)
}

// compactJSON encodes v on one line ending in a newline, without escaping
// HTML characters and with control and bidi characters escaped, as
// report.WriteJSON writes (an error record quotes a file's name and a
// message that may hold captured bytes).
func compactJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := report.NewJSONEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
