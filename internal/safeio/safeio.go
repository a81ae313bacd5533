// Package safeio keeps h2scope's outputs away from its inputs: it refuses
// an output path that names an input or a capture, checks before any
// analysis that every output can be created, and drops input files given
// twice.
//
// # Outputs
//
// [CheckOutputs] is called with the command line's inputs and outputs
// before a capture is read. An output is refused when it is one of the
// inputs (by name, or as the same file through a symbolic or hard link),
// when it already holds a capture (pcap, pcapng, gzip or zstd content,
// recognised by [IsCapture]), when it is a directory, or when a file
// cannot be created in its directory. Errors name the output path as
// given, never a temporary file's name.
//
// # Inputs
//
// [DedupInputs] drops an input that is the same file as an earlier one,
// or has the same bytes, so that a capture given twice is not merged with
// itself (doubling every packet fakes retransmissions).
//
// The name "-" (standard input or output) is left alone by both.
package safeio

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// magics are the first bytes of the files h2scope reads: pcap in both
// byte orders with microsecond and nanosecond timestamps, pcapng's
// section header block, gzip and zstd.
var magics = [][]byte{
	{0xa1, 0xb2, 0xc3, 0xd4},
	{0xd4, 0xc3, 0xb2, 0xa1},
	{0xa1, 0xb2, 0x3c, 0x4d},
	{0x4d, 0x3c, 0xb2, 0xa1},
	{0x0a, 0x0d, 0x0d, 0x0a},
	{0x1f, 0x8b},
	{0x28, 0xb5, 0x2f, 0xfd},
}

