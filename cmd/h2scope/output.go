package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/internal/safeio"
)

// brokenPipe reports whether err comes from writing to a pipe whose reader
// has gone (h2scope frames CAP | head): printing then ends quietly, as
// tshark's does, and the exit code is what it would have been. (main
// ignores SIGPIPE so that such a write returns EPIPE instead of killing
// the process.)
func brokenPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE)
}

// outputErr reports an error writing to standard output, unless it is a
// broken pipe, and returns the exit code to use: code, or exitUsage after
// a real error.
func outputErr(err error, code int, stderr io.Writer) int {
	if err == nil || brokenPipe(err) {
		return code
	}
	fmt.Fprintf(stderr, "h2scope: writing output: %v\n", err)
	return exitUsage
}

// inputs checks the capture names a command was given and drops repeats:
// at most one may be "-" (standard input), and a file given twice (the
// same file, or a copy of the same bytes) is read once, with a warning.
// Problems are reported on stderr, and ok is then false.
func inputs(cmd string, files []string, stderr io.Writer) (kept []string, ok bool) {
	stdin := 0
	for _, f := range files {
		if f == capture.Stdin {
			stdin++
		}
	}
	if stdin > 1 {
		fmt.Fprintf(stderr, "h2scope %s: standard input (-) can be read only once\n", cmd)
		return nil, false
	}
	kept, warnings, err := safeio.DedupInputs(files)
	if err != nil {
		fmt.Fprintf(stderr, "h2scope: %v\n", err)
		return nil, false
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "h2scope: warning: %s\n", w)
	}
	return kept, true
}

// writeOutput writes with write to the file name, or to stdout when name
// is "-". A file is written under a temporary name and renamed, so a
// reader never sees half a report; a name that is not a regular file
// (/dev/null, a FIFO) is written in place. Errors name the file name, not
// the temporary one.
func writeOutput(name string, stdout io.Writer, write func(io.Writer) error) (err error) {
	if name == "-" {
		return write(stdout)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("writing %s: %w", name, withoutPath(err))
		}
	}()
	if fi, err := os.Stat(name); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if err := writeBuffered(f, write); err != nil {
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeBuffered(tmp, write); err != nil {
		return err
	}
	// CreateTemp makes the file private (0600); a report is not.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// writeBuffered writes with write to f through a buffer, and closes f if
// that fails.
func writeBuffered(f *os.File, write func(io.Writer) error) error {
	bw := bufio.NewWriter(f)
	err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		f.Close()
	}
	return err
}

// withoutPath returns the cause inside a *PathError or *LinkError, whose
// path would be the temporary file's.
func withoutPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
