package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/h2scope/h2scope/batch"
	"github.com/h2scope/h2scope/report"
)

// schemeRE matches a URL's scheme: gs://, s3://, memfs://.
var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)

// isRemote reports whether p names a file of a Beam file system other
// than the local one.
func isRemote(p string) bool { return schemeRE.MatchString(p) }

// maxDepth bounds how deep a remote directory is listed.
const maxDepth = 8

// listRemote expands a remote pattern as batch.Find expands a local one:
// an object named exactly is taken whatever its name; a glob's matches
// and a directory's objects (at any depth up to maxDepth) are taken when
// batch.CaptureName takes their names, hidden ones (a name part starting
// with a dot) left out. A glob that matches nothing is an error.
func listRemote(ctx context.Context, p string) ([]string, error) {
	fs, err := filesystem.New(ctx, p)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	var out []string
	seen := map[string]bool{}
	take := func(names []string, under string) {
		for _, n := range names {
			if seen[n] || !batch.CaptureName(n) || hidden(strings.TrimPrefix(n, under)) {
				continue
			}
			seen[n] = true
			out = append(out, n)
		}
	}
	if strings.ContainsAny(p, "*?[") {
		names, err := fs.List(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("pattern %q matches no files", p)
		}
		take(names, "")
		slices.Sort(out)
		return out, nil
	}
	if _, err := fs.Size(ctx, p); err == nil {
		return []string{p}, nil
	}
	dir := strings.TrimSuffix(p, "/") + "/"
	for depth := 1; depth <= maxDepth; depth++ {
		names, err := fs.List(ctx, dir+strings.Repeat("*/", depth-1)+"*")
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", p, err)
		}
		if len(names) == 0 {
			break
		}
		take(names, dir)
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("%s: no such file or directory, or no captures in it", p)
	}
	slices.Sort(out)
	return out, nil
}

// hidden reports whether a relative object name has a part starting with
// a dot.
func hidden(rel string) bool {
	for part := range strings.SplitSeq(rel, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}

// staged is a local copy of remote files of one directory.
type staged struct {
	dir, remoteDir string   // the local directory and the remote one, each ending in "/"
	local          []string // the copies of the files, in order
}

// stage copies files, which are in one remote directory, to a new local
// directory under their own names, with their modification times, and
// with keyLogs the key logs beside them (batch.KeyLogNames) that exist.
func stage(ctx context.Context, files []string, keyLogs bool) (*staged, error) {
	i := strings.LastIndex(files[0], "/")
	st := &staged{remoteDir: files[0][:i+1]}
	dir, err := os.MkdirTemp("", "h2scope-beam-")
	if err != nil {
		return nil, err
	}
	st.dir = dir + "/"
	fs, err := filesystem.New(ctx, files[0])
	if err != nil {
		st.remove()
		return nil, err
	}
	defer fs.Close()
	for _, f := range files {
		if !strings.HasPrefix(f, st.remoteDir) || strings.Contains(f[len(st.remoteDir):], "/") {
			st.remove()
			return nil, fmt.Errorf("h2scope-beam: %s is not in %s", f, st.remoteDir)
		}
		local := st.dir + f[len(st.remoteDir):]
		if err := download(ctx, fs, f, local); err != nil {
			st.remove()
			return nil, err
		}
		st.local = append(st.local, local)
	}
	if keyLogs {
		for _, k := range batch.KeyLogNames(st.local) {
			rel, err := filepath.Rel(dir, k)
			if err != nil || strings.Contains(rel, "/") {
				continue
			}
			if _, err := fs.Size(ctx, st.remoteDir+rel); err != nil {
				continue // not there
			}
			if err := download(ctx, fs, st.remoteDir+rel, k); err != nil {
				st.remove()
				return nil, err
			}
		}
	}
	return st, nil
}

// download copies the remote file name to the local path local, with its
// modification time when the file system tells it.
func download(ctx context.Context, fs filesystem.Interface, name, local string) error {
	r, err := fs.OpenRead(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer r.Close()
	w, err := os.Create(local)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying %s: %w", name, err)
	}
	if g, ok := fs.(filesystem.LastModifiedGetter); ok {
		if t, err := g.LastModified(ctx, name); err == nil && !t.IsZero() {
			os.Chtimes(local, t, t)
		}
	}
	return nil
}

// rename returns line with the local directory's name replaced by the
// remote one's, as JSON strings spell them.
func (st *staged) rename(line []byte) []byte {
	return bytes.ReplaceAll(line, jsonText(st.dir), jsonText(st.remoteDir))
}

// jsonText is s as the report's JSON encoder writes it inside a string.
func jsonText(s string) []byte {
	var buf bytes.Buffer
	if err := report.NewJSONEncoder(&buf).Encode(s); err != nil {
		panic(err) // a string always encodes
	}
	b := bytes.TrimSpace(buf.Bytes())
	return b[1 : len(b)-1]
}

// remove removes the local copies.
func (st *staged) remove() {
	if st.dir != "" {
		if err := os.RemoveAll(st.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			logWriter{}.Write([]byte("h2scope-beam: removing " + st.dir + ": " + err.Error()))
		}
	}
}
