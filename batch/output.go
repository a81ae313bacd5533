package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
// files.
type line struct {
	Schema   string `json:"schema"`
	Captures []struct {
		Files []string `json:"files"`
	} `json:"captures"`
}

// output writes whole lines to the output.
type output struct {
	w    io.Writer
	f    *os.File // the output file, synced after each line; nil for stdout
	name string
}

// openOutput opens the output file name for appending, after reading the
// captures it already holds into done (keyed by Capture.key) and cutting
// away a torn last line (one without its newline). A complete line that is
// not a report is an error: the file is then left alone.
func openOutput(name string) (*output, map[string]bool, error) {
	done := map[string]bool{}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var good int64 // the length of the complete, valid lines
	br := bufio.NewReaderSize(f, 1<<20)
	badLine := 0 // number of an invalid complete line, if one was seen
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if len(b) == 0 {
			break
		}
		if badLine != 0 {
			return nil, nil, fmt.Errorf("%s: line %d is not an h2scope report; not appending to it", name, badLine)
		}
		if err == io.EOF {
			break // a torn last line, without its newline
		}
		var l line
		if json.Unmarshal(b, &l) != nil || len(l.Captures) == 0 || len(l.Captures[0].Files) == 0 {
			badLine = n
			continue
		}
		done[Capture{Files: l.Captures[0].Files}.key()] = true
		good += int64(len(b))
	}
	if badLine != 0 {
		// A complete line (with its newline) is never torn: the file is
		// not an h2scope batch output.
		return nil, nil, fmt.Errorf("%s: line %d is not an h2scope report; not appending to it", name, badLine)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() != good {
		if err := f.Truncate(good); err != nil {
			return nil, nil, fmt.Errorf("cutting the torn last line of %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return nil, nil, fmt.Errorf("syncing %s: %w", name, err)
		}
	}
	af, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, nil, err
	}
	return &output{w: af, f: af, name: name}, done, nil
}

// writeLine writes b, one complete line, with a single write, and syncs
// the file.
func (o *output) writeLine(b []byte) error {
	if _, err := o.w.Write(b); err != nil {
		return o.err(err)
	}
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
	return o.err(o.f.Close())
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

// compactJSON encodes v on one line ending in a newline, without escaping
// HTML characters (as report.WriteJSON).
func compactJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