// HasCaptureMagic reports whether b begins with the magic number of a
// pcap, pcapng, gzip or zstd file.
func HasCaptureMagic(b []byte) bool {
	for _, m := range magics {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return false
}

// IsCapture reports whether the regular file at path begins with the magic
// number of a capture (see [HasCaptureMagic]). A path that does not exist,
// or is not a regular file, is not a capture; other errors are returned.
func IsCapture(path string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var b [4]byte
	n, err := io.ReadFull(f, b[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, err
	}
	return HasCaptureMagic(b[:n]), nil
}

// An OutputError says why an output path was refused. Path is the output
// as given on the command line.
type OutputError struct {
	Path   string
	Real   string // where Path leads when it is a symbolic link, or ""
	Reason string // "it is the input a.pcapng", "it holds a capture; ...", ...
	Err    error  // the underlying error, or nil
}

func (e *OutputError) Error() string {
	path := e.Path
	if e.Real != "" {
		path += " (a link to " + e.Real + ")"
	}
	if e.Err != nil {
		return fmt.Sprintf("cannot write %s: %s: %v", path, e.Reason, e.Err)
	}
	return fmt.Sprintf("refusing to write %s: %s", path, e.Reason)
}

func (e *OutputError) Unwrap() error { return e.Err }

// CheckOutputs checks, before anything is read or written, that each of
// outputs may be written: it is not one of inputs (the same name, or the
// same file by [os.SameFile]: symbolic and hard links), not another
// output, does not already hold a capture, is not a directory, and a file
// can be created (and is then removed) in its directory. Empty names and
// "-" (standard output) are skipped. The first problem is returned as an
// [*OutputError].
func CheckOutputs(inputs, outputs []string) error {
	type stated struct {
		name string
		fi   os.FileInfo
	}
	var ins []stated
	for _, in := range inputs {
		if in == "" || in == "-" {
			continue
		}
		fi, _ := os.Stat(in) // an unreadable input is the reader's to report
		ins = append(ins, stated{in, fi})
	}
	var outs []stated
	for _, out := range outputs {
		if out == "" || out == "-" {
			continue
		}
		fi, err := os.Stat(out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return &OutputError{Path: out, Reason: "cannot inspect it", Err: err}
		}
		for _, in := range ins {
			if sameName(out, in.name) || (fi != nil && in.fi != nil && os.SameFile(fi, in.fi)) {
				return &OutputError{Path: out, Real: realPath(out), Reason: "it is the input " + in.name}
			}
		}
		for _, o := range outs {
			if sameName(out, o.name) || (fi != nil && o.fi != nil && os.SameFile(fi, o.fi)) {
				return &OutputError{Path: out, Real: realPath(out), Reason: "it is also the output " + o.name}
			}
		}
		outs = append(outs, stated{out, fi})
		if fi != nil {
			if fi.IsDir() {
				return &OutputError{Path: out, Reason: "it is a directory"}
			}
			if !fi.Mode().IsRegular() {
				continue // a device or pipe (/dev/null) is written in place
			}
			isCap, err := IsCapture(out)
			if err != nil {
				return &OutputError{Path: out, Reason: "cannot inspect it", Err: err}
			}
			if isCap {
				return &OutputError{Path: out, Real: realPath(out), Reason: "it holds a capture; remove it first to overwrite it"}
			}
		}
		if err := canCreate(out); err != nil {
			return &OutputError{Path: out, Reason: "cannot create a file in " + filepath.Dir(out), Err: err}
		}
	}
	return nil
}

// realPath returns where out leads when it is a symbolic link, or "".
func realPath(out string) string {
	if fi, err := os.Lstat(out); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return ""
	}
	real, err := filepath.EvalSymlinks(out)
	if err != nil {
		return ""
	}
	return real
}

// sameName reports whether a and b name the same path once cleaned and
// made absolute (./a and a), whether or not it exists.
func sameName(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	ab, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == ab
}

// canCreate creates and removes a temporary file beside name, as the
// writer of name will. The error leaves out the temporary file's name.
func canCreate(name string) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// SampleSize is how much of each end of a file SampleHash hashes
// (DedupInputs compares two files with the same hash byte by byte).
const SampleSize = 1 << 20

// DedupInputs returns inputs without those that repeat an earlier one:
// the same file ([os.SameFile]: the same name, a link to it) or a file with
// the same bytes (same size, same hash of the first and last MiB, then
// compared in full). Each dropped input gets a warning line (without
// trailing newline) naming it and the input it repeats; a name given
// several times gets one ("a.pcap is given 60 times"). Inputs that
// cannot be inspected, directories and "-" are kept as they are, for the
// reader to report or expand. err reports a read error while two files
// were compared.
func DedupInputs(inputs []string) (kept []string, warnings []string, err error) {
	type file struct {
		name string
		fi   os.FileInfo
		sum  *[sha256.Size]byte
	}
	var seen []*file
	given := map[string]int{} // repeats of a name, which is kept once
	for _, in := range inputs {
		fi, serr := os.Stat(in)
		if in == "-" || serr != nil || !fi.Mode().IsRegular() {
			kept = append(kept, in)
			continue
		}
		cur := &file{name: in, fi: fi}
		dup := ""
		for _, s := range seen {
			if in == s.name {
				given[in]++
				dup = fmt.Sprintf("%s is given more than once; reading it once", in)
				break
			}
			if os.SameFile(s.fi, fi) {
				dup = fmt.Sprintf("%s is the same file as %s; reading it once", in, s.name)
				break
			}
			if s.fi.Size() != fi.Size() {
				continue
			}
			if s.sum == nil {
				if s.sum, err = sample(s.name, s.fi.Size()); err != nil {
					return nil, nil, err
				}
			}
			if cur.sum == nil {
				if cur.sum, err = sample(in, fi.Size()); err != nil {
					return nil, nil, err
				}
			}
			if *s.sum != *cur.sum {
				continue
			}
			same, err := sameContent(s.name, in)
			if err != nil {
				return nil, nil, err
			}
			if same {
				dup = fmt.Sprintf("%s has the same content as %s; reading it once", in, s.name)
				break
			}
		}
		if dup != "" {
			if !slices.Contains(warnings, dup) {
				warnings = append(warnings, dup)
			}
			continue
		}
		seen = append(seen, cur)
		kept = append(kept, in)
	}
	for i, w := range warnings {
		name, ok := strings.CutSuffix(w, " is given more than once; reading it once")
		if ok {
			warnings[i] = fmt.Sprintf("%s is given %s; reading it once", name, times(given[name]+1))
		}
	}
	return kept, warnings, nil
}

// times returns "twice" or "N times".
func times(n int) string {
	if n == 2 {
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// sample hashes the file name of the given size with SampleHash.
func sample(name string, size int64) (*[sha256.Size]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum, err := SampleHash(f, size)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return &sum, nil
}

// SampleHash returns the SHA-256 of the first and the last SampleSize
// bytes of f, whose size is size (of all of it when it is at most twice
// SampleSize): a cheap identity of a capture file, telling copies and
// changed files apart without reading a large one whole.
func SampleHash(f io.ReaderAt, size int64) ([sha256.Size]byte, error) {
	h := sha256.New()
	var err error
	if size <= 2*SampleSize {
		_, err = io.Copy(h, io.NewSectionReader(f, 0, size))
	} else if _, err = io.Copy(h, io.NewSectionReader(f, 0, SampleSize)); err == nil {
		_, err = io.Copy(h, io.NewSectionReader(f, size-SampleSize, SampleSize))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, err
}

// sameContent reports whether files a and b hold the same bytes.
func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba := make([]byte, 64<<10)
	bb := make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, fmt.Errorf("reading %s: %w", a, ea)
		}
		if eb != nil {
			if eb == io.EOF || eb == io.ErrUnexpectedEOF {
				return false, nil
			}
			return false, fmt.Errorf("reading %s: %w", b, eb)
		}
	}
}
