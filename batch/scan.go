package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/h2scope/h2scope/dissect/capture"
)

// Capture is one capture to analyse: a single file, or the rotated files
// of one capture in order.
type Capture struct {
	// Files are the paths of the capture's files, as found.
	Files []string
	// Err, if not nil, is why the capture cannot be read at all (an
	// unreadable directory, say); it is reported in an ErrorRecord.
	Err error
}

// key identifies the capture in an output file: its files, in order.
func (c Capture) key() string { return strings.Join(c.Files, "\x00") }

// captureName matches the names that are taken as captures without
// looking at their content.
var captureName = regexp.MustCompile(`(?i)\.(pcap|pcapng|cap)[0-9]*(\.gz|\.zst)?$`)

// Find expands patterns (directories, glob patterns and file paths) into
// the capture files they name, sorted with numbers compared as numbers;
// the package documentation says which files are taken. A path that does
// not exist, or a directory that cannot be read, is returned in bad, to
// be reported as a failed capture. Find fails only on a malformed pattern
// or one that matches nothing.
func Find(patterns []string) (files []string, bad []Capture, err error) {
	seen := map[string]bool{}
	add := func(p string) {
		if c := filepath.Clean(p); !seen[c] {
			seen[c] = true
			files = append(files, p)
		}
	}
	walk := func(root string) {
		werr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				bad = append(bad, Capture{Files: []string{p}, Err: err})
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			hidden := p != root && strings.HasPrefix(d.Name(), ".")
			if d.IsDir() {
				if hidden {
					return fs.SkipDir
				}
				return nil
			}
			if hidden || !isRegular(p, d) {
				return nil
			}
			if isCapture(p) {
				add(p)
			}
			return nil
		})
		if werr != nil {
			bad = append(bad, Capture{Files: []string{root}, Err: werr})
		}
	}
	for _, pat := range patterns {
		if !hasMeta(pat) {
			fi, err := os.Stat(pat)
			switch {
			case err != nil:
				bad = append(bad, Capture{Files: []string{pat}, Err: err})
			case fi.IsDir():
				walk(pat)
			default:
				add(pat)
			}
			continue
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, nil, fmt.Errorf("pattern %q: %w", pat, err)
		}
		if len(matches) == 0 {
			return nil, nil, fmt.Errorf("pattern %q matches no files", pat)
		}
		for _, m := range matches {
			fi, err := os.Stat(m)
			switch {
			case err != nil:
				bad = append(bad, Capture{Files: []string{m}, Err: err})
			case fi.IsDir():
				walk(m)
			case fi.Mode().IsRegular() && isCapture(m):
				add(m)
			}
		}
	}
	slices.SortFunc(files, naturalCompare)
	slices.SortFunc(bad, func(a, b Capture) int { return naturalCompare(a.Files[0], b.Files[0]) })
	return files, bad, nil
}

// hasMeta reports whether p holds a filepath.Match metacharacter.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// isRegular reports whether the walked entry is a regular file, following
// a symbolic link.
func isRegular(p string, d fs.DirEntry) bool {
	if d.Type().IsRegular() {
		return true
	}
	if d.Type()&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// isCapture reports whether the file at p is to be analysed: by its name,
// or else by its first bytes.
func isCapture(p string) bool {
	if captureName.MatchString(p) {
		return true
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	var m [4]byte
	_, err = io.ReadFull(f, m[:])
	f.Close()
	if err != nil {
		return false
	}
	switch binary.BigEndian.Uint32(m[:]) {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34, 0xd4c3b2a1, 0x4d3cb2a1, 0x34cdb2a1, 0x0a0d0d0a:
		return true
	}
	if !bytes.HasPrefix(m[:], []byte{0x1f, 0x8b}) && !bytes.Equal(m[:], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return false
	}
	// Compressed: a capture if the capture reader accepts its header.
	r, err := capture.Open([]string{p}, capture.Options{})
	if err != nil {
		return false
	}
	r.Close()
	return true
}

// naturalCompare orders paths byte by byte, except that runs of digits
// compare as numbers (leading zeros first break no tie: "01" and "1" are
// then ordered as strings).
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			if c := compareNumbers(a[:da], b[:db]); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

// digitRun returns the length of the run of ASCII digits s starts with.
func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// compareNumbers compares two runs of digits as numbers of any length,
// then as strings.
func compareNumbers(a, b string) int {
	ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(ta) != len(tb) {
		return len(ta) - len(tb)
	}
	if c := strings.Compare(ta, tb); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}
